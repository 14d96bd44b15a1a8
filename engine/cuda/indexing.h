// Shared pieces of every CUDA kernel file (CUDA builds only; free of fmt so
// that nvcc can include it): launch sizes, the launch check, and strided
// element offsets for kernels that read views and broadcasts in place.
#pragma once

#include <cuda_runtime_api.h>

#include <array>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "engine/cuda/check.h"
#include "engine/dtype_core.h"

namespace tpp::cuda {

inline constexpr int kThreadsPerBlock = 256;
inline constexpr int kMaxDims = 8;

// Blocks for a grid-stride loop over n elements: enough to fill the GPU, never
// more than the grid allows.
inline unsigned blocks_for(int64_t n, int threads = kThreadsPerBlock) {
  const int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > 65535 * 8 ? 65535 * 8 : blocks));
}

// fn(T{}) with T the C++ type of a floating dtype: every launcher's dtype
// switch. The Tensor-level glue refuses other dtypes first, so reaching the
// throw is a bug in the glue.
template <class Fn>
void with_floating_type(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::f32: fn(float{}); return;
    case DType::f64: fn(double{}); return;
    default: throw std::logic_error("a CUDA kernel for floating dtypes was launched on another dtype");
  }
}

// fn(T{}) for any dtype.
template <class Fn>
void with_element_type(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::f32: fn(float{}); return;
    case DType::f64: fn(double{}); return;
    case DType::i64: fn(int64_t{}); return;
    case DType::u8: fn(uint8_t{}); return;
  }
}

// Element offsets of N operands that share one shape but have their own
// strides (in elements; 0 for broadcast dims). Dims that are contiguous for
// every operand are merged on the host, so most views index as one flat dim.
template <int N>
struct StridedOffsets {
  int ndim = 0;
  int64_t sizes[kMaxDims] = {};
  int64_t strides[N][kMaxDims] = {};

  __host__ __device__ void offsets_of(int64_t linear, int64_t (&out)[N]) const {
    for (int k = 0; k < N; ++k) out[k] = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      const int64_t i = linear % sizes[d];
      linear /= sizes[d];
      for (int k = 0; k < N; ++k) out[k] += i * strides[k][d];
    }
  }
};

// Builds StridedOffsets from a shape and each operand's strides; returns false
// when the merged shape still has more than kMaxDims dims (the caller copies to
// contiguous first).
template <int N>
bool make_strided_offsets(const std::vector<int64_t>& shape, const std::array<const std::vector<int64_t>*, N>& strides,
                          StridedOffsets<N>& out) {
  out.ndim = 0;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool mergeable = out.ndim > 0;
    for (int k = 0; k < N && mergeable; ++k)
      mergeable = out.strides[k][out.ndim - 1] == (*strides[k])[d] * shape[d];
    if (mergeable) {
      out.sizes[out.ndim - 1] *= shape[d];
      for (int k = 0; k < N; ++k) out.strides[k][out.ndim - 1] = (*strides[k])[d];
      continue;
    }
    if (out.ndim == kMaxDims) return false;
    out.sizes[out.ndim] = shape[d];
    for (int k = 0; k < N; ++k) out.strides[k][out.ndim] = (*strides[k])[d];
    ++out.ndim;
  }
  if (out.ndim == 0) {
    out.ndim = 1;
    out.sizes[0] = 1;
    for (int k = 0; k < N; ++k) out.strides[k][0] = 0;
  }
  return true;
}

}  // namespace tpp::cuda

// After every kernel launch: a bad configuration fails here, naming the launch.
#define TPP_CUDA_CHECK_LAUNCH() TPP_CUDA_CHECK(cudaGetLastError())

#if defined(__CUDACC__) || defined(TPP_CUDA_EMULATED)  // nvcc, or the emulated device (tests/cuda_emu)
// for (int64_t i : grid_stride(n)) style loops without the range machinery.
#define TPP_GRID_STRIDE_LOOP(i, n)                                                                 \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n);            \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)
#endif
