// Reduction kernels. Over all elements: a fixed two-pass tree (a grid of at
// most kMaxPartials blocks writes one partial each, one block combines them),
// so results are deterministic and nothing is read back to the host. Over a
// dim: one warp per row when the reduced dim is innermost, else one thread
// per output walking the reduced dim (coalesced across the inner dim).
#include "ops/cuda/reduce.h"

#include <cmath>
#include <cstdint>

#include "engine/cuda/indexing.h"

namespace tpp::ops::cuda::kernels {

namespace {

using tpp::cuda::with_floating_type;

using tpp::cuda::blocks_for;
using tpp::cuda::kThreadsPerBlock;

constexpr int64_t kMaxPartials = 1024;
constexpr int64_t kElementsPerThread = 4;  // in the first pass, before blocks are added
constexpr int kWarp = 32;

template <class T>
__device__ bool is_nan(T v) {
  return v != v;
}

// Strictly greater; NaN beats everything but NaN (as the CPU kernels).
template <class T>
__device__ bool beats(T candidate, T best) {
  return candidate > best || (is_nan(candidate) && !is_nan(best));
}

// Equal to the maximum m, where a NaN maximum is matched by every NaN.
template <class T>
__device__ bool equals_max(T v, T m) {
  return is_nan(m) ? is_nan(v) : v == m;
}

// Accumulators of the two-pass reduction: the partial type V, its identity,
// how an element enters, and how two partials combine.
template <class T>
struct SumOf {
  using V = double;
  __device__ V identity() const { return 0; }
  __device__ V load(T v) const { return static_cast<double>(v); }
  __device__ V combine(V a, V b) const { return a + b; }
};

template <class T>
struct SumOfSquares {
  using V = double;
  __device__ V identity() const { return 0; }
  __device__ V load(T v) const { return static_cast<double>(v) * static_cast<double>(v); }
  __device__ V combine(V a, V b) const { return a + b; }
};

template <class T>
struct MaxOf {
  using V = T;
  __device__ V identity() const { return static_cast<T>(-INFINITY); }
  __device__ V load(T v) const { return v; }
  __device__ V combine(V a, V b) const { return beats(b, a) ? b : a; }
};

// How many elements equal the maximum stored at *max_value (on the device).
template <class T>
struct CountOfMax {
  using V = long long;
  const T* max_value;
  __device__ V identity() const { return 0; }
  __device__ V load(T v) const { return equals_max(v, *max_value) ? 1 : 0; }
  __device__ V combine(V a, V b) const { return a + b; }
};

// The combination of v over the block (blockDim.x == kThreadsPerBlock, a
// power of two), returned to every thread.
template <class Acc>
__device__ typename Acc::V block_reduce(typename Acc::V v, const Acc& acc) {
  __shared__ typename Acc::V shared[kThreadsPerBlock];
  shared[threadIdx.x] = v;
  __syncthreads();
  for (unsigned width = kThreadsPerBlock / 2; width > 0; width /= 2) {
    if (threadIdx.x < width) shared[threadIdx.x] = acc.combine(shared[threadIdx.x], shared[threadIdx.x + width]);
    __syncthreads();
  }
  const typename Acc::V result = shared[0];
  __syncthreads();  // shared may be reused by the caller's next reduction
  return result;
}

template <class T, class Acc>
__global__ void partials_kernel(const T* x, int64_t n, Acc acc, typename Acc::V* partials) {
  typename Acc::V v = acc.identity();
  TPP_GRID_STRIDE_LOOP(i, n) v = acc.combine(v, acc.load(x[i]));
  v = block_reduce(v, acc);
  if (threadIdx.x == 0) partials[blockIdx.x] = v;
}

template <class Acc, class Finish>
__global__ void combine_partials_kernel(const typename Acc::V* partials, int64_t count, Acc acc, Finish finish) {
  typename Acc::V v = acc.identity();
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) v = acc.combine(v, partials[i]);
  v = block_reduce(v, acc);
  if (threadIdx.x == 0) finish(v);
}

template <class T>
struct WriteScaled {
  T* out;
  double scale;
  __device__ void operator()(double v) const { out[0] = static_cast<T>(scale * v); }
};

template <class T>
struct WriteSqrt {
  T* out;
  __device__ void operator()(double v) const { out[0] = static_cast<T>(::sqrt(v)); }
};

template <class V>
struct WriteValue {
  V* out;
  __device__ void operator()(V v) const { out[0] = v; }
};

template <class T, class Acc, class Finish>
void reduce_all(const T* x, int64_t n, const Acc& acc, void* partials, const Finish& finish, cudaStream_t stream) {
  using V = typename Acc::V;
  static_assert(sizeof(V) <= 8, "partials hold 8-byte slots");
  const int64_t blocks = all_reduce_blocks(n);
  partials_kernel<T, Acc><<<static_cast<unsigned>(blocks), kThreadsPerBlock, 0, stream>>>(x, n, acc,
                                                                                          static_cast<V*>(partials));
  TPP_CUDA_CHECK_LAUNCH();
  combine_partials_kernel<Acc, Finish><<<1, kThreadsPerBlock, 0, stream>>>(static_cast<const V*>(partials), blocks,
                                                                           acc, finish);
  TPP_CUDA_CHECK_LAUNCH();
}

template <class T>
__global__ void max_all_backward_kernel(const T* x, const T* max_value, const T* dy, const long long* ties, T* dx,
                                        int64_t n) {
  const T m = *max_value;
  const T share = static_cast<T>(static_cast<double>(*dy) / static_cast<double>(*ties));
  TPP_GRID_STRIDE_LOOP(i, n) dx[i] = equals_max(x[i], m) ? share : T(0);
}

template <class T>
__global__ void norm_backward_kernel(const T* x, const T* norm_value, const T* dy, T* dx, int64_t n) {
  // dy / norm in double: for a tiny norm (1e-40 in f32) it overflows T.
  const double norm = static_cast<double>(*norm_value);
  const double scale = norm == 0 ? 0.0 : static_cast<double>(*dy) / norm;
  TPP_GRID_STRIDE_LOOP(i, n) dx[i] = static_cast<T>(static_cast<double>(x[i]) * scale);
}

// One warp per row of a [rows, reduce] x: each lane keeps the first maximum of
// its strided elements, then the lanes combine, the lower index winning ties.
template <class T>
__global__ void max_rows_warp_kernel(const T* x, T* values, int64_t* indices, int64_t rows, int64_t reduce) {
  const int lane = static_cast<int>(threadIdx.x % kWarp);
  const int64_t warps_per_block = blockDim.x / kWarp;
  const int64_t first_row = static_cast<int64_t>(blockIdx.x) * warps_per_block + threadIdx.x / kWarp;
  const int64_t row_stride = static_cast<int64_t>(gridDim.x) * warps_per_block;
  for (int64_t row = first_row; row < rows; row += row_stride) {  // uniform within a warp
    const T* p = x + row * reduce;
    T best = p[0];
    int64_t where = 0;
    for (int64_t r = lane; r < reduce; r += kWarp)
      if (beats(p[r], best)) best = p[r], where = r;
    for (int offset = kWarp / 2; offset > 0; offset /= 2) {
      const T other = __shfl_down_sync(0xffffffffu, best, offset);
      const long long other_where = __shfl_down_sync(0xffffffffu, static_cast<long long>(where), offset);
      if (beats(other, best) || (!beats(best, other) && other_where < where)) best = other, where = other_where;
    }
    if (lane == 0) values[row] = best, indices[row] = where;
  }
}

// One thread per output [o, i] of an [outer, reduce, inner] x.
template <class T>
__global__ void max_inner_kernel(const T* x, T* values, int64_t* indices, ReduceLayout l) {
  TPP_GRID_STRIDE_LOOP(k, l.outer * l.inner) {
    const int64_t o = k / l.inner, i = k % l.inner;
    const T* p = x + o * l.reduce * l.inner + i;
    T best = p[0];
    int64_t where = 0;
    for (int64_t r = 1; r < l.reduce; ++r) {
      const T v = p[r * l.inner];
      if (beats(v, best)) best = v, where = r;
    }
    values[k] = best;
    indices[k] = where;
  }
}

template <class T>
__global__ void max_scatter_kernel(const T* dy, const int64_t* indices, T* dx, ReduceLayout l) {
  TPP_GRID_STRIDE_LOOP(k, l.outer * l.inner) {
    const int64_t o = k / l.inner, i = k % l.inner;
    dx[(o * l.reduce + indices[k]) * l.inner + i] = dy[k];
  }
}

}  // namespace

int64_t all_reduce_blocks(int64_t n) {
  const int64_t per_block = static_cast<int64_t>(kThreadsPerBlock) * kElementsPerThread;
  const int64_t blocks = (n + per_block - 1) / per_block;
  return blocks < 1 ? 1 : (blocks > kMaxPartials ? kMaxPartials : blocks);
}

void launch_sum_all(const void* x, DType dtype, int64_t n, double scale, void* out, void* partials,
                    cudaStream_t stream) {
  with_floating_type(dtype, [&](auto type) {
    using T = decltype(type);
    reduce_all(static_cast<const T*>(x), n, SumOf<T>{}, partials, WriteScaled<T>{static_cast<T*>(out), scale}, stream);
  });
}

void launch_sum_squares_sqrt(const void* x, DType dtype, int64_t n, void* out, void* partials, cudaStream_t stream) {
  with_floating_type(dtype, [&](auto type) {
    using T = decltype(type);
    reduce_all(static_cast<const T*>(x), n, SumOfSquares<T>{}, partials, WriteSqrt<T>{static_cast<T*>(out)}, stream);
  });
}

void launch_max_all(const void* x, DType dtype, int64_t n, void* out, void* partials, cudaStream_t stream) {
  with_floating_type(dtype, [&](auto type) {
    using T = decltype(type);
    reduce_all(static_cast<const T*>(x), n, MaxOf<T>{}, partials, WriteValue<T>{static_cast<T*>(out)}, stream);
  });
}

void launch_max_all_backward(const void* x, const void* y, const void* dy, void* dx, DType dtype, int64_t n,
                             void* partials, cudaStream_t stream) {
  if (n == 0) return;
  with_floating_type(dtype, [&](auto type) {
    using T = decltype(type);
    long long* ties = static_cast<long long*>(partials) + all_reduce_blocks(n);
    reduce_all(static_cast<const T*>(x), n, CountOfMax<T>{static_cast<const T*>(y)}, partials,
               WriteValue<long long>{ties}, stream);
    max_all_backward_kernel<T><<<blocks_for(n), kThreadsPerBlock, 0, stream>>>(
        static_cast<const T*>(x), static_cast<const T*>(y), static_cast<const T*>(dy), ties, static_cast<T*>(dx), n);
    TPP_CUDA_CHECK_LAUNCH();
  });
}

void launch_norm_backward(const void* x, const void* y, const void* dy, void* dx, DType dtype, int64_t n,
                          cudaStream_t stream) {
  if (n == 0) return;
  with_floating_type(dtype, [&](auto type) {
    using T = decltype(type);
    norm_backward_kernel<T><<<blocks_for(n), kThreadsPerBlock, 0, stream>>>(
        static_cast<const T*>(x), static_cast<const T*>(y), static_cast<const T*>(dy), static_cast<T*>(dx), n);
    TPP_CUDA_CHECK_LAUNCH();
  });
}

void launch_max_dim(const void* x, void* values, int64_t* indices, DType dtype, const ReduceLayout& layout,
                    cudaStream_t stream) {
  const int64_t outputs = layout.outer * layout.inner;
  if (outputs == 0 || layout.reduce == 0) return;
  with_floating_type(dtype, [&](auto type) {
    using T = decltype(type);
    const T* px = static_cast<const T*>(x);
    T* pv = static_cast<T*>(values);
    if (layout.inner == 1)
      max_rows_warp_kernel<T><<<blocks_for(outputs * kWarp), kThreadsPerBlock, 0, stream>>>(px, pv, indices, outputs,
                                                                                          layout.reduce);
    else
      max_inner_kernel<T><<<blocks_for(outputs), kThreadsPerBlock, 0, stream>>>(px, pv, indices, layout);
    TPP_CUDA_CHECK_LAUNCH();
  });
}

void launch_max_dim_backward(const void* dy, const int64_t* indices, void* dx, DType dtype, const ReduceLayout& layout,
                             cudaStream_t stream) {
  const int64_t outputs = layout.outer * layout.inner;
  const int64_t size = outputs * layout.reduce;
  if (size == 0) return;
  // 0.0 is all zero bits in f32 and f64
  TPP_CUDA_CHECK(cudaMemsetAsync(dx, 0, static_cast<size_t>(size) * element_size(dtype), stream));
  with_floating_type(dtype, [&](auto type) {
    using T = decltype(type);
    max_scatter_kernel<T><<<blocks_for(outputs), kThreadsPerBlock, 0, stream>>>(static_cast<const T*>(dy), indices,
                                                                               static_cast<T*>(dx), layout);
    TPP_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace tpp::ops::cuda::kernels
