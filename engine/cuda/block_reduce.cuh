// Device-side helpers shared by the CUDA kernel files (nvcc only): a
// deterministic block-wide reduction (fixed shuffle tree, so the same input
// gives the same bits on every run), launch sizes for one block per row, and
// math functions overloaded on float and double.
#pragma once

#include <cuda_runtime.h>
#include <math_constants.h>

#include <cstdint>

namespace tpp::cuda::device {

constexpr int kWarpSize = 32;
constexpr int kMaxRowThreads = 256;

// Threads for one block per row of `length` elements: a multiple of the warp
// size (block_reduce needs whole warps), at most max_threads (<= 1024, a
// multiple of the warp size).
inline int row_threads(int64_t length, int max_threads = kMaxRowThreads) {
  const int64_t warps = (length + kWarpSize - 1) / kWarpSize;
  const int64_t threads = (warps < 1 ? 1 : warps) * kWarpSize;
  return static_cast<int>(threads < max_threads ? threads : max_threads);
}

// Blocks for one block per row (or channel), each block looping over
// blockIdx.x, blockIdx.x + gridDim.x, ... when there are more rows.
inline unsigned row_blocks(int64_t rows) {
  constexpr int64_t kMaxBlocks = 65535 * 8;
  return static_cast<unsigned>(rows < 1 ? 1 : (rows < kMaxBlocks ? rows : kMaxBlocks));
}

struct Sum {
  template <class T>
  __device__ T operator()(T a, T b) const { return a + b; }
};

// std::max's rule ((a < b) ? b : a): NaN does not win, as in the CPU kernels.
struct Max {
  template <class T>
  __device__ T operator()(T a, T b) const { return a < b ? b : a; }
};

template <class T, class Op>
__device__ T warp_reduce(T value, Op op) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
    value = op(value, __shfl_down_sync(0xffffffffu, value, offset));
  return value;
}

// The reduction of `value` over the block, returned to every thread. Every
// thread of the block must call it (no early returns before), and blockDim.x
// must be a multiple of kWarpSize, at most 1024. Safe to call repeatedly.
template <class T, class Op>
__device__ T block_reduce(T value, Op op, T identity) {
  __shared__ T partials[kWarpSize];
  __shared__ T result;
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  value = warp_reduce(value, op);
  __syncthreads();  // the previous call has finished reading partials and result
  if (lane == 0) partials[warp] = value;
  __syncthreads();
  if (warp == 0) {
    const int warps = static_cast<int>(blockDim.x) / kWarpSize;
    value = warp_reduce(lane < warps ? partials[lane] : identity, op);
    if (lane == 0) result = value;
  }
  __syncthreads();
  return result;
}

__device__ inline float exp_of(float v) { return expf(v); }
__device__ inline double exp_of(double v) { return exp(v); }
__device__ inline float log_of(float v) { return logf(v); }
__device__ inline double log_of(double v) { return log(v); }

template <class T>
__device__ T negative_infinity();
template <>
__device__ inline float negative_infinity<float>() { return -CUDART_INF_F; }
template <>
__device__ inline double negative_infinity<double>() { return -CUDART_INF; }

}  // namespace tpp::cuda::device
