// The readable reference: convolution as GEMM. f32 convolutions run on oneDNN
// (ops/cpu/onednn/conv.h) unless TPP_CPU_CONV / --cpu-conv choose this path;
// f64 always runs here.
//
// Convolution as GEMM. Images are processed in chunks of a few at a time:
// the chunk's im2col matrix [C kh kw, images * OH OW] makes the GEMMs wide
// enough to run near peak even for 8x8 feature maps. Chunks are spread over
// OpenMP threads, each running single-threaded GEMMs on its own buffers
// (measured faster on 2 cores than one multithreaded GEMM per chunk). A
// batch that makes a single chunk splits its GEMMs over the threads instead.
#include "ops/cpu/conv2d.h"

#include <initializer_list>
#include <omp.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "ops/cpu/conv_path.h"
#include "ops/cpu/matmul.h"
#include "ops/cpu/onednn/conv.h"
#include "ops/layout.h"

namespace tpp::ops::cpu {

namespace {

// Columns of the im2col matrix one GEMM should see: 256 to 1024 measured
// alike on 2 cores; more spills the per-thread buffers out of L2.
constexpr int64_t kTargetColumns = 1024;

// Below this many multiply-adds a convolution runs on one thread.
constexpr int64_t kParallelMacs = 1 << 20;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

template <class T>
std::unique_ptr<T[]> scratch(int64_t n) {
  return std::make_unique_for_overwrite<T[]>(static_cast<size_t>(std::max<int64_t>(n, 1)));
}

// Per-thread work buffers kept across calls (OpenMP keeps its threads), so
// the megabytes of im2col columns are not faulted into memory afresh by
// every convolution. Each buffer only grows.
enum class Slot { columns, staged };

template <class T>
T* thread_buffer(Slot slot, int64_t n) {
  struct Buffer {
    std::unique_ptr<T[]> data;
    int64_t capacity = 0;
  };
  thread_local Buffer buffers[2];
  Buffer& b = buffers[static_cast<int>(slot)];
  if (b.capacity < n) {
    b.data.reset();
    b.data = scratch<T>(n);
    b.capacity = n;
  }
  return b.data.get();
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

// One kernel tap (i, j): its offset into the (unpadded) input and the output
// positions whose reads land inside the image rather than in the padding.
struct Tap {
  int64_t off_h, off_w;
  ValidRange rows, cols;
  bool empty() const { return rows.begin >= rows.end || cols.begin >= cols.end; }
};

std::vector<Tap> taps_of(const Conv2dGeometry& g) {
  std::vector<Tap> taps;
  for (int64_t i = 0; i < g.kernel_h; ++i)
    for (int64_t j = 0; j < g.kernel_w; ++j) {
      const int64_t off_h = i * g.dilation_h - g.pad_h, off_w = j * g.dilation_w - g.pad_w;
      taps.push_back({off_h, off_w, valid_outputs(off_h, g.stride_h, g.in_h, g.out_h),
                      valid_outputs(off_w, g.stride_w, g.in_w, g.out_w)});
    }
  return taps;
}

// With stride 1 and output width = input width (the usual "same" padding),
// a tap reads the input plane shifted by one flat offset: its valid outputs
// form one contiguous run [first, last) of the flattened plane, apart from
// short gaps where a row wraps into the padding.
bool is_flat_shift(const Conv2dGeometry& g) { return g.stride_h == 1 && g.stride_w == 1 && g.out_w == g.in_w; }

struct FlatRun {
  int64_t first, last, shift;
};

FlatRun flat_run(const Conv2dGeometry& g, const Tap& t) {
  return {t.rows.begin * g.out_w + t.cols.begin, (t.rows.end - 1) * g.out_w + t.cols.end, t.off_h * g.in_w + t.off_w};
}

// Calls fn(begin, end) for each wrap gap inside a tap's flat run.
template <class Fn>
void for_each_wrap_gap(const Conv2dGeometry& g, const Tap& t, Fn fn) {
  if (t.cols.begin == 0 && t.cols.end == g.out_w) return;
  for (int64_t oh = t.rows.begin; oh + 1 < t.rows.end; ++oh)
    fn(oh * g.out_w + t.cols.end, (oh + 1) * g.out_w + t.cols.begin);
}

// dst[oh OW + ow] = plane[oh sh + off_h][ow sw + off_w], or 0 in the padding: one row of im2col.
template <class T>
void im2col_tap(const Conv2dGeometry& g, const Tap& t, const T* plane, T* dst) {
  const int64_t ow_count = g.out_w;
  if (t.empty()) {
    std::fill(dst, dst + g.out_pixels(), T(0));
    return;
  }
  if (is_flat_shift(g)) {
    const FlatRun run = flat_run(g, t);
    std::fill(dst, dst + run.first, T(0));
    std::memcpy(dst + run.first, plane + run.first + run.shift, sizeof(T) * (run.last - run.first));
    std::fill(dst + run.last, dst + g.out_pixels(), T(0));
    for_each_wrap_gap(g, t, [&](int64_t begin, int64_t end) { std::fill(dst + begin, dst + end, T(0)); });
    return;
  }
  std::fill(dst, dst + t.rows.begin * ow_count, T(0));
  for (int64_t oh = t.rows.begin; oh < t.rows.end; ++oh) {
    T* d = dst + oh * ow_count;
    const T* row = plane + (oh * g.stride_h + t.off_h) * g.in_w;
    for (int64_t ow = 0; ow < t.cols.begin; ++ow) d[ow] = T(0);
    if (g.stride_w == 1) {
#pragma omp simd
      for (int64_t ow = t.cols.begin; ow < t.cols.end; ++ow) d[ow] = row[ow + t.off_w];
    } else if (g.stride_w == 2) {  // a constant stride lets the compiler vectorise the gather
      for (int64_t ow = t.cols.begin; ow < t.cols.end; ++ow) d[ow] = row[ow * 2 + t.off_w];
    } else {
      for (int64_t ow = t.cols.begin; ow < t.cols.end; ++ow) d[ow] = row[ow * g.stride_w + t.off_w];
    }
    for (int64_t ow = t.cols.end; ow < ow_count; ++ow) d[ow] = T(0);
  }
  std::fill(dst + t.rows.end * ow_count, dst + g.out_pixels(), T(0));
}

// The adjoint of im2col_tap: plane += each entry of src at the position it was
// read from. Clobbers the entries of src that stand for padding.
template <class T>
void col2im_tap(const Conv2dGeometry& g, const Tap& t, T* src, T* plane) {
  if (t.empty()) return;
  if (is_flat_shift(g)) {
    const FlatRun run = flat_run(g, t);
    for_each_wrap_gap(g, t, [&](int64_t begin, int64_t end) { std::fill(src + begin, src + end, T(0)); });
    T* d = plane + run.first + run.shift;
    const T* s = src + run.first;
#pragma omp simd
    for (int64_t q = 0; q < run.last - run.first; ++q) d[q] += s[q];
    return;
  }
  for (int64_t oh = t.rows.begin; oh < t.rows.end; ++oh) {
    const T* s = src + oh * g.out_w;
    T* row = plane + (oh * g.stride_h + t.off_h) * g.in_w;
    if (g.stride_w == 1) {
#pragma omp simd
      for (int64_t ow = t.cols.begin; ow < t.cols.end; ++ow) row[ow + t.off_w] += s[ow];
    } else if (g.stride_w == 2) {
      for (int64_t ow = t.cols.begin; ow < t.cols.end; ++ow) row[ow * 2 + t.off_w] += s[ow];
    } else {
      for (int64_t ow = t.cols.begin; ow < t.cols.end; ++ow) row[ow * g.stride_w + t.off_w] += s[ow];
    }
  }
}

// col[(c kh + i) kw + j][oh OW + ow] = image[c][oh sh + i dh - ph][ow sw + j dw - pw], or 0 in the padding.
// Rows of col are `ld` apart so several images can sit side by side.
template <class T>
void im2col(const Conv2dGeometry& g, const std::vector<Tap>& taps, const T* image, T* col, int64_t ld) {
  for (int64_t c = 0; c < g.in_channels; ++c)
    for (size_t t = 0; t < taps.size(); ++t)
      im2col_tap(g, taps[t], image + c * g.in_pixels(), col + (c * g.kernel_area() + static_cast<int64_t>(t)) * ld);
}

// image = the adjoint of im2col applied to col (whose padding entries it clobbers).
template <class T>
void col2im(const Conv2dGeometry& g, const std::vector<Tap>& taps, T* col, int64_t ld, T* image) {
  std::fill(image, image + g.in_channels * g.in_pixels(), T(0));
  for (int64_t c = 0; c < g.in_channels; ++c)
    for (size_t t = 0; t < taps.size(); ++t)
      col2im_tap(g, taps[t], col + (c * g.kernel_area() + static_cast<int64_t>(t)) * ld, image + c * g.in_pixels());
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
  // Waking a second thread costs more than a small convolution.
  const int64_t macs = g.batch * g.out_channels * g.out_pixels() * (g.in_channels / g.groups) * g.kernel_area();
  if (macs < kParallelMacs) plan.threads = 1;
  return plan;
}

// Sizes every kernel below needs, in elements. Per group: Kg filters, each
// over Cg channels, so rows_g rows of the im2col matrix.
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

// Everything one thread needs to work on chunks: the geometry, its own
// buffers, and the current chunk, images [n0, n0 + nb) side by side as
// width = nb P columns.
template <class T>
struct ChunkWork {
  const Conv2dGeometry& g;
  const Dims& d;
  const std::vector<Tap>& taps;
  T* col;     // [C kh kw, width]: im2col of the chunk, or the column gradient
  T* staged;  // [K, width]: the chunk's output or output gradient, gathered
  int64_t n0 = 0, nb = 0, width = 0;

  void select(const Chunking& plan, int64_t chunk) {
    n0 = chunk * plan.images;
    nb = std::min(plan.images, g.batch - n0);
    width = nb * d.P;
  }

  // Pointwise convolutions read each image in place as its own im2col
  // matrix, so they run one GEMM per image (`parts` = nb) instead of one per chunk.
  bool pointwise() const { return g.is_pointwise(); }
  int64_t parts() const { return pointwise() ? nb : 1; }
  int64_t part_width() const { return pointwise() ? d.P : width; }

  // The im2col matrix of part `b` of the chunk and its leading dimension.
  std::pair<const T*, int64_t> columns(const T* x, int64_t b) const {
    if (pointwise()) return {x + (n0 + b) * d.image_in, d.P};
    return {col, width};
  }

  void build_columns(const T* x) const {
    if (pointwise()) return;
    for (int64_t b = 0; b < nb; ++b) im2col(g, taps, x + (n0 + b) * d.image_in, col + b * d.P, width);
  }
};

// y (+ bias) for one chunk: y_g = w_g · col_g per group.
template <class T>
void forward_chunk(const ChunkWork<T>& c, const T* x, const T* w, const T* bias, T* y) {
  const Dims& d = c.d;
  c.build_columns(x);
  // A single image is written straight into y; a wider chunk goes through
  // `staged` [K, width] and is then spread out to NCHW.
  T* const out = c.nb == 1 ? y + c.n0 * d.image_out : c.staged;
  const int64_t ld_out = c.nb == 1 ? d.P : c.width;
  for (int64_t b = 0; b < c.parts(); ++b) {
    const auto [cols, ld] = c.columns(x, b);
    T* const out_b = out + (c.pointwise() ? b * d.P : 0);
    for (int64_t grp = 0; grp < c.g.groups; ++grp)
      parallel_gemm<T>(false, false, d.Kg, c.part_width(), d.rows_g, T(1), w + grp * d.Kg * d.rows_g, d.rows_g,
                       cols + grp * d.rows_g * ld, ld, T(0), out_b + grp * d.Kg * ld_out, ld_out);
  }
  if (c.nb == 1 && !bias) return;
  for (int64_t b = 0; b < c.nb; ++b)
    for (int64_t k = 0; k < d.K; ++k) {
      T* const dst = y + (c.n0 + b) * d.image_out + k * d.P;
      const T* const from = c.nb == 1 ? dst : c.staged + k * c.width + b * d.P;
      const T shift = bias ? bias[k] : T(0);
#pragma omp simd
      for (int64_t p = 0; p < d.P; ++p) dst[p] = from[p] + shift;
    }
}

// The chunk's dy as one [K, width] matrix (gathered into `staged` if needed).
template <class T>
const T* gather_output_grad(const ChunkWork<T>& c, const T* dy) {
  const Dims& d = c.d;
  if (c.nb == 1) return dy + c.n0 * d.image_out;
  for (int64_t b = 0; b < c.nb; ++b)
    for (int64_t k = 0; k < d.K; ++k)
      std::memcpy(c.staged + k * c.width + b * d.P, dy + (c.n0 + b) * d.image_out + k * d.P, sizeof(T) * d.P);
  return c.staged;
}

template <class T>
void bias_grad_chunk(const ChunkWork<T>& c, const T* dyc, T* db) {
  for (int64_t k = 0; k < c.d.K; ++k) {
    const T* row = dyc + k * c.width;
    T sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t p = 0; p < c.width; ++p) sum += row[p];
    db[k] += sum;
  }
}

// dw_gᵀ += col_g · dy_gᵀ into a [groups][rows_g][Kg] accumulator: the
// transposed product is the faster GEMM shape (tall and thin output).
template <class T>
void filter_grad_chunk(const ChunkWork<T>& c, const T* x, const T* dyc, T* dw_t) {
  const Dims& d = c.d;
  c.build_columns(x);
  for (int64_t b = 0; b < c.parts(); ++b) {
    const auto [cols, ld] = c.columns(x, b);
    const T* const dy_b = dyc + (c.pointwise() ? b * d.P : 0);
    for (int64_t grp = 0; grp < c.g.groups; ++grp)
      parallel_gemm<T>(false, true, d.rows_g, d.Kg, c.part_width(), T(1), cols + grp * d.rows_g * ld, ld,
                       dy_b + grp * d.Kg * c.width, c.width, T(1), dw_t + grp * d.rows_g * d.Kg, d.Kg);
  }
}

// dx for one chunk: dcol_g = w_gᵀ · dy_g, then col2im (pointwise: dx_g directly).
template <class T>
void input_grad_chunk(const ChunkWork<T>& c, const T* w, const T* dyc, T* dx) {
  const Dims& d = c.d;
  if (c.pointwise()) {
    for (int64_t b = 0; b < c.nb; ++b)
      for (int64_t grp = 0; grp < c.g.groups; ++grp)
        parallel_gemm<T>(true, false, d.Cg, d.P, d.Kg, T(1), w + grp * d.Kg * d.rows_g, d.rows_g,
                         dyc + grp * d.Kg * c.width + b * d.P, c.width, T(0),
                         dx + (c.n0 + b) * d.image_in + grp * d.Cg * d.P, d.P);
    return;
  }
  for (int64_t grp = 0; grp < c.g.groups; ++grp)
    parallel_gemm<T>(true, false, d.rows_g, c.width, d.Kg, T(1), w + grp * d.Kg * d.rows_g, d.rows_g,
                     dyc + grp * d.Kg * c.width, c.width, T(0), c.col + grp * d.rows_g * c.width, c.width);
  for (int64_t b = 0; b < c.nb; ++b) col2im(c.g, c.taps, c.col + b * d.P, c.width, dx + (c.n0 + b) * d.image_in);
}

template <class T>
void forward_impl(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y) {
  const Dims d(g);
  const Chunking plan = plan_chunks(g);
  const std::vector<Tap> taps = taps_of(g);
#pragma omp parallel num_threads(plan.threads)
  {
    ChunkWork<T> work{g, d, taps,
                      thread_buffer<T>(Slot::columns, g.is_pointwise() ? 0 : d.col_rows * plan.images * d.P),
                      thread_buffer<T>(Slot::staged, plan.images > 1 ? d.K * plan.images * d.P : 0)};
#pragma omp for schedule(dynamic)
    for (int64_t chunk = 0; chunk < plan.count; ++chunk) {
      work.select(plan, chunk);
      forward_chunk(work, x, w, bias, y);
    }
  }
}

template <class T>
void backward_impl(const Conv2dGeometry& g, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db) {
  const Dims d(g);
  const Chunking plan = plan_chunks(g);
  const std::vector<Tap> taps = taps_of(g);
  // Each thread sums the filter gradients (transposed) and bias gradients of
  // its chunks privately; the partial sums are added up at the end.
  const int64_t w_size = d.K * d.rows_g;
  const auto dw_partial = scratch<T>(dw ? plan.threads * w_size : 0);
  const auto db_partial = scratch<T>(db ? plan.threads * d.K : 0);
  if (dw) std::fill(dw_partial.get(), dw_partial.get() + plan.threads * w_size, T(0));
  if (db) std::fill(db_partial.get(), db_partial.get() + plan.threads * d.K, T(0));

#pragma omp parallel num_threads(plan.threads)
  {
    // `col` holds first im2col(x) for dw, then the column gradient for dx.
    ChunkWork<T> work{g, d, taps,
                      thread_buffer<T>(Slot::columns, g.is_pointwise() ? 0 : d.col_rows * plan.images * d.P),
                      thread_buffer<T>(Slot::staged, plan.images > 1 ? d.K * plan.images * d.P : 0)};
    const int t = omp_get_thread_num();
    // A static schedule gives each thread the same chunks on every call, so
    // the partial sums, and the gradients, are the same bits run after run
    // (training resumes exactly; see train/trainer.h).
#pragma omp for schedule(static)
    for (int64_t chunk = 0; chunk < plan.count; ++chunk) {
      work.select(plan, chunk);
      const T* const dyc = gather_output_grad(work, dy);
      if (db) bias_grad_chunk(work, dyc, db_partial.get() + t * d.K);
      if (dw) filter_grad_chunk(work, x, dyc, dw_partial.get() + t * w_size);
      if (dx) input_grad_chunk(work, w, dyc, dx);
    }
  }
  if (dw)  // dw[grp Kg + k][r] = sum over threads of partial[grp][r][k]
    for (int64_t grp = 0; grp < g.groups; ++grp)
      for (int64_t k = 0; k < d.Kg; ++k)
        for (int64_t r = 0; r < d.rows_g; ++r) {
          T sum = 0;
          for (int t = 0; t < plan.threads; ++t) sum += dw_partial[t * w_size + (grp * d.rows_g + r) * d.Kg + k];
          dw[(grp * d.Kg + k) * d.rows_g + r] = sum;
        }
  if (db)
    for (int64_t k = 0; k < d.K; ++k) {
      T sum = 0;
      for (int t = 0; t < plan.threads; ++t) sum += db_partial[t * d.K + k];
      db[k] = sum;
    }
}

template <class T>
T* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

// Whether n floats hold NaN or infinity: x · 0 is 0 for a finite x and NaN
// otherwise. Sixteen independent sums, which the compiler vectorises (one sum
// in order is bound by the add latency; the order of a sum of zeros and NaNs
// does not matter).
bool span_has_non_finite(const float* data, int64_t n) {
  constexpr int64_t kLanes = 16;
  std::array<float, kLanes> probes{};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int64_t lane = 0; lane < kLanes; ++lane) probes[lane] += data[i + lane] * 0.0f;
  float probe = 0;
  for (; i < n; ++i) probe += data[i] * 0.0f;
  for (const float p : probes) probe += p;
  return probe != probe;
}

// The scan reads every operand of every convolution: in chunks, on every
// thread (a memory-bound loop on one core would leave the others waiting).
bool has_non_finite(const Tensor& t) {
  if (!t.defined()) return false;
  const float* data = t.data<float>();
  const int64_t n = t.numel();
  constexpr int64_t kChunk = int64_t{1} << 15;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  bool found = false;
#pragma omp parallel for reduction(|| : found) if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c)
    found = found || span_has_non_finite(data + c * kChunk, std::min(kChunk, n - c * kChunk));
  return found;
}

// f32 runs on oneDNN unless the reference path is chosen; f64 always here.
// oneDNN's kernels do not carry NaN and infinity through a sum as IEEE
// arithmetic does (the differential test found finite outputs where PyTorch
// gives NaN), so operands holding them take the reference path.
bool on_onednn(std::initializer_list<const Tensor*> operands) {
  if (operands.begin()[0]->dtype() != DType::f32 || cpu_conv_path() != CpuConvPath::onednn) return false;
  for (const Tensor* t : operands)
    if (has_non_finite(*t)) return false;
  return true;
}

Tensor to_channels_last(const Tensor& t) {
  Tensor copy = empty_channels_last(t.sizes(), {.dtype = t.dtype(), .device = t.device()});
  copy.copy_(t);
  return copy;
}

// y = max(y + residual, 0) (without the max when !relu; none of it without a
// residual): what the fused kernel does after its sum, as a pass of its own.
// y is contiguous NCHW; NaN stays NaN, as relu.
void add_residual_then_relu(const Tensor& y, const Tensor& residual, bool relu) {
  if (!residual.defined() && !relu) return;
  const Tensor r = residual.defined() ? residual.contiguous() : Tensor();
  dispatch_floating(y.dtype(), "conv2d_inference", [&](auto type) {
    using T = decltype(type);
    T* out = y.data<T>();
    const T* add = r.defined() ? r.data<T>() : nullptr;
    const int64_t n = y.numel();
#pragma omp parallel for simd if (n >= (int64_t{1} << 15))
    for (int64_t i = 0; i < n; ++i) {
      const T v = add ? out[i] + add[i] : out[i];
      out[i] = relu && v < T(0) ? T(0) : v;
    }
  });
}

}  // namespace

void conv2d_forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y) {
  if (on_onednn({&x, &w, &bias})) {
    onednn::conv2d_forward(g, x.data<float>(), w.data<float>(), data_or_null<float>(bias), y.data<float>());
    return;
  }
  dispatch_floating(x.dtype(), "conv2d", [&](auto type) {
    using T = decltype(type);
    forward_impl<T>(g, x.data<T>(), w.data<T>(), data_or_null<T>(bias), y.data<T>());
  });
}

Tensor conv2d_inference(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& bias,
                        const Tensor& residual, bool relu) {
  const Shape y_shape{g.batch, g.out_channels, g.out_h, g.out_w};
  const TensorOptions options{.dtype = x.dtype(), .device = x.device()};
  if (on_onednn({&x, &w, &bias, &residual})) {
    const bool channels_last = onednn::inference_works_channels_last(g, bias.defined());
    const Tensor y = channels_last ? empty_channels_last(y_shape, options) : empty(y_shape, options);
    // The residual is added inside the kernel where everything is
    // channels-last (a projection shortcut's NCHW residual and input are
    // copied so first); otherwise in a pass of its own.
    const bool add_inside = residual.defined() && channels_last;
    const Tensor xc = is_channels_last(x) || !add_inside ? x : to_channels_last(x);
    const Tensor rc = !add_inside || is_channels_last(residual) ? residual : to_channels_last(residual);
    const bool x_channels_last = is_channels_last(xc);
    const Tensor x_plain = x_channels_last ? xc : xc.contiguous();
    onednn::conv2d_inference(g, x_plain.data<float>(), w.data<float>(), data_or_null<float>(bias),
                             add_inside ? rc.data<float>() : nullptr,
                             {.relu = relu && (add_inside || !residual.defined()),
                              .residual = add_inside,
                              .x_channels_last = x_channels_last,
                              .y_channels_last = channels_last},
                             y.data<float>());
    if (residual.defined() && !add_inside) add_residual_then_relu(y, residual, relu);
    return y;
  }
  const Tensor y = empty(y_shape, options);
  conv2d_forward(g, x.contiguous(), w, bias, y);
  add_residual_then_relu(y, residual, relu);
  return y;
}

void conv2d_backward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& dy, const Tensor& dx,
                     const Tensor& dw, const Tensor& db) {
  if (on_onednn({&w, &x, &dy})) {
    const bool bias_alone = db.defined() && !dw.defined();  // a frozen weight: oneDNN has no pass for that
    onednn::conv2d_backward(g, data_or_null<float>(x), w.data<float>(), dy.data<float>(), data_or_null<float>(dx),
                            data_or_null<float>(dw), bias_alone ? nullptr : data_or_null<float>(db));
    if (bias_alone) backward_impl<float>(g, nullptr, w.data<float>(), dy.data<float>(), nullptr, nullptr, db.data<float>());
    return;
  }
  dispatch_floating(w.dtype(), "conv2d backward", [&](auto type) {
    using T = decltype(type);
    backward_impl<T>(g, data_or_null<T>(x), w.data<T>(), dy.data<T>(), data_or_null<T>(dx), data_or_null<T>(dw),
                     data_or_null<T>(db));
  });
}

}  // namespace tpp::ops::cpu
