#include "ops/cpu/pool.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace tpp::ops::cpu {

namespace {

// The windows: ops/pool_types.h (shared with the CUDA kernels).
using Span = PoolSpan;
using Taps = PoolTaps;

// Flat index of the first maximum in a window, or of its last NaN (NaN
// wins; the last, as PyTorch's kernels pick it); -1 for a window whose taps
// all fall in the padding (its maximum is -inf, as in PyTorch).
template <class T>
int64_t window_argmax(const T* plane, int64_t in_w, const Taps& rows, const Taps& cols) {
  int64_t where = -1;
  for (int64_t h = rows.begin; h < rows.end; h += rows.step)
    for (int64_t w = cols.begin; w < cols.end; w += cols.step) {
      const T v = plane[h * in_w + w];
      if (where < 0 || std::isnan(v) || v > plane[where]) where = h * in_w + w;
    }
  return where;
}

bool parallel_planes(const PoolGeometry& g) { return g.planes > 1 && g.planes * g.in_h * g.in_w > 4096; }

template <class T>
void max_forward(const T* x, const PoolGeometry& g, T* y, int64_t* argmax) {
  const int64_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w;
#pragma omp parallel for if (parallel_planes(g))
  for (int64_t p = 0; p < g.planes; ++p) {
    const T* in = x + p * in_plane;
    for (int64_t oh = 0; oh < g.out_h; ++oh) {
      const Taps rows = dilated_pool_window(oh, g.stride_h, g.pad_h, g.kernel_h, g.dilation_h, g.in_h);
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        const Taps cols = dilated_pool_window(ow, g.stride_w, g.pad_w, g.kernel_w, g.dilation_w, g.in_w);
        const int64_t where = window_argmax(in, g.in_w, rows, cols);
        y[p * out_plane + oh * g.out_w + ow] = where < 0 ? -std::numeric_limits<T>::infinity() : in[where];
        argmax[p * out_plane + oh * g.out_w + ow] = where;
      }
    }
  }
}

// The most common window (VGG's, and most pooling between conv stages):
// 2 x 2, stride 2, no padding or dilation. The general loop above spends most
// of its time on the window bounds; here the four taps are fixed, taken in
// window_argmax's order with its rule (first maximum, NaN wins).
bool is_two_by_two(const PoolGeometry& g) {
  return g.kernel_h == 2 && g.kernel_w == 2 && g.stride_h == 2 && g.stride_w == 2 && g.pad_h == 0 && g.pad_w == 0 &&
         g.dilation_h == 1 && g.dilation_w == 1;
}

template <class T>
void max_forward_two_by_two(const T* x, const PoolGeometry& g, T* y, int64_t* argmax) {
  const int64_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w;
#pragma omp parallel for if (parallel_planes(g))
  for (int64_t p = 0; p < g.planes; ++p) {
    const T* in = x + p * in_plane;
    T* out = y + p * out_plane;
    int64_t* arg = argmax + p * out_plane;
    for (int64_t oh = 0; oh < g.out_h; ++oh) {
      const int64_t top = 2 * oh * g.in_w;
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        const int64_t first = top + 2 * ow;
        const int64_t taps[3] = {first + 1, first + g.in_w, first + g.in_w + 1};
        int64_t where = first;
        T best = in[first];
        for (const int64_t t : taps) {
          const T v = in[t];
          if (std::isnan(v) || v > best) {
            best = v;
            where = t;
          }
        }
        out[oh * g.out_w + ow] = best;
        arg[oh * g.out_w + ow] = where;
      }
    }
  }
}

// Max pooling's values alone, over channels-last memory: each window's taps
// are whole channel vectors, so the maximum runs along channels in SIMD.
template <class T>
void max_values_channels_last(const T* x, const PoolGeometry& g, int64_t channels, T* y) {
  const int64_t images = g.planes / channels;
#pragma omp parallel for collapse(2) if (parallel_planes(g))
  for (int64_t n = 0; n < images; ++n)
    for (int64_t oh = 0; oh < g.out_h; ++oh) {
      const Taps rows = dilated_pool_window(oh, g.stride_h, g.pad_h, g.kernel_h, g.dilation_h, g.in_h);
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        const Taps cols = dilated_pool_window(ow, g.stride_w, g.pad_w, g.kernel_w, g.dilation_w, g.in_w);
        T* out = y + ((n * g.out_h + oh) * g.out_w + ow) * channels;
        std::fill(out, out + channels, -std::numeric_limits<T>::infinity());  // a window all in the padding
        for (int64_t h = rows.begin; h < rows.end; h += rows.step)
          for (int64_t w = cols.begin; w < cols.end; w += cols.step) {
            const T* in = x + ((n * g.in_h + h) * g.in_w + w) * channels;
#pragma omp simd
            for (int64_t c = 0; c < channels; ++c) out[c] = (in[c] > out[c] || in[c] != in[c]) ? in[c] : out[c];
          }
      }
    }
}

template <class T>
void max_backward(const T* dy, const int64_t* argmax, const PoolGeometry& g, T* dx) {
  const int64_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w;
#pragma omp parallel for if (parallel_planes(g))
  for (int64_t p = 0; p < g.planes; ++p) {
    T* out = dx + p * in_plane;
    std::fill(out, out + in_plane, T(0));
    for (int64_t i = 0; i < out_plane; ++i)
      if (argmax[p * out_plane + i] >= 0) out[argmax[p * out_plane + i]] += dy[p * out_plane + i];
  }
}

template <class T>
void avg_forward(const T* x, const PoolGeometry& g, T* y) {
  const int64_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w;
#pragma omp parallel for if (parallel_planes(g))
  for (int64_t p = 0; p < g.planes; ++p) {
    const T* in = x + p * in_plane;
    for (int64_t oh = 0; oh < g.out_h; ++oh) {
      const Span rows = pool_window(oh, g.stride_h, g.pad_h, g.kernel_h, g.in_h);
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        const Span cols = pool_window(ow, g.stride_w, g.pad_w, g.kernel_w, g.in_w);
        T acc = 0;
        for (int64_t h = rows.begin; h < rows.end; ++h)
          for (int64_t w = cols.begin; w < cols.end; ++w) acc += in[h * g.in_w + w];
        const int64_t divisor = g.count_include_pad ? rows.padded * cols.padded
                                                    : (rows.end - rows.begin) * (cols.end - cols.begin);
        y[p * out_plane + oh * g.out_w + ow] = acc / static_cast<T>(divisor);
      }
    }
  }
}

template <class T>
void avg_backward(const T* dy, const PoolGeometry& g, T* dx) {
  const int64_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w;
#pragma omp parallel for if (parallel_planes(g))
  for (int64_t p = 0; p < g.planes; ++p) {
    T* out = dx + p * in_plane;
    std::fill(out, out + in_plane, T(0));
    for (int64_t oh = 0; oh < g.out_h; ++oh) {
      const Span rows = pool_window(oh, g.stride_h, g.pad_h, g.kernel_h, g.in_h);
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        const Span cols = pool_window(ow, g.stride_w, g.pad_w, g.kernel_w, g.in_w);
        const int64_t divisor = g.count_include_pad ? rows.padded * cols.padded
                                                    : (rows.end - rows.begin) * (cols.end - cols.begin);
        const T share = dy[p * out_plane + oh * g.out_w + ow] / static_cast<T>(divisor);
        for (int64_t h = rows.begin; h < rows.end; ++h)
          for (int64_t w = cols.begin; w < cols.end; ++w) out[h * g.in_w + w] += share;
      }
    }
  }
}

// fn(plane, output index, rows, cols) for every output of every plane.
template <class Fn>
void for_each_adaptive_window(const PoolGeometry& g, Fn fn) {
#pragma omp parallel for if (parallel_planes(g))
  for (int64_t p = 0; p < g.planes; ++p)
    for (int64_t oh = 0; oh < g.out_h; ++oh) {
      const Span rows = adaptive_pool_window(oh, g.in_h, g.out_h);
      for (int64_t ow = 0; ow < g.out_w; ++ow)
        fn(p, oh * g.out_w + ow, rows, adaptive_pool_window(ow, g.in_w, g.out_w));
    }
}

template <class T>
void adaptive_avg_forward(const T* x, const PoolGeometry& g, T* y) {
  const int64_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w;
  for_each_adaptive_window(g, [&](int64_t p, int64_t o, const Span& rows, const Span& cols) {
    const T* in = x + p * in_plane;
    double acc = 0;  // a 1x1 output sums the whole plane: in double, as sum and mean do
    for (int64_t h = rows.begin; h < rows.end; ++h)
      for (int64_t w = cols.begin; w < cols.end; ++w) acc += static_cast<double>(in[h * g.in_w + w]);
    y[p * out_plane + o] = static_cast<T>(acc / static_cast<double>(rows.padded * cols.padded));
  });
}

template <class T>
void adaptive_avg_backward(const T* dy, const PoolGeometry& g, T* dx) {
  const int64_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w;
  std::fill(dx, dx + g.planes * in_plane, T(0));
  // Windows of one plane may overlap; planes are separate, so threads never share an element.
  for_each_adaptive_window(g, [&](int64_t p, int64_t o, const Span& rows, const Span& cols) {
    T* out = dx + p * in_plane;
    const T share = dy[p * out_plane + o] / static_cast<T>(rows.padded * cols.padded);
    for (int64_t h = rows.begin; h < rows.end; ++h)
      for (int64_t w = cols.begin; w < cols.end; ++w) out[h * g.in_w + w] += share;
  });
}

}  // namespace

void adaptive_avg_pool2d_forward(const Tensor& x, const PoolGeometry& g, const Tensor& y) {
  dispatch_floating(x.dtype(), "adaptive_avg_pool2d", [&](auto type) {
    using T = decltype(type);
    adaptive_avg_forward(x.data<T>(), g, y.data<T>());
  });
}

void adaptive_avg_pool2d_backward(const Tensor& dy, const PoolGeometry& g, const Tensor& dx) {
  dispatch_floating(dy.dtype(), "adaptive_avg_pool2d backward", [&](auto type) {
    using T = decltype(type);
    adaptive_avg_backward(dy.data<T>(), g, dx.data<T>());
  });
}

void max_pool2d_forward(const Tensor& x, const PoolGeometry& g, const Tensor& y, const Tensor& argmax) {
  dispatch_floating(x.dtype(), "max_pool2d", [&](auto type) {
    using T = decltype(type);
    if (is_two_by_two(g)) return max_forward_two_by_two(x.data<T>(), g, y.data<T>(), argmax.data<int64_t>());
    max_forward(x.data<T>(), g, y.data<T>(), argmax.data<int64_t>());
  });
}

void max_pool2d_values_channels_last(const Tensor& x, const PoolGeometry& g, const Tensor& y) {
  if (y.numel() == 0) return;  // no window (and maybe no channel to divide the planes by)
  dispatch_floating(x.dtype(), "max_pool2d", [&](auto type) {
    using T = decltype(type);
    max_values_channels_last(x.data<T>(), g, x.size(1), y.data<T>());
  });
}

void max_pool2d_backward(const Tensor& dy, const Tensor& argmax, const PoolGeometry& g, const Tensor& dx) {
  dispatch_floating(dy.dtype(), "max_pool2d backward", [&](auto type) {
    using T = decltype(type);
    max_backward(dy.data<T>(), argmax.data<int64_t>(), g, dx.data<T>());
  });
}

void avg_pool2d_forward(const Tensor& x, const PoolGeometry& g, const Tensor& y) {
  dispatch_floating(x.dtype(), "avg_pool2d", [&](auto type) {
    using T = decltype(type);
    avg_forward(x.data<T>(), g, y.data<T>());
  });
}

void avg_pool2d_backward(const Tensor& dy, const PoolGeometry& g, const Tensor& dx) {
  dispatch_floating(dy.dtype(), "avg_pool2d backward", [&](auto type) {
    using T = decltype(type);
    avg_backward(dy.data<T>(), g, dx.data<T>());
  });
}

}  // namespace tpp::ops::cpu
