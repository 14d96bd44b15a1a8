// The emulated CUDA device itself (built into tpp_gpu_tests with
// -DTPP_CUDA=EMULATE only): it must catch what a GPU would and report it as
// NVIDIA's libraries do. Kernels here are lambdas launched through the
// emulator's own entry point (what rewrite_cu.cpp turns <<<...>>> into).
#include <doctest/doctest.h>

#include <cublas_v2.h>
#include <cudnn.h>

#include <vector>

#include "engine/cuda/caching_allocator.h"
#include "engine/cuda/check.h"
#include "engine/error.h"
#include "tests/cuda_emu/cuda_emu.h"

using namespace tpp;

namespace {

template <class Kernel, class... Args>
cudaError_t run(dim3 grid, dim3 block, Kernel kernel, Args... args) {
  tpp_emu::launch(tpp_emu::launch_config(grid, block), __FILE__, __LINE__, kernel, args...);
  const cudaError_t launched = cudaGetLastError();
  if (launched != cudaSuccess) return launched;
  return cudaDeviceSynchronize();
}

// A block-wide sum through shared memory and a barrier per step.
void tree_sum(int* out, const int* in) {
  static thread_local int partial[256];
  partial[threadIdx.x] = in[blockIdx.x * blockDim.x + threadIdx.x];
  __syncthreads();
  for (unsigned width = blockDim.x / 2; width > 0; width /= 2) {
    if (threadIdx.x < width) partial[threadIdx.x] += partial[threadIdx.x + width];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = partial[0];
}

}  // namespace

TEST_SUITE("gpu") {
  TEST_CASE("emulated device: a barrier-synchronised block sum is exact in every block") {
    const int blocks = 37, threads = 256;
    std::vector<int> host(blocks * threads);
    for (size_t i = 0; i < host.size(); ++i) host[i] = static_cast<int>(i % 1000);
    const cuda::DeviceBuffer in = cuda::device_allocate(host.size() * sizeof(int));
    const cuda::DeviceBuffer out = cuda::device_allocate(blocks * sizeof(int));
    TPP_CUDA_CHECK(cudaMemcpy(in.data(), host.data(), host.size() * sizeof(int), cudaMemcpyHostToDevice));
    REQUIRE(run(blocks, threads, tree_sum, static_cast<int*>(out.data()), static_cast<const int*>(in.data())) ==
            cudaSuccess);
    std::vector<int> sums(blocks);
    TPP_CUDA_CHECK(cudaMemcpy(sums.data(), out.data(), sums.size() * sizeof(int), cudaMemcpyDeviceToHost));
    for (int b = 0; b < blocks; ++b) {
      int expected = 0;
      for (int t = 0; t < threads; ++t) expected += host[static_cast<size_t>(b * threads + t)];
      CHECK(sums[static_cast<size_t>(b)] == expected);
    }
  }

  TEST_CASE("emulated device: a warp shuffle reduction gives every lane 0 the warp's sum") {
    const cuda::DeviceBuffer out = cuda::device_allocate(4 * sizeof(int));
    const auto kernel = [](int* sums) {
      int v = static_cast<int>(threadIdx.x);
      for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
      if (threadIdx.x % 32 == 0) sums[threadIdx.x / 32] = v;
    };
    REQUIRE(run(1, 128, kernel, static_cast<int*>(out.data())) == cudaSuccess);
    std::vector<int> sums(4);
    TPP_CUDA_CHECK(cudaMemcpy(sums.data(), out.data(), sums.size() * sizeof(int), cudaMemcpyDeviceToHost));
    for (int w = 0; w < 4; ++w) CHECK(sums[static_cast<size_t>(w)] == 32 * 32 * w + 31 * 32 / 2);
  }

  TEST_CASE("emulated device: 2048 threads per block fail as on a GPU, through the checked call") {
    tpp_emu::launch(tpp_emu::launch_config(1, 2048), __FILE__, __LINE__, [] {});
    CHECK_THROWS_WITH_AS(TPP_CUDA_CHECK(cudaGetLastError()),
                         doctest::Contains("cudaErrorInvalidConfiguration (invalid configuration argument)"), Error);
    CHECK(cudaGetLastError() == cudaSuccess);  // not sticky, as on a GPU
  }

  TEST_CASE("emulated device: __syncthreads reached at two different lines is a launch failure") {
    const auto kernel = [] {
      if (threadIdx.x < 16) {
        __syncthreads();
      } else {
        __syncthreads();
      }
    };
    CHECK(run(1, 32, kernel) == cudaErrorLaunchFailure);
    CHECK(cudaGetLastError() == cudaSuccess);
  }

  TEST_CASE("emulated device: a shuffle that reads a lane outside its mask is a launch failure") {
    const auto kernel = [] {
      if (threadIdx.x < 16) (void)__shfl_down_sync(0x0000ffffu, static_cast<int>(threadIdx.x), 8);
    };
    CHECK(run(1, 32, kernel) == cudaErrorLaunchFailure);
  }

  TEST_CASE("emulated device: a full-mask shuffle with lanes that exited is a launch failure") {
    const auto kernel = [] {
      if (threadIdx.x < 16) return;
      (void)__shfl_down_sync(0xffffffffu, 1, 1);
    };
    CHECK(run(1, 32, kernel) == cudaErrorLaunchFailure);
  }

  TEST_CASE("emulated device: copies of the wrong kind or past an allocation are invalid values") {
    void* device = nullptr;
    REQUIRE(cudaMalloc(&device, 64) == cudaSuccess);  // the driver's allocation, not a cached bucket
    std::vector<char> host(128);
    CHECK(cudaMemcpy(host.data(), device, 64, cudaMemcpyHostToDevice) == cudaErrorInvalidValue);
    CHECK(cudaMemcpy(device, host.data(), 128, cudaMemcpyHostToDevice) == cudaErrorInvalidValue);
    CHECK(cudaMemcpy(device, host.data(), 64, cudaMemcpyHostToDevice) == cudaSuccess);
    cudaGetLastError();
    CHECK(cudaFree(device) == cudaSuccess);
  }

  TEST_CASE("emulated cuBLAS: a leading dimension below the rows is CUBLAS_STATUS_INVALID_VALUE") {
    cublasHandle_t h = nullptr;
    REQUIRE(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS);
    const float one = 1, zero = 0;
    std::vector<float> a(16), b(16), c(16);
    CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, a.data(), 3, b.data(), 4, &zero, c.data(), 4) ==
          CUBLAS_STATUS_INVALID_VALUE);
    CHECK(cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, 4, 4, 2, &one, a.data(), 1, b.data(), 2, &zero, c.data(), 4) ==
          CUBLAS_STATUS_INVALID_VALUE);
    CHECK(cublasDestroy(h) == CUBLAS_STATUS_SUCCESS);
  }

  TEST_CASE("emulated cuDNN: output dims, and a group count that does not divide the channels") {
    cudnnTensorDescriptor_t x = nullptr;
    cudnnFilterDescriptor_t w = nullptr;
    cudnnConvolutionDescriptor_t conv = nullptr;
    REQUIRE(cudnnCreateTensorDescriptor(&x) == CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnCreateFilterDescriptor(&w) == CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnCreateConvolutionDescriptor(&conv) == CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 2, 4, 9, 7) == CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnSetFilter4dDescriptor(w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 6, 2, 3, 3) == CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnSetConvolution2dDescriptor(conv, 1, 1, 2, 2, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT) ==
            CUDNN_STATUS_SUCCESS);
    int n = 0, c = 0, h = 0, wd = 0;
    CHECK(cudnnGetConvolution2dForwardOutputDim(conv, x, w, &n, &c, &h, &wd) == CUDNN_STATUS_BAD_PARAM);  // 4 != 2 x 1
    REQUIRE(cudnnSetConvolutionGroupCount(conv, 2) == CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnGetConvolution2dForwardOutputDim(conv, x, w, &n, &c, &h, &wd) == CUDNN_STATUS_SUCCESS);
    CHECK(n == 2);
    CHECK(c == 6);
    CHECK(h == 5);
    CHECK(wd == 4);
    CHECK(cudnnSetConvolutionGroupCount(conv, 0) == CUDNN_STATUS_BAD_PARAM);
    cudnnDestroyConvolutionDescriptor(conv);
    cudnnDestroyFilterDescriptor(w);
    cudnnDestroyTensorDescriptor(x);
  }
}
