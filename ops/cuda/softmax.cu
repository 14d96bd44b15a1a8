#include "ops/cuda/softmax.h"

#include "engine/cuda/indexing.h"
#include "engine/cuda/block_reduce.cuh"

namespace tpp::ops::cuda::kernels {

namespace device = tpp::cuda::device;

namespace {

using tpp::cuda::with_floating_type;

using device::block_reduce;
using device::exp_of;
using device::log_of;

// Rows of `dim` contiguous elements (inner == 1), one block per row: the
// maximum, then the sum of exponentials in double, as the CPU kernel.
template <class T>
__global__ void softmax_rows_kernel(const T* x, T* y, int64_t rows, int64_t dim, bool log) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * dim;
    T* yr = y + r * dim;
    T m = device::negative_infinity<T>();
    for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) m = device::Max{}(m, xr[j]);
    m = block_reduce(m, device::Max{}, device::negative_infinity<T>());
    double total = 0;
    for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) {
      const T e = exp_of(xr[j] - m);
      if (!log) yr[j] = e;
      total += e;
    }
    total = block_reduce(total, device::Sum{}, 0.0);
    if (log) {
      const T log_total = static_cast<T>(log_of(total));
      for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) yr[j] = xr[j] - m - log_total;
    } else {
      const T inv = static_cast<T>(1.0 / total);
      for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) yr[j] *= inv;  // this thread's own e
    }
  }
}

// One thread per (outer, inner) column, walking down dim (stride inner):
// neighbouring threads read neighbouring elements.
template <class T>
__global__ void softmax_columns_kernel(const T* x, T* y, SoftmaxLayout l, bool log) {
  TPP_GRID_STRIDE_LOOP(col, l.outer * l.inner) {
    const int64_t start = (col / l.inner) * l.dim * l.inner + col % l.inner;
    const T* xc = x + start;
    T* yc = y + start;
    T m = device::negative_infinity<T>();
    for (int64_t d = 0; d < l.dim; ++d) m = device::Max{}(m, xc[d * l.inner]);
    double total = 0;
    for (int64_t d = 0; d < l.dim; ++d) {
      const T e = exp_of(xc[d * l.inner] - m);
      if (!log) yc[d * l.inner] = e;
      total += e;
    }
    if (log) {
      const T log_total = static_cast<T>(log_of(total));
      for (int64_t d = 0; d < l.dim; ++d) yc[d * l.inner] = xc[d * l.inner] - m - log_total;
    } else {
      const T inv = static_cast<T>(1.0 / total);
      for (int64_t d = 0; d < l.dim; ++d) yc[d * l.inner] *= inv;
    }
  }
}

// s = sum(dy * y) (softmax) or sum(dy) (log_softmax) over the row, then dx.
template <class T>
__device__ T softmax_grad(T y, T dy, T s, bool log) {
  return log ? dy - exp_of(y) * s : y * (dy - s);
}

template <class T>
__global__ void softmax_backward_rows_kernel(const T* y, const T* dy, T* dx, int64_t rows, int64_t dim, bool log) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t base = r * dim;
    double dot = 0;
    for (int64_t j = threadIdx.x; j < dim; j += blockDim.x)
      dot += log ? static_cast<double>(dy[base + j]) : static_cast<double>(dy[base + j]) * y[base + j];
    const T s = static_cast<T>(block_reduce(dot, device::Sum{}, 0.0));
    for (int64_t j = threadIdx.x; j < dim; j += blockDim.x)
      dx[base + j] = softmax_grad(y[base + j], dy[base + j], s, log);
  }
}

template <class T>
__global__ void softmax_backward_columns_kernel(const T* y, const T* dy, T* dx, SoftmaxLayout l, bool log) {
  TPP_GRID_STRIDE_LOOP(col, l.outer * l.inner) {
    const int64_t start = (col / l.inner) * l.dim * l.inner + col % l.inner;
    double dot = 0;
    for (int64_t d = 0; d < l.dim; ++d) {
      const int64_t k = start + d * l.inner;
      dot += log ? static_cast<double>(dy[k]) : static_cast<double>(dy[k]) * y[k];
    }
    const T s = static_cast<T>(dot);
    for (int64_t d = 0; d < l.dim; ++d) {
      const int64_t k = start + d * l.inner;
      dx[k] = softmax_grad(y[k], dy[k], s, log);
    }
  }
}

// A block per row pays off once a row is longer than a warp.
bool use_rows(const SoftmaxLayout& l) { return l.inner == 1 && l.dim > device::kWarpSize; }

}  // namespace

void launch_softmax_forward(const void* x, void* y, DType dtype, const SoftmaxLayout& l, bool log,
                            cudaStream_t stream) {
  const int64_t columns = l.outer * l.inner;
  if (columns == 0 || l.dim == 0) return;
  with_floating_type(dtype, [&](auto type) {
    using T = decltype(type);
    if (use_rows(l))
      softmax_rows_kernel<T><<<device::row_blocks(l.outer), device::row_threads(l.dim), 0, stream>>>(
          static_cast<const T*>(x), static_cast<T*>(y), l.outer, l.dim, log);
    else
      softmax_columns_kernel<T><<<tpp::cuda::blocks_for(columns), tpp::cuda::kThreadsPerBlock, 0, stream>>>(
          static_cast<const T*>(x), static_cast<T*>(y), l, log);
  });
  TPP_CUDA_CHECK_LAUNCH();
}

void launch_softmax_backward(const void* y, const void* dy, void* dx, DType dtype, const SoftmaxLayout& l, bool log,
                             cudaStream_t stream) {
  const int64_t columns = l.outer * l.inner;
  if (columns == 0 || l.dim == 0) return;
  with_floating_type(dtype, [&](auto type) {
    using T = decltype(type);
    if (use_rows(l))
      softmax_backward_rows_kernel<T><<<device::row_blocks(l.outer), device::row_threads(l.dim), 0, stream>>>(
          static_cast<const T*>(y), static_cast<const T*>(dy), static_cast<T*>(dx), l.outer, l.dim, log);
    else
      softmax_backward_columns_kernel<T><<<tpp::cuda::blocks_for(columns), tpp::cuda::kThreadsPerBlock, 0, stream>>>(
          static_cast<const T*>(y), static_cast<const T*>(dy), static_cast<T*>(dx), l, log);
  });
  TPP_CUDA_CHECK_LAUNCH();
}

}  // namespace tpp::ops::cuda::kernels
