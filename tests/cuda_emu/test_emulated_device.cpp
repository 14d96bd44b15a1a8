// The emulated CUDA device itself (built into tpp_gpu_tests with
// -DTPP_CUDA=EMULATE only): it must catch what a GPU would and report it as
// NVIDIA's libraries do. Kernels here are lambdas launched through the
// emulator's own entry point (what rewrite_cu.cpp turns <<<...>>> into).
#include <doctest/doctest.h>

#include <cublas_v2.h>
#include <cudnn.h>
#include <nccl.h>

#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "engine/cuda/caching_allocator.h"
#include "engine/cuda/check.h"
#include "engine/error.h"
#include "engine/tensor.h"
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

// Runs rank(0) and rank(1) at once, each on a thread whose current device is its rank.
template <class Rank>
void on_two_devices(Rank rank) {
  std::thread other([&] {
    cudaSetDevice(1);
    rank(1);
  });
  cudaSetDevice(0);
  rank(0);
  other.join();
}

// One collective on the current device's default stream: the input goes up, the result comes back.
std::vector<float> collective_on_device(ncclComm_t comm, const std::vector<float>& input, size_t output_count,
                                        ncclResult_t (*issue)(ncclComm_t, const float*, float*, size_t)) {
  float* send = nullptr;
  float* recv = nullptr;
  REQUIRE(cudaMalloc(reinterpret_cast<void**>(&send), input.size() * sizeof(float)) == cudaSuccess);
  REQUIRE(cudaMalloc(reinterpret_cast<void**>(&recv), output_count * sizeof(float)) == cudaSuccess);
  REQUIRE(cudaMemcpy(send, input.data(), input.size() * sizeof(float), cudaMemcpyHostToDevice) == cudaSuccess);
  REQUIRE(issue(comm, send, recv, input.size()) == ncclSuccess);
  std::vector<float> out(output_count);
  REQUIRE(cudaMemcpy(out.data(), recv, out.size() * sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess);
  cudaFree(send);
  cudaFree(recv);
  return out;
}

ncclComm_t join(const ncclUniqueId& id, int rank) {
  ncclComm_t comm = nullptr;
  REQUIRE(ncclCommInitRankConfig(&comm, 2, id, rank, nullptr) == ncclSuccess);
  return comm;
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

  TEST_CASE("emulated device: a kernel launched into a stream of another device fails as on a GPU") {
    cudaStream_t stream_of_1 = nullptr;
    REQUIRE(cudaSetDevice(1) == cudaSuccess);
    REQUIRE(cudaStreamCreate(&stream_of_1) == cudaSuccess);
    REQUIRE(cudaSetDevice(0) == cudaSuccess);
    tpp_emu::launch(tpp_emu::launch_config(1, 32, 0, stream_of_1), __FILE__, __LINE__, [] {});
    CHECK_THROWS_WITH_AS(TPP_CUDA_CHECK(cudaGetLastError()),
                         doctest::Contains("cudaErrorInvalidResourceHandle (invalid resource handle)"), Error);
    cudaEvent_t event_of_0 = nullptr;
    REQUIRE(cudaEventCreate(&event_of_0) == cudaSuccess);
    CHECK(cudaEventRecord(event_of_0, stream_of_1) == cudaErrorInvalidResourceHandle);
    CHECK(cudaStreamWaitEvent(stream_of_1, event_of_0, 0) == cudaSuccess);  // allowed across devices
    cudaEventDestroy(event_of_0);
    cudaStreamDestroy(stream_of_1);
    cudaGetLastError();
  }

  TEST_CASE("emulated NCCL: two ranks on devices 0 and 1 all-reduce, broadcast and all-gather across chunk rounds") {
    ncclUniqueId id{};
    REQUIRE(ncclGetUniqueId(&id) == ncclSuccess);
    const size_t n = 300'001;  // 1.2 MB of f32: two rounds through the shared slots
    std::vector<float> sum[2], broadcast[2], gathered[2];
    on_two_devices([&](int rank) {
      const ncclComm_t comm = join(id, rank);
      std::vector<float> mine(n);
      for (size_t i = 0; i < n; ++i) mine[i] = static_cast<float>(i % 1000) * 0.5f + static_cast<float>(rank);
      sum[rank] = collective_on_device(comm, mine, n, [](ncclComm_t c, const float* s, float* r, size_t k) {
        return ncclAllReduce(s, r, k, ncclFloat32, ncclSum, c, nullptr);
      });
      broadcast[rank] = collective_on_device(comm, mine, n, [](ncclComm_t c, const float* s, float* r, size_t k) {
        return ncclBroadcast(s, r, k, ncclFloat32, 1, c, nullptr);
      });
      gathered[rank] = collective_on_device(comm, mine, 2 * n, [](ncclComm_t c, const float* s, float* r,
                                                                        size_t k) {
        return ncclAllGather(s, r, k, ncclFloat32, c, nullptr);
      });
      ncclResult_t async = ncclInProgress;
      REQUIRE(ncclCommGetAsyncError(comm, &async) == ncclSuccess);
      CHECK_MESSAGE(async == ncclSuccess, "rank ", rank, ": ", ncclGetLastError(comm));
      CHECK(ncclCommFinalize(comm) == ncclSuccess);
      CHECK(ncclCommDestroy(comm) == ncclSuccess);
    });
    for (int rank = 0; rank < 2; ++rank) {
      size_t wrong_sums = 0, wrong_broadcasts = 0, wrong_gathers = 0;
      for (size_t i = 0; i < n; ++i) {
        const float v = static_cast<float>(i % 1000) * 0.5f;
        wrong_sums += sum[rank][i] != 2 * v + 1;
        wrong_broadcasts += broadcast[rank][i] != v + 1;
        wrong_gathers += gathered[rank][i] != v || gathered[rank][n + i] != v + 1;
      }
      CHECK_MESSAGE(wrong_sums == 0, "rank ", rank);
      CHECK_MESSAGE(wrong_broadcasts == 0, "rank ", rank);
      CHECK_MESSAGE(wrong_gathers == 0, "rank ", rank);
    }
  }

  TEST_CASE("emulated NCCL: ranks that call different collectives both fail with ncclInvalidUsage, naming both") {
    ncclUniqueId id{};
    REQUIRE(ncclGetUniqueId(&id) == ncclSuccess);
    std::string messages[2];
    ncclResult_t errors[2] = {ncclSuccess, ncclSuccess};
    on_two_devices([&](int rank) {
      const ncclComm_t comm = join(id, rank);
      const std::vector<float> mine(rank == 0 ? 8 : 16, 1.0f);
      collective_on_device(comm, mine, mine.size(), [](ncclComm_t c, const float* s, float* r, size_t k) {
        return ncclAllReduce(s, r, k, ncclFloat32, ncclSum, c, nullptr);
      });
      REQUIRE(ncclCommGetAsyncError(comm, &errors[rank]) == ncclSuccess);
      messages[rank] = ncclGetLastError(comm);
      CHECK(ncclCommAbort(comm) == ncclSuccess);
    });
    for (int rank = 0; rank < 2; ++rank) {
      CHECK(errors[rank] == ncclInvalidUsage);
      CHECK(messages[rank].find("the ranks called different collectives: rank 0 ncclAllReduce of 8 elements") !=
            std::string::npos);
      CHECK(messages[rank].find("rank 1 ncclAllReduce of 16 elements") != std::string::npos);
    }
  }

  TEST_CASE("emulated device: a float converted to an integer in a kernel saturates as the GPU's cvt.rzi does") {
    // Toward zero, clamped to the type's range, NaN to 0 (PTX ISA, cvt); on
    // x86 these conversions are undefined (SSE gives 0x8000000000000000).
    const Tensor x = from_vector<double>({std::nan(""), -3.7, 2.9, 1e300, -1e300, 300.5}, {6}).to(Device::cuda(0));
    CHECK(x.to(DType::i64).to(Device::cpu()).to_vector<int64_t>() ==
          std::vector<int64_t>{0, -3, 2, INT64_MAX, INT64_MIN, 300});
    CHECK(x.to(DType::u8).to(Device::cpu()).to_vector<uint8_t>() == std::vector<uint8_t>{0, 0, 2, 255, 0, 255});
  }
}
