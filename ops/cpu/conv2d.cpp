// Convolution as GEMM. Images are processed in chunks of a few at a time:
// the chunk's im2col matrix [C kh kw, images * OH OW] makes the GEMMs wide
// enough to run near peak even for 8x8 feature maps. Chunks are spread over
// OpenMP threads, each running single-threaded GEMMs on its own buffers
// (measured faster on 2 cores than one multithreaded GEMM per chunk).
#include "ops/cpu/conv2d.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "ops/cpu/matmul.h"

namespace tpp::ops::cpu {

namespace {

// Columns of the im2col matrix one GEMM should see.
constexpr int64_t kTargetColumns = 2048;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

template <class T>
std::unique_ptr<T[]> scratch(int64_t n) {
  return std::make_unique_for_overwrite<T[]>(static_cast<size_t>(std::max<int64_t>(n, 1)));
}

// The output positions o in [0, out) whose input position o * stride + offset
// falls inside [0, in): everything outside reads padding.
struct ValidRange {
  int64_t begin, end;
};

ValidRange valid_outputs(int64_t offset, int64_t stride, int64_t in, int64_t out) {
  const int64_t begin = std::min(out, offset >= 0 ? 0 : ceil_div(-offset, stride));
  const int64_t end = std::clamp(in - offset <= 0 ? 0 : ceil_div(in - offset, stride), begin, out);
  return {begin, end};
}

// col[(c kh + i) kw + j][oh OW + ow] = image[c][oh sh + i dh - ph][ow sw + j dw - pw], or 0 in the padding.
// Rows of col are `ld` apart so several images can sit side by side.
template <class T>
void im2col(const Conv2dGeometry& g, const T* image, T* col, int64_t ld) {
  const int64_t ow_count = g.out_w;
  for (int64_t c = 0; c < g.in_channels; ++c) {
    const T* plane = image + c * g.in_pixels();
    for (int64_t i = 0; i < g.kernel_h; ++i) {
      const int64_t off_h = i * g.dilation_h - g.pad_h;
      const ValidRange rows = valid_outputs(off_h, g.stride_h, g.in_h, g.out_h);
      for (int64_t j = 0; j < g.kernel_w; ++j) {
        const int64_t off_w = j * g.dilation_w - g.pad_w;
        const ValidRange cols = valid_outputs(off_w, g.stride_w, g.in_w, g.out_w);
        T* dst = col + ((c * g.kernel_h + i) * g.kernel_w + j) * ld;
        std::fill(dst, dst + rows.begin * ow_count, T(0));
        for (int64_t oh = rows.begin; oh < rows.end; ++oh) {
          T* d = dst + oh * ow_count;
          const T* src = plane + (oh * g.stride_h + off_h) * g.in_w;
          std::fill(d, d + cols.begin, T(0));
          if (g.stride_w == 1) {
            std::memcpy(d + cols.begin, src + cols.begin + off_w, sizeof(T) * (cols.end - cols.begin));
          } else {
            for (int64_t ow = cols.begin; ow < cols.end; ++ow) d[ow] = src[ow * g.stride_w + off_w];
          }
          std::fill(d + cols.end, d + ow_count, T(0));
        }
        std::fill(dst + rows.end * ow_count, dst + g.out_pixels(), T(0));
      }
    }
  }
}

// The adjoint of im2col: image += every col entry at the input position it was read from.
template <class T>
void col2im_add(const Conv2dGeometry& g, const T* col, int64_t ld, T* image) {
  for (int64_t c = 0; c < g.in_channels; ++c) {
    T* plane = image + c * g.in_pixels();
    for (int64_t i = 0; i < g.kernel_h; ++i) {
      const int64_t off_h = i * g.dilation_h - g.pad_h;
      const ValidRange rows = valid_outputs(off_h, g.stride_h, g.in_h, g.out_h);
      for (int64_t j = 0; j < g.kernel_w; ++j) {
        const int64_t off_w = j * g.dilation_w - g.pad_w;
        const ValidRange cols = valid_outputs(off_w, g.stride_w, g.in_w, g.out_w);
        const T* src = col + ((c * g.kernel_h + i) * g.kernel_w + j) * ld;
        for (int64_t oh = rows.begin; oh < rows.end; ++oh) {
          const T* s = src + oh * g.out_w;
          T* d = plane + (oh * g.stride_h + off_h) * g.in_w + off_w;
          if (g.stride_w == 1) {
#pragma omp simd
            for (int64_t ow = cols.begin; ow < cols.end; ++ow) d[ow] += s[ow];
          } else {
            for (int64_t ow = cols.begin; ow < cols.end; ++ow) d[ow * g.stride_w] += s[ow];
          }
        }
      }
    }
  }
}

// How the batch is cut into chunks of images and spread over threads.
struct Chunking {
  int64_t images = 1;  // per chunk (the last may have fewer)
  int64_t count = 1;
  int threads = 1;
};

Chunking plan_chunks(const Conv2dGeometry& g) {
  const int max_threads = std::max(1, omp_get_max_threads());
  const int64_t per_thread = ceil_div(g.batch, max_threads);
  Chunking plan;
  plan.images = std::clamp<int64_t>(ceil_div(kTargetColumns, std::max<int64_t>(g.out_pixels(), 1)), 1,
                                    std::max<int64_t>(per_thread, 1));
  plan.count = ceil_div(g.batch, plan.images);
  plan.threads = static_cast<int>(std::clamp<int64_t>(plan.count, 1, max_threads));
  return plan;
}

// Sizes every kernel below needs, in elements.
struct Dims {
  int64_t P, K, Kg, Cg, rows_g, col_rows, image_in, image_out;
  explicit Dims(const Conv2dGeometry& g)
      : P(g.out_pixels()),
        K(g.out_channels),
        Kg(g.out_channels / g.groups),
        Cg(g.in_channels / g.groups),
        rows_g(Cg * g.kernel_area()),
        col_rows(g.in_channels * g.kernel_area()),
        image_in(g.in_channels * g.in_pixels()),
        image_out(g.out_channels * g.out_pixels()) {}
};

// The im2col matrix of images [n0, n0 + nb): either built in `buffer` or, for
// pointwise convolutions, the input itself (one image at a time).
template <class T>
struct ColumnSource {
  const T* data;
  int64_t ld;
};

template <class T>
ColumnSource<T> columns_of(const Conv2dGeometry& g, const Dims& d, const T* x, int64_t n0, int64_t nb, int64_t b,
                           T* buffer) {
  if (g.is_pointwise()) return {x + (n0 + b) * d.image_in, d.P};
  return {buffer + b * d.P, nb * d.P};
}

template <class T>
void forward_impl(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y) {
  const Dims d(g);
  const Chunking plan = plan_chunks(g);
  const bool pointwise = g.is_pointwise();
  std::unique_ptr<BlasThreads> single_blas;
  if (plan.threads > 1) single_blas = std::make_unique<BlasThreads>(1);

#pragma omp parallel num_threads(plan.threads)
  {
    const auto col = scratch<T>(pointwise ? 0 : d.col_rows * plan.images * d.P);
    const auto staged = scratch<T>(plan.images > 1 ? d.K * plan.images * d.P : 0);
#pragma omp for schedule(static)
    for (int64_t chunk = 0; chunk < plan.count; ++chunk) {
      const int64_t n0 = chunk * plan.images, nb = std::min(plan.images, g.batch - n0), width = nb * d.P;
      if (!pointwise)
        for (int64_t b = 0; b < nb; ++b) im2col(g, x + (n0 + b) * d.image_in, col.get() + b * d.P, width);
      // A single image is written straight into y; a wider chunk goes through
      // `staged` [K, nb P] and is then spread out to NCHW.
      T* out = nb == 1 ? y + n0 * d.image_out : staged.get();
      const int64_t ld_out = nb == 1 ? d.P : width;
      // Pointwise inputs are separate per image, so one GEMM per image there.
      const int64_t sources = pointwise ? nb : 1;
      for (int64_t b = 0; b < sources; ++b) {
        const ColumnSource<T> src = columns_of(g, d, x, n0, nb, b, col.get());
        const int64_t n = pointwise ? d.P : width;
        T* out_b = out + (pointwise ? b * d.P : 0);
        for (int64_t grp = 0; grp < g.groups; ++grp)
          gemm<T>(false, false, d.Kg, n, d.rows_g, T(1), w + grp * d.Kg * d.rows_g, d.rows_g,
                  src.data + grp * d.rows_g * src.ld, src.ld, T(0), out_b + grp * d.Kg * ld_out, ld_out);
      }
      for (int64_t b = 0; b < nb; ++b) {
        T* y_image = y + (n0 + b) * d.image_out;
        for (int64_t k = 0; k < d.K; ++k) {
          T* dst = y_image + k * d.P;
          const T* from = nb == 1 ? dst : staged.get() + k * width + b * d.P;
          const T shift = bias ? bias[k] : T(0);
          if (from == dst && !bias) continue;
#pragma omp simd
          for (int64_t p = 0; p < d.P; ++p) dst[p] = from[p] + shift;
        }
      }
    }
  }
}

template <class T>
void backward_impl(const Conv2dGeometry& g, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db) {
  const Dims d(g);
  const Chunking plan = plan_chunks(g);
  const bool pointwise = g.is_pointwise();
  const int64_t w_size = d.K * d.rows_g;
  std::unique_ptr<BlasThreads> single_blas;
  if (plan.threads > 1) single_blas = std::make_unique<BlasThreads>(1);
  // Each thread sums its chunks' filter and bias gradients privately; the
  // partial sums are added up at the end.
  const auto dw_partial = scratch<T>(dw ? plan.threads * w_size : 0);
  const auto db_partial = scratch<T>(db ? plan.threads * d.K : 0);
  if (dw) std::fill(dw_partial.get(), dw_partial.get() + plan.threads * w_size, T(0));
  if (db) std::fill(db_partial.get(), db_partial.get() + plan.threads * d.K, T(0));

#pragma omp parallel num_threads(plan.threads)
  {
    T* my_dw = dw ? dw_partial.get() + omp_get_thread_num() * w_size : nullptr;
    T* my_db = db ? db_partial.get() + omp_get_thread_num() * d.K : nullptr;
    // One buffer serves first as im2col(x) for dw, then as the column
    // gradient for dx.
    const auto col = scratch<T>(pointwise ? 0 : d.col_rows * plan.images * d.P);
    const auto staged = scratch<T>(plan.images > 1 ? d.K * plan.images * d.P : 0);
#pragma omp for schedule(static)
    for (int64_t chunk = 0; chunk < plan.count; ++chunk) {
      const int64_t n0 = chunk * plan.images, nb = std::min(plan.images, g.batch - n0), width = nb * d.P;
      // dy of the chunk as one [K, nb P] matrix.
      const T* dyc = dy + n0 * d.image_out;
      if (nb > 1) {
        for (int64_t b = 0; b < nb; ++b)
          for (int64_t k = 0; k < d.K; ++k)
            std::memcpy(staged.get() + k * width + b * d.P, dy + (n0 + b) * d.image_out + k * d.P, sizeof(T) * d.P);
        dyc = staged.get();
      }
      if (my_db)
        for (int64_t k = 0; k < d.K; ++k) {
          T s = 0;
#pragma omp simd reduction(+ : s)
          for (int64_t p = 0; p < width; ++p) s += dyc[k * width + p];
          my_db[k] += s;
        }
      const int64_t sources = pointwise ? nb : 1;
      if (my_dw) {  // dw_g += dy_g · colᵀ_g
        if (!pointwise)
          for (int64_t b = 0; b < nb; ++b) im2col(g, x + (n0 + b) * d.image_in, col.get() + b * d.P, width);
        for (int64_t b = 0; b < sources; ++b) {
          const ColumnSource<T> src = columns_of(g, d, x, n0, nb, b, col.get());
          const int64_t n = pointwise ? d.P : width;
          const T* dy_b = dyc + (pointwise ? b * d.P : 0);
          for (int64_t grp = 0; grp < g.groups; ++grp)
            gemm<T>(false, true, d.Kg, d.rows_g, n, T(1), dy_b + grp * d.Kg * width, width,
                    src.data + grp * d.rows_g * src.ld, src.ld, T(1), my_dw + grp * d.Kg * d.rows_g, d.rows_g);
        }
      }
      if (dx) {  // dcol_g = w_gᵀ · dy_g, then col2im
        if (pointwise) {
          for (int64_t b = 0; b < nb; ++b)
            for (int64_t grp = 0; grp < g.groups; ++grp)
              gemm<T>(true, false, d.Cg, d.P, d.Kg, T(1), w + grp * d.Kg * d.rows_g, d.rows_g,
                      dyc + grp * d.Kg * width + b * d.P, width, T(0), dx + (n0 + b) * d.image_in + grp * d.Cg * d.P,
                      d.P);
        } else {
          for (int64_t grp = 0; grp < g.groups; ++grp)
            gemm<T>(true, false, d.rows_g, width, d.Kg, T(1), w + grp * d.Kg * d.rows_g, d.rows_g,
                    dyc + grp * d.Kg * width, width, T(0), col.get() + grp * d.rows_g * width, width);
          for (int64_t b = 0; b < nb; ++b) {
            T* dx_image = dx + (n0 + b) * d.image_in;
            std::fill(dx_image, dx_image + d.image_in, T(0));
            col2im_add(g, col.get() + b * d.P, width, dx_image);
          }
        }
      }
    }
  }
  for (int t = 0; t < plan.threads; ++t) {
    if (dw) {
      const T* part = dw_partial.get() + t * w_size;
      for (int64_t i = 0; i < w_size; ++i) dw[i] = t == 0 ? part[i] : dw[i] + part[i];
    }
    if (db) {
      const T* part = db_partial.get() + t * d.K;
      for (int64_t k = 0; k < d.K; ++k) db[k] = t == 0 ? part[k] : db[k] + part[k];
    }
  }
}

template <class T>
T* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

}  // namespace

void conv2d_forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y) {
  dispatch_floating(x.dtype(), "conv2d", [&](auto type) {
    using T = decltype(type);
    forward_impl<T>(g, x.data<T>(), w.data<T>(), data_or_null<T>(bias), y.data<T>());
  });
}

void conv2d_backward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& dy, const Tensor& dx,
                     const Tensor& dw, const Tensor& db) {
  dispatch_floating(x.dtype(), "conv2d backward", [&](auto type) {
    using T = decltype(type);
    backward_impl<T>(g, data_or_null<T>(x), w.data<T>(), dy.data<T>(), data_or_null<T>(dx), data_or_null<T>(dw),
                     data_or_null<T>(db));
  });
}

}  // namespace tpp::ops::cpu
