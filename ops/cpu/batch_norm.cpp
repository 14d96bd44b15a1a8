#include "ops/cpu/batch_norm.h"

#include <algorithm>
#include <cmath>
#include <tuple>
#include <type_traits>
#include <utility>

namespace tpp::ops::cpu {

namespace {

template <class T>
const T* optional_data(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}
template <class T>
T* optional_out(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

// Every loop runs over the N·C blocks of HW values, in parallel: a layer with
// fewer channels than threads (a pruned one) still uses every core. Sums are
// made per block and then added per channel in image order, so that they do
// not depend on the number of threads.
bool worth_threads(const BatchNormShape& s) { return s.n * s.c > 1 && s.c * s.per_channel() > 4096; }

using SumPair = std::pair<double, double>;

// Per channel c, the two sums block_sums(block, c) gives for each image's block
// of that channel. The per-block sums live in one buffer per thread, kept.
template <class BlockSums>
void channel_sums(const BatchNormShape& s, BlockSums block_sums, std::vector<double>& first,
                  std::vector<double>& second) {
  thread_local std::vector<SumPair> per_block;
  per_block.resize(static_cast<size_t>(s.n * s.c));
  SumPair* const blocks = per_block.data();
#pragma omp parallel for if (worth_threads(s))
  for (int64_t b = 0; b < s.n * s.c; ++b) blocks[b] = block_sums(b, b % s.c);  // block b = n·C + c
  first.assign(s.c, 0);
  second.assign(s.c, 0);
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t c = 0; c < s.c; ++c) {
      first[c] += blocks[n * s.c + c].first;
      second[c] += blocks[n * s.c + c].second;
    }
}

// write_block(block, its channel) for every block, in parallel.
template <class WriteBlock>
void for_each_block(const BatchNormShape& s, WriteBlock write_block) {
#pragma omp parallel for if (worth_threads(s))
  for (int64_t b = 0; b < s.n * s.c; ++b) write_block(b, b % s.c);
}

// y = (x - mean) * scale + shift over block b, then max(y, 0) (ReLU's rule:
// NaN stays) when kRelu. Centring first keeps f32 exact-ish when the mean is
// large against the spread.
template <bool kRelu, class T>
void normalize_block(const T* x, T* y, const BatchNormShape& s, int64_t b, double mean, double scale, double shift) {
  const SplitMean<T> m(mean);
  const T a = static_cast<T>(scale), offset = static_cast<T>(shift);
  const int64_t base = b * s.hw;
  if constexpr (kRelu) {
#pragma omp simd
    for (int64_t i = 0; i < s.hw; ++i) y[base + i] = std::max(m.centre(x[base + i]) * a + offset, T(0));  // NaN stays
  } else {
#pragma omp simd
    for (int64_t i = 0; i < s.hw; ++i) y[base + i] = m.centre(x[base + i]) * a + offset;
  }
}

// normalize_block over every block, with the ReLU or without.
template <class T>
void normalize_blocks(const T* x, T* y, const BatchNormShape& s, const ChannelStats& stats, const T* w, const T* b,
                      bool relu) {
  for_each_block(s, [&](int64_t block, int64_t c) {
    const double scale = stats.invstd[c] * (w ? w[c] : 1.0), shift = b ? b[c] : 0.0;
    if (relu) {
      normalize_block<true>(x, y, s, block, stats.mean[c], scale, shift);
    } else {
      normalize_block<false>(x, y, s, block, stats.mean[c], scale, shift);
    }
  });
}

// The gradient reaching batch norm's output over block b: dy itself, or
// through a fused ReLU (relu_y, its output: not null), dy where relu_y > 0
// (ReLU's backward rule: NaN passes), written into a per-thread buffer of one
// block (in L1/L2 for our shapes) so that the loops reading it stay the plain
// vectorised ones (a select inside their reductions keeps them scalar).
template <class T>
const T* block_gradient(const T* dy, const T* relu_y, const BatchNormShape& s, int64_t b) {
  const int64_t base = b * s.hw;
  if (!relu_y) return dy + base;
  thread_local std::vector<T> through_relu;
  through_relu.resize(static_cast<size_t>(s.hw));
  T* out = through_relu.data();
  // Both loads unconditional: a select that vectorises (a load of dy under
  // the condition compiles to a branch per value).
#pragma omp simd
  for (int64_t i = 0; i < s.hw; ++i) {
    const T g = dy[base + i], y = relu_y[base + i];
    out[i] = y <= T(0) ? T(0) : g;
  }
  return out;
}

// Σ (x - shift) and Σ (x - shift)² over block b.
template <class T>
SumPair shifted_sums(const T* x, const BatchNormShape& s, int64_t b, double shift) {
  double s1 = 0, s2 = 0;
  const T* block = x + b * s.hw;
#pragma omp simd reduction(+ : s1, s2)
  for (int64_t i = 0; i < s.hw; ++i) {
    const double d = static_cast<double>(block[i]) - shift;
    s1 += d;
    s2 += d * d;
  }
  return {s1, s2};
}

// Mean and biased variance of every channel from sums (in f64) around a shift:
// for f32 input, one pass around a value of the channel (the f64 sums keep
// ~16 digits, far beyond what f32 output can show, unless that value lies
// hundreds of standard deviations off); for f64 input a second pass around
// the first pass's mean, so that it keeps its own digits (one pass, s2/n -
// mean², lost ~1e-11).
template <class T>
void channel_moments(const T* x, const BatchNormShape& s, std::vector<double>& mean, std::vector<double>& var) {
  const double count = static_cast<double>(s.per_channel());
  std::vector<double> shift(s.c), d1, d2;
  for (int64_t c = 0; c < s.c; ++c) shift[c] = x[c * s.hw];  // a value of the channel: a large mean cancels less
  channel_sums(s, [&](int64_t b, int64_t c) { return shifted_sums(x, s, b, shift[c]); }, d1, d2);
  std::vector<double> centre = shift;  // what d1 and d2 are sums around
  if constexpr (std::is_same_v<T, double>) {
    for (int64_t c = 0; c < s.c; ++c) centre[c] = shift[c] + d1[c] / count;
    channel_sums(s, [&](int64_t b, int64_t c) { return shifted_sums(x, s, b, centre[c]); }, d1, d2);
  }
  mean.assign(s.c, 0);
  var.assign(s.c, 0);
  for (int64_t c = 0; c < s.c; ++c) {
    mean[c] = centre[c] + d1[c] / count;
    var[c] = std::max((d2[c] - d1[c] * d1[c] / count) / count, 0.0);
  }
}

template <class T>
void forward_train(const Tensor& x, const BatchNormShape& s, const Tensor& weight, const Tensor& bias, double eps,
                   bool relu, const Tensor& y, ChannelStats& stats, std::vector<double>& unbiased_var) {
  const T* px = x.data<T>();
  T* py = y.data<T>();
  const T* w = optional_data<T>(weight);
  const T* b = optional_data<T>(bias);
  const double count = static_cast<double>(s.per_channel());
  std::vector<double> var;
  channel_moments(px, s, stats.mean, var);
  stats.invstd.assign(s.c, 0);
  unbiased_var.assign(s.c, 0);
  for (int64_t c = 0; c < s.c; ++c) {
    stats.invstd[c] = 1.0 / std::sqrt(var[c] + eps);
    unbiased_var[c] = var[c] * count / (count - 1);
  }
  normalize_blocks(px, py, s, stats, w, b, relu);
}

template <class T>
void forward_eval(const Tensor& x, const BatchNormShape& s, const Tensor& weight, const Tensor& bias,
                  const ChannelStats& stats, bool relu, const Tensor& y) {
  normalize_blocks(x.data<T>(), y.data<T>(), s, stats, optional_data<T>(weight), optional_data<T>(bias), relu);
}

// Σ g and Σ g·(x − mean) over block b, g its gradient (block_gradient).
template <class T>
SumPair block_dy_sums(const T* px, const T* g, const BatchNormShape& s, int64_t b, double mean) {
  double sum_dy = 0, sum_dy_centred = 0;
  const T* xb = px + b * s.hw;
#pragma omp simd reduction(+ : sum_dy, sum_dy_centred)
  for (int64_t i = 0; i < s.hw; ++i) {
    sum_dy += g[i];
    sum_dy_centred += static_cast<double>(g[i]) * (static_cast<double>(xb[i]) - mean);
  }
  return {sum_dy, sum_dy_centred};
}

// dx = a·g + k·(x − mean) + k0 over block b, g its gradient (block_gradient).
template <class T>
void write_block_dx(T* pdx, const T* px, const T* g, const BatchNormShape& s, int64_t b, double a, double k,
                    double k0, double mean) {
  const T ta = static_cast<T>(a), tk = static_cast<T>(k), tk0 = static_cast<T>(k0);
  const SplitMean<T> m(mean);
  const int64_t base = b * s.hw;
#pragma omp simd
  for (int64_t i = 0; i < s.hw; ++i) pdx[base + i] = ta * g[i] + tk * m.centre(px[base + i]) + tk0;
}

template <class T>
void backward_sums(const Tensor& x, const Tensor& dy, const Tensor& relu_y, const BatchNormShape& s,
                   const ChannelStats& stats, std::vector<double>& sum_dy, std::vector<double>& sum_dy_centred) {
  const T* px = x.data<T>();
  const T* pdy = dy.data<T>();
  const T* py = optional_data<T>(relu_y);
  channel_sums(
      s, [&](int64_t b, int64_t c) { return block_dy_sums(px, block_gradient(pdy, py, s, b), s, b, stats.mean[c]); },
      sum_dy, sum_dy_centred);
}

// dx = a·dy + k·(x − mean) + k0 with, per channel, the coefficients of the
// gradient through batch statistics (or through fixed ones: k = k0 = 0).
template <class T>
void write_dx(const Tensor& x, const Tensor& dy, const Tensor& relu_y, const BatchNormShape& s, const Tensor& weight,
              const ChannelStats& stats, const std::vector<double>* sum_dy, const std::vector<double>* sum_dy_centred,
              double count, const Tensor& dx) {
  const T* px = x.data<T>();
  const T* w = optional_data<T>(weight);
  T* pdx = dx.data<T>();
  std::vector<double> a(s.c), k(s.c, 0.0), k0(s.c, 0.0);
  for (int64_t c = 0; c < s.c; ++c) {
    const double invstd = stats.invstd[c];
    a[c] = (w ? w[c] : 1.0) * invstd;
    if (!sum_dy) continue;
    k[c] = -a[c] * (*sum_dy_centred)[c] * invstd * invstd / count;  // Σ dy·xhat = Σ dy·(x − mean) · invstd
    k0[c] = -a[c] * (*sum_dy)[c] / count;
  }
  const T* pdy = dy.data<T>();
  const T* py = optional_data<T>(relu_y);
  for_each_block(s, [&](int64_t b, int64_t c) {
    write_block_dx(pdx, px, block_gradient(pdy, py, s, b), s, b, a[c], k[c], k0[c], stats.mean[c]);
  });
}

// With xhat = (x - mean) * invstd and M values per channel:
//   dbias = sum dy, dweight = sum dy * xhat,
//   dx = w * invstd * (dy - [sum dy + xhat * sum dy * xhat] / M)   (batch statistics)
//   dx = w * invstd * dy                                             (fixed statistics)
template <class T>
void backward(const Tensor& x, const Tensor& dy, const Tensor& relu_y, const BatchNormShape& s, const Tensor& weight,
              const ChannelStats& stats, bool batch_stats, const Tensor& dx, const Tensor& dweight,
              const Tensor& dbias) {
  T* pdw = optional_out<T>(dweight);
  T* pdb = optional_out<T>(dbias);
  std::vector<double> sum_dy, sum_dy_centred;
  if (pdw || pdb || (dx.defined() && batch_stats)) backward_sums<T>(x, dy, relu_y, s, stats, sum_dy, sum_dy_centred);
  for (int64_t c = 0; c < s.c && (pdw || pdb); ++c) {
    if (pdw) pdw[c] = static_cast<T>(sum_dy_centred[c] * stats.invstd[c]);
    if (pdb) pdb[c] = static_cast<T>(sum_dy[c]);
  }
  if (!dx.defined()) return;
  write_dx<T>(x, dy, relu_y, s, weight, stats, batch_stats ? &sum_dy : nullptr,
              batch_stats ? &sum_dy_centred : nullptr, static_cast<double>(s.per_channel()), dx);
}

template <class T>
void local_moments(const Tensor& x, const BatchNormShape& s, std::vector<double>& mean, std::vector<double>& m2) {
  mean.assign(s.c, 0);
  m2.assign(s.c, 0);
  if (s.per_channel() == 0) return;
  const double count = static_cast<double>(s.per_channel());
  channel_moments(x.data<T>(), s, mean, m2);
  for (double& v : m2) v *= count;
}

template <class T>
void backward_input(const Tensor& x, const Tensor& dy, const BatchNormShape& s, const Tensor& weight,
                    const ChannelStats& stats, const std::vector<double>& sum_dy,
                    const std::vector<double>& sum_dy_centred, double count, const Tensor& dx) {
  write_dx<T>(x, dy, Tensor(), s, weight, stats, &sum_dy, &sum_dy_centred, count, dx);
}

}  // namespace

void batch_norm_local_moments(const Tensor& x, const BatchNormShape& s, std::vector<double>& mean,
                              std::vector<double>& squared_deviations) {
  dispatch_floating(x.dtype(), "sync_batch_norm2d",
                    [&](auto type) { local_moments<decltype(type)>(x, s, mean, squared_deviations); });
}

void batch_norm_backward_sums(const Tensor& x, const Tensor& dy, const BatchNormShape& s, const ChannelStats& stats,
                              std::vector<double>& sum_dy, std::vector<double>& sum_dy_centred) {
  dispatch_floating(x.dtype(), "sync_batch_norm2d backward",
                    [&](auto type) { backward_sums<decltype(type)>(x, dy, Tensor(), s, stats, sum_dy, sum_dy_centred); });
}

void batch_norm_backward_input(const Tensor& x, const Tensor& dy, const BatchNormShape& s, const Tensor& weight,
                               const ChannelStats& stats, const std::vector<double>& sum_dy,
                               const std::vector<double>& sum_dy_centred, double count, const Tensor& dx) {
  dispatch_floating(x.dtype(), "sync_batch_norm2d backward", [&](auto type) {
    backward_input<decltype(type)>(x, dy, s, weight, stats, sum_dy, sum_dy_centred, count, dx);
  });
}

void batch_norm_forward_train(const Tensor& x, const BatchNormShape& s, const Tensor& weight, const Tensor& bias,
                              double eps, const Tensor& y, ChannelStats& stats, std::vector<double>& unbiased_var,
                              bool relu) {
  dispatch_floating(x.dtype(), "batch_norm2d", [&](auto type) {
    forward_train<decltype(type)>(x, s, weight, bias, eps, relu, y, stats, unbiased_var);
  });
}

void batch_norm_forward_eval(const Tensor& x, const BatchNormShape& s, const Tensor& weight, const Tensor& bias,
                             const ChannelStats& stats, const Tensor& y, bool relu) {
  dispatch_floating(x.dtype(), "batch_norm2d",
                    [&](auto type) { forward_eval<decltype(type)>(x, s, weight, bias, stats, relu, y); });
}

void batch_norm_backward(const Tensor& x, const Tensor& dy, const BatchNormShape& s, const Tensor& weight,
                         const ChannelStats& stats, bool batch_stats, const Tensor& dx, const Tensor& dweight,
                         const Tensor& dbias, const Tensor& relu_y) {
  dispatch_floating(x.dtype(), "batch_norm2d backward", [&](auto type) {
    backward<decltype(type)>(x, dy, relu_y, s, weight, stats, batch_stats, dx, dweight, dbias);
  });
}

void update_running_stat(const Tensor& running, const std::vector<double>& value, double momentum) {
  dispatch_floating(running.dtype(), "batch_norm2d", [&](auto type) {
    using T = decltype(type);
    T* r = running.data<T>();
    for (size_t c = 0; c < value.size(); ++c)
      r[c] = static_cast<T>((1 - momentum) * static_cast<double>(r[c]) + momentum * value[c]);
  });
}

// ---- The CUDA kernels' arguments ----

namespace {

ChannelStats stats_of(const Tensor& mean, const Tensor& invstd) {
  return {mean.to_vector<double>(), invstd.to_vector<double>()};
}

std::vector<double> row_of(const Tensor& f64_rows, int64_t row, int64_t channels) {
  const double* first = f64_rows.data<double>() + row * channels;
  return {first, first + channels};
}

void write_row(const std::vector<double>& values, const Tensor& f64_rows, int64_t row) {
  std::copy(values.begin(), values.end(), f64_rows.data<double>() + row * static_cast<int64_t>(values.size()));
}

}  // namespace

void batch_norm_forward_train(const Tensor& x, const BatchNormShape& s, const Tensor& weight, const Tensor& bias,
                              double eps, double momentum, const Tensor& y, const Tensor& mean, const Tensor& invstd,
                              const Tensor& running_mean, const Tensor& running_var, bool relu) {
  ChannelStats stats;
  std::vector<double> unbiased_var;
  batch_norm_forward_train(x, s, weight, bias, eps, y, stats, unbiased_var, relu);
  write_row(stats.mean, mean, 0);
  write_row(stats.invstd, invstd, 0);
  if (running_mean.defined()) {
    update_running_stat(running_mean, stats.mean, momentum);
    update_running_stat(running_var, unbiased_var, momentum);
  }
}

void batch_norm_stats_from_running(const Tensor& running_mean, const Tensor& running_var, double eps,
                                   const Tensor& mean, const Tensor& invstd) {
  std::vector<double> scale = running_var.to_vector<double>();
  for (double& v : scale) v = 1.0 / std::sqrt(v + eps);
  write_row(running_mean.to_vector<double>(), mean, 0);
  write_row(scale, invstd, 0);
}

void batch_norm_forward_eval(const Tensor& x, const BatchNormShape& s, const Tensor& weight, const Tensor& bias,
                             const Tensor& mean, const Tensor& invstd, const Tensor& y, bool relu) {
  batch_norm_forward_eval(x, s, weight, bias, stats_of(mean, invstd), y, relu);
}

void batch_norm_backward(const Tensor& x, const Tensor& dy, const BatchNormShape& s, const Tensor& weight,
                         const Tensor& mean, const Tensor& invstd, bool batch_stats, const Tensor& dx,
                         const Tensor& dweight, const Tensor& dbias, const Tensor& relu_y) {
  batch_norm_backward(x, dy, s, weight, stats_of(mean, invstd), batch_stats, dx, dweight, dbias, relu_y);
}

void batch_norm_local_moments(const Tensor& x, const BatchNormShape& s, const Tensor& moments) {
  std::vector<double> mean, squared_deviations;
  batch_norm_local_moments(x, s, mean, squared_deviations);
  write_row(std::vector<double>(static_cast<size_t>(s.c), static_cast<double>(s.per_channel())), moments, 0);
  write_row(mean, moments, 1);
  write_row(squared_deviations, moments, 2);
}

void batch_norm_backward_sums(const Tensor& x, const Tensor& dy, const BatchNormShape& s, const Tensor& mean,
                              const Tensor& invstd, const Tensor& sums, const Tensor& dweight, const Tensor& dbias) {
  const ChannelStats stats = stats_of(mean, invstd);
  std::vector<double> sum_dy, sum_dy_centred;
  batch_norm_backward_sums(x, dy, s, stats, sum_dy, sum_dy_centred);
  if (dweight.defined()) {
    std::vector<double> sum_dy_xhat(sum_dy_centred);
    for (int64_t c = 0; c < s.c; ++c) sum_dy_xhat[c] *= stats.invstd[c];
    Tensor(dweight).copy_(from_vector<double>(sum_dy_xhat, {s.c}));  // a handle to the same tensor
  }
  if (dbias.defined()) Tensor(dbias).copy_(from_vector<double>(sum_dy, {s.c}));
  write_row(sum_dy, sums, 0);
  write_row(sum_dy_centred, sums, 1);
}

void batch_norm_backward_input(const Tensor& x, const Tensor& dy, const BatchNormShape& s, const Tensor& weight,
                               const Tensor& mean, const Tensor& invstd, const Tensor& sums, double count,
                               const Tensor& dx) {
  batch_norm_backward_input(x, dy, s, weight, stats_of(mean, invstd), row_of(sums, 0, s.c), row_of(sums, 1, s.c),
                            count, dx);
}

void update_running_stat(const Tensor& running, const Tensor& value, double momentum) {
  update_running_stat(running, value.to_vector<double>(), momentum);
}

}  // namespace tpp::ops::cpu
