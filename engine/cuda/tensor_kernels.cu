#include "engine/cuda/tensor_kernels.h"

#include <cstdint>
#include <type_traits>

#include "engine/cuda/block_reduce.cuh"

namespace tpp::cuda {

namespace {

template <class T>
__global__ void fill_kernel(T* data, StridedOffsets<1> at, int64_t n, T value) {
  TPP_GRID_STRIDE_LOOP(i, n) {
    int64_t off[1];
    at.offsets_of(i, off);
    data[off[0]] = value;
  }
}

template <class D, class S>
__global__ void copy_kernel(D* dst, const S* src, StridedOffsets<2> at, int64_t n, bool accumulate) {
  TPP_GRID_STRIDE_LOOP(i, n) {
    int64_t off[2];
    at.offsets_of(i, off);
    const D value = static_cast<D>(src[off[1]]);
    dst[off[0]] = accumulate ? static_cast<D>(dst[off[0]] + value) : value;
  }
}

template <class T>
__global__ void sum_reduce_kernel(T* dst, const T* src, StridedOffsets<2> kept, StridedOffsets<1> reduced,
                                  int64_t outputs, int64_t count, double scale) {
  for (int64_t j = blockIdx.x; j < outputs; j += gridDim.x) {
    int64_t base[2];
    kept.offsets_of(j, base);
    double acc = 0;
    for (int64_t r = threadIdx.x; r < count; r += blockDim.x) {
      int64_t off[1];
      reduced.offsets_of(r, off);
      acc += static_cast<double>(src[base[1] + off[0]]);
    }
    acc = device::block_reduce(acc, device::Sum{}, 0.0);  // every thread of the block takes part
    if (threadIdx.x == 0) dst[base[0]] = static_cast<T>(scale * acc);
  }
}

}  // namespace

void launch_fill(void* data, DType dtype, const StridedOffsets<1>& at, int64_t n, double value, cudaStream_t stream) {
  if (n == 0) return;
  with_element_type(dtype, [&](auto type) {
    using T = decltype(type);
    fill_kernel<T><<<blocks_for(n), kThreadsPerBlock, 0, stream>>>(static_cast<T*>(data), at, n, static_cast<T>(value));
  });
  TPP_CUDA_CHECK_LAUNCH();
}

void launch_copy(void* dst, DType dst_dtype, const void* src, DType src_dtype, const StridedOffsets<2>& at, int64_t n,
                 bool accumulate, cudaStream_t stream) {
  if (n == 0) return;
  with_element_type(dst_dtype, [&](auto d) {
    using D = decltype(d);
    with_element_type(src_dtype, [&](auto s) {
      using S = decltype(s);
      copy_kernel<D, S><<<blocks_for(n), kThreadsPerBlock, 0, stream>>>(static_cast<D*>(dst),
                                                                       static_cast<const S*>(src), at, n, accumulate);
    });
  });
  TPP_CUDA_CHECK_LAUNCH();
}

void launch_sum_reduce(void* dst, const void* src, DType dtype, const StridedOffsets<2>& kept,
                       const StridedOffsets<1>& reduced, int64_t outputs, int64_t count, double scale,
                       cudaStream_t stream) {
  if (outputs == 0) return;
  const unsigned blocks = static_cast<unsigned>(outputs < 65535 * 8 ? outputs : 65535 * 8);
  with_element_type(dtype, [&](auto type) {
    using T = decltype(type);
    if constexpr (std::is_floating_point_v<T>)
      sum_reduce_kernel<T><<<blocks, kThreadsPerBlock, 0, stream>>>(static_cast<T*>(dst), static_cast<const T*>(src),
                                                                   kept, reduced, outputs, count, scale);
  });
  TPP_CUDA_CHECK_LAUNCH();
}

}  // namespace tpp::cuda
