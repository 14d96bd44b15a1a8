#include "ops/cuda/pool.h"

#include "engine/cuda/indexing.h"
#include "engine/cuda/block_reduce.cuh"

namespace tpp::ops::cuda::kernels {

namespace device = tpp::cuda::device;

namespace {

using tpp::cuda::with_floating_type;

using tpp::cuda::blocks_for;
using tpp::cuda::kThreadsPerBlock;

// The windows: ops/pool_types.h (shared with the CPU kernels).
using Span = PoolSpan;
using Taps = PoolTaps;

__device__ int64_t lesser(int64_t a, int64_t b) { return a < b ? a : b; }

// The outputs whose windows cover input index `at` along one axis:
// out * stride - pad <= at < out * stride - pad + kernel, clamped to [0, out_size).
struct Covering {
  int64_t first, last;  // inclusive; empty when first > last
};

__device__ Covering covering(int64_t at, int64_t stride, int64_t pad, int64_t kernel, int64_t out_size) {
  const int64_t before = at + pad - kernel;  // window starts must exceed this
  const int64_t first = before < 0 ? 0 : before / stride + 1;
  const int64_t last = lesser((at + pad) / stride, out_size - 1);
  return {first, last};
}

__device__ int64_t divisor(const PoolGeometry& g, const Span& rows, const Span& cols) {
  return g.count_include_pad ? rows.padded * cols.padded : (rows.end - rows.begin) * (cols.end - cols.begin);
}

// A window's extent with its dilation: the span of input its taps reach over.
__device__ int64_t dilated_extent(int64_t kernel, int64_t dilation) { return dilation * (kernel - 1) + 1; }

// The first maximum of each window, but its last NaN (NaN wins), as PyTorch's
// kernels pick them, scanning the taps row by row as the CPU kernel. A window
// whose taps all fall in the padding (dilation can make one) gives -inf with
// index -1, which no input element matches.
template <class T>
__global__ void max_forward_kernel(const T* x, T* y, int64_t* argmax, PoolGeometry g) {
  const int64_t out_plane = g.out_h * g.out_w, in_plane = g.in_h * g.in_w;
  TPP_GRID_STRIDE_LOOP(i, g.planes * out_plane) {
    const int64_t p = i / out_plane, oh = i % out_plane / g.out_w, ow = i % g.out_w;
    const T* in = x + p * in_plane;
    const Taps rows = dilated_pool_window(oh, g.stride_h, g.pad_h, g.kernel_h, g.dilation_h, g.in_h);
    const Taps cols = dilated_pool_window(ow, g.stride_w, g.pad_w, g.kernel_w, g.dilation_w, g.in_w);
    int64_t where = -1;
    for (int64_t h = rows.begin; h < rows.end; h += rows.step)
      for (int64_t w = cols.begin; w < cols.end; w += cols.step) {
        const T v = in[h * g.in_w + w];
        if (where < 0 || isnan(v) || v > in[where]) where = h * g.in_w + w;
      }
    y[i] = where < 0 ? device::negative_infinity<T>() : in[where];
    argmax[i] = where;
  }
}

// dx[p, h, w] = the sum of dy over the windows covering (h, w) whose maximum
// it is, added in the CPU kernel's order (output row-major).
template <class T>
__global__ void max_backward_kernel(const T* dy, const int64_t* argmax, T* dx, PoolGeometry g) {
  const int64_t out_plane = g.out_h * g.out_w, in_plane = g.in_h * g.in_w;
  TPP_GRID_STRIDE_LOOP(i, g.planes * in_plane) {
    const int64_t p = i / in_plane, at = i % in_plane, h = at / g.in_w, w = at % g.in_w;
    // Every window whose extent covers (h, w); argmax says which took it.
    const Covering rows = covering(h, g.stride_h, g.pad_h, dilated_extent(g.kernel_h, g.dilation_h), g.out_h);
    const Covering cols = covering(w, g.stride_w, g.pad_w, dilated_extent(g.kernel_w, g.dilation_w), g.out_w);
    T acc = 0;
    for (int64_t oh = rows.first; oh <= rows.last; ++oh)
      for (int64_t ow = cols.first; ow <= cols.last; ++ow) {
        const int64_t o = p * out_plane + oh * g.out_w + ow;
        if (argmax[o] == at) acc += dy[o];
      }
    dx[i] = acc;
  }
}

template <class T>
__global__ void avg_forward_kernel(const T* x, T* y, PoolGeometry g) {
  const int64_t out_plane = g.out_h * g.out_w, in_plane = g.in_h * g.in_w;
  TPP_GRID_STRIDE_LOOP(i, g.planes * out_plane) {
    const int64_t p = i / out_plane, oh = i % out_plane / g.out_w, ow = i % g.out_w;
    const T* in = x + p * in_plane;
    const Span rows = pool_window(oh, g.stride_h, g.pad_h, g.kernel_h, g.in_h);
    const Span cols = pool_window(ow, g.stride_w, g.pad_w, g.kernel_w, g.in_w);
    T acc = 0;
    for (int64_t h = rows.begin; h < rows.end; ++h)
      for (int64_t w = cols.begin; w < cols.end; ++w) acc += in[h * g.in_w + w];
    y[i] = acc / static_cast<T>(divisor(g, rows, cols));
  }
}

// dx[p, h, w] = the sum of dy / divisor over the windows covering (h, w), in
// the CPU kernel's order.
template <class T>
__global__ void avg_backward_kernel(const T* dy, T* dx, PoolGeometry g) {
  const int64_t out_plane = g.out_h * g.out_w, in_plane = g.in_h * g.in_w;
  TPP_GRID_STRIDE_LOOP(i, g.planes * in_plane) {
    const int64_t p = i / in_plane, at = i % in_plane, h = at / g.in_w, w = at % g.in_w;
    const Covering row_outs = covering(h, g.stride_h, g.pad_h, g.kernel_h, g.out_h);
    const Covering col_outs = covering(w, g.stride_w, g.pad_w, g.kernel_w, g.out_w);
    T acc = 0;
    for (int64_t oh = row_outs.first; oh <= row_outs.last; ++oh) {
      const Span rows = pool_window(oh, g.stride_h, g.pad_h, g.kernel_h, g.in_h);
      for (int64_t ow = col_outs.first; ow <= col_outs.last; ++ow) {
        const Span cols = pool_window(ow, g.stride_w, g.pad_w, g.kernel_w, g.in_w);
        acc += dy[p * out_plane + oh * g.out_w + ow] / static_cast<T>(divisor(g, rows, cols));
      }
    }
    dx[i] = acc;
  }
}

// The outputs whose adaptive windows cover input index `at` along one axis:
// from floor(at out / in) to ceil((at + 1) out / in) - 1.
__device__ Covering adaptive_covering(int64_t at, int64_t in_size, int64_t out_size) {
  return {at * out_size / in_size, lesser(((at + 1) * out_size + in_size - 1) / in_size - 1, out_size - 1)};
}

// One thread per output; the sum in double, as the CPU kernel (a 1x1 output
// sums a whole plane).
template <class T>
__global__ void adaptive_avg_forward_kernel(const T* x, T* y, PoolGeometry g) {
  const int64_t out_plane = g.out_h * g.out_w, in_plane = g.in_h * g.in_w;
  TPP_GRID_STRIDE_LOOP(i, g.planes * out_plane) {
    const int64_t p = i / out_plane, oh = i % out_plane / g.out_w, ow = i % g.out_w;
    const T* in = x + p * in_plane;
    const Span rows = adaptive_pool_window(oh, g.in_h, g.out_h), cols = adaptive_pool_window(ow, g.in_w, g.out_w);
    double acc = 0;
    for (int64_t h = rows.begin; h < rows.end; ++h)
      for (int64_t w = cols.begin; w < cols.end; ++w) acc += static_cast<double>(in[h * g.in_w + w]);
    y[i] = static_cast<T>(acc / static_cast<double>(rows.padded * cols.padded));
  }
}

// dx[p, h, w] = the sum of dy / window size over the windows covering (h, w),
// in the CPU kernel's order (output row-major).
template <class T>
__global__ void adaptive_avg_backward_kernel(const T* dy, T* dx, PoolGeometry g) {
  const int64_t out_plane = g.out_h * g.out_w, in_plane = g.in_h * g.in_w;
  TPP_GRID_STRIDE_LOOP(i, g.planes * in_plane) {
    const int64_t p = i / in_plane, at = i % in_plane, h = at / g.in_w, w = at % g.in_w;
    const Covering row_outs = adaptive_covering(h, g.in_h, g.out_h);
    const Covering col_outs = adaptive_covering(w, g.in_w, g.out_w);
    T acc = 0;
    for (int64_t oh = row_outs.first; oh <= row_outs.last; ++oh) {
      const Span rows = adaptive_pool_window(oh, g.in_h, g.out_h);
      for (int64_t ow = col_outs.first; ow <= col_outs.last; ++ow) {
        const Span cols = adaptive_pool_window(ow, g.in_w, g.out_w);
        acc += dy[p * out_plane + oh * g.out_w + ow] / static_cast<T>(rows.padded * cols.padded);
      }
    }
    dx[i] = acc;
  }
}

}  // namespace

void launch_max_pool2d_forward(const void* x, void* y, int64_t* argmax, DType dtype, const PoolGeometry& g,
                               cudaStream_t stream) {
  const int64_t n = g.planes * g.out_h * g.out_w;
  if (n == 0) return;
  with_floating_type(dtype, [&](auto type) {
    using T = decltype(type);
    max_forward_kernel<T><<<blocks_for(n), kThreadsPerBlock, 0, stream>>>(static_cast<const T*>(x),
                                                                          static_cast<T*>(y), argmax, g);
  });
  TPP_CUDA_CHECK_LAUNCH();
}

void launch_max_pool2d_backward(const void* dy, const int64_t* argmax, void* dx, DType dtype, const PoolGeometry& g,
                                cudaStream_t stream) {
  const int64_t n = g.planes * g.in_h * g.in_w;
  if (n == 0) return;
  with_floating_type(dtype, [&](auto type) {
    using T = decltype(type);
    max_backward_kernel<T><<<blocks_for(n), kThreadsPerBlock, 0, stream>>>(static_cast<const T*>(dy), argmax,
                                                                           static_cast<T*>(dx), g);
  });
  TPP_CUDA_CHECK_LAUNCH();
}

void launch_avg_pool2d_forward(const void* x, void* y, DType dtype, const PoolGeometry& g, cudaStream_t stream) {
  const int64_t n = g.planes * g.out_h * g.out_w;
  if (n == 0) return;
  with_floating_type(dtype, [&](auto type) {
    using T = decltype(type);
    avg_forward_kernel<T><<<blocks_for(n), kThreadsPerBlock, 0, stream>>>(static_cast<const T*>(x),
                                                                          static_cast<T*>(y), g);
  });
  TPP_CUDA_CHECK_LAUNCH();
}

void launch_avg_pool2d_backward(const void* dy, void* dx, DType dtype, const PoolGeometry& g, cudaStream_t stream) {
  const int64_t n = g.planes * g.in_h * g.in_w;
  if (n == 0) return;
  with_floating_type(dtype, [&](auto type) {
    using T = decltype(type);
    avg_backward_kernel<T><<<blocks_for(n), kThreadsPerBlock, 0, stream>>>(static_cast<const T*>(dy),
                                                                           static_cast<T*>(dx), g);
  });
  TPP_CUDA_CHECK_LAUNCH();
}

void launch_adaptive_avg_pool2d_forward(const void* x, void* y, DType dtype, const PoolGeometry& g,
                                        cudaStream_t stream) {
  const int64_t n = g.planes * g.out_h * g.out_w;
  if (n == 0) return;
  with_floating_type(dtype, [&](auto type) {
    using T = decltype(type);
    adaptive_avg_forward_kernel<T><<<blocks_for(n), kThreadsPerBlock, 0, stream>>>(static_cast<const T*>(x),
                                                                                   static_cast<T*>(y), g);
  });
  TPP_CUDA_CHECK_LAUNCH();
}

void launch_adaptive_avg_pool2d_backward(const void* dy, void* dx, DType dtype, const PoolGeometry& g,
                                         cudaStream_t stream) {
  const int64_t n = g.planes * g.in_h * g.in_w;
  if (n == 0) return;
  with_floating_type(dtype, [&](auto type) {
    using T = decltype(type);
    adaptive_avg_backward_kernel<T><<<blocks_for(n), kThreadsPerBlock, 0, stream>>>(static_cast<const T*>(dy),
                                                                                    static_cast<T*>(dx), g);
  });
  TPP_CUDA_CHECK_LAUNCH();
}

}  // namespace tpp::ops::cuda::kernels
