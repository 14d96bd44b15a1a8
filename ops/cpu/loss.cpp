#include "ops/cpu/loss.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace tpp::ops::cpu {

namespace {

bool worth_threads(int64_t n, int64_t c) { return n > 1 && n * c > (1 << 14); }

// Per row, with lse = log sum exp(x): -log p_t = lse - x_t and the mean over
// classes of -log p_j = lse - mean(x), each with lse = m + log sum exp(x - m).
// Returns the sum of the row losses; `counted` the rows not ignored.
template <class T>
double forward(const T* logits, const int64_t* target, int64_t n, int64_t c, const FusedCrossEntropy& opts, T* probs,
               int64_t& counted) {
  double total = 0;
  int64_t kept = 0;
#pragma omp parallel for reduction(+ : total, kept) if (worth_threads(n, c))
  for (int64_t i = 0; i < n; ++i) {
    const T* x = logits + i * c;
    T* p = probs + i * c;
    const T m = *std::max_element(x, x + c);
    double sum_exp = 0, sum_x = 0;
    for (int64_t j = 0; j < c; ++j) {
      const T e = std::exp(x[j] - m);
      p[j] = e;
      sum_exp += e;
      sum_x += x[j];
    }
    const T inv = static_cast<T>(1.0 / sum_exp);
    for (int64_t j = 0; j < c; ++j) p[j] *= inv;
    if (target[i] == opts.ignore_index) continue;  // adds 0, even where the logits are not finite
    ++kept;
    // (m - x_t) + log sum exp(x - m), not lse - x_t: when x_t is the maximum
    // and the row's loss tiny, lse would round at the size of m first.
    const double log_sum = std::log(sum_exp);
    const double nll = (static_cast<double>(m) - static_cast<double>(x[target[i]])) + log_sum;
    const double uniform = (static_cast<double>(m) - sum_x / static_cast<double>(c)) + log_sum;
    // No smoothing term at all without smoothing, as PyTorch: a logit of -inf
    // makes it infinite, and 0 * inf would be NaN.
    total += opts.smoothing > 0 ? (1 - opts.smoothing) * nll + opts.smoothing * uniform : nll;
  }
  counted = kept;
  return total;
}

template <class T>
void backward(const T* probs, const int64_t* target, int64_t n, int64_t c, const FusedCrossEntropy& opts, double scale,
              T* dx) {
  const T off = static_cast<T>(opts.smoothing / static_cast<double>(c));
  const T on = static_cast<T>(1 - opts.smoothing) + off;
  const T s = static_cast<T>(scale);
#pragma omp parallel for if (worth_threads(n, c))
  for (int64_t i = 0; i < n; ++i) {
    const T* p = probs + i * c;
    T* g = dx + i * c;
    if (target[i] == opts.ignore_index) {
      for (int64_t j = 0; j < c; ++j) g[j] = p[j] * T(0);
      continue;
    }
    for (int64_t j = 0; j < c; ++j) g[j] = (p[j] - off) * s;
    g[target[i]] = (p[target[i]] - on) * s;
  }
}

}  // namespace

void cross_entropy_forward(const Tensor& logits, const Tensor& target, const FusedCrossEntropy& opts,
                           const Tensor& probs, const Tensor& loss, const Tensor& divisor) {
  dispatch_floating(logits.dtype(), "cross_entropy", [&](auto type) {
    using T = decltype(type);
    int64_t counted = 0;
    const double total = forward(logits.data<T>(), target.data<int64_t>(), logits.size(0), logits.size(1), opts,
                                 probs.data<T>(), counted);
    const double by = opts.average ? static_cast<double>(counted) : 1.0;
    loss.data<T>()[0] = static_cast<T>(total / by);
    divisor.data<double>()[0] = by;
  });
}

void cross_entropy_backward(const Tensor& probs, const Tensor& target, const FusedCrossEntropy& opts,
                            const Tensor& divisor, const Tensor& dy, const Tensor& dlogits) {
  dispatch_floating(probs.dtype(), "cross_entropy backward", [&](auto type) {
    using T = decltype(type);
    backward(probs.data<T>(), target.data<int64_t>(), probs.size(0), probs.size(1), opts,
             dy.item() / divisor.item(), dlogits.data<T>());
  });
}

}  // namespace tpp::ops::cpu
