#include "ops/cpu/loss.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace tpp::ops::cpu {

namespace {

bool worth_threads(int64_t n, int64_t c) { return n > 1 && n * c > (1 << 14); }

// Per row, with lse = log sum exp(x): -log p_t = lse - x_t and the mean over
// classes of -log p_j = lse - mean(x).
template <class T>
double forward(const T* logits, const int64_t* target, int64_t n, int64_t c, double smoothing, T* probs) {
  double total = 0;
#pragma omp parallel for reduction(+ : total) if (worth_threads(n, c))
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
    const double lse = static_cast<double>(m) + std::log(sum_exp);
    const double nll = lse - static_cast<double>(x[target[i]]);
    const double uniform = lse - sum_x / static_cast<double>(c);
    total += (1 - smoothing) * nll + smoothing * uniform;
  }
  return total / static_cast<double>(n);
}

template <class T>
void backward(const T* probs, const int64_t* target, int64_t n, int64_t c, double smoothing, double scale, T* dx) {
  const T off = static_cast<T>(smoothing / static_cast<double>(c));
  const T on = static_cast<T>(1 - smoothing) + off;
  const T s = static_cast<T>(scale);
#pragma omp parallel for if (worth_threads(n, c))
  for (int64_t i = 0; i < n; ++i) {
    const T* p = probs + i * c;
    T* g = dx + i * c;
    for (int64_t j = 0; j < c; ++j) g[j] = (p[j] - off) * s;
    g[target[i]] = (p[target[i]] - on) * s;
  }
}

}  // namespace

double cross_entropy_forward(const Tensor& logits, const Tensor& target, double smoothing, const Tensor& probs) {
  return dispatch_floating(logits.dtype(), "cross_entropy", [&](auto type) {
    using T = decltype(type);
    return forward(logits.data<T>(), target.data<int64_t>(), logits.size(0), logits.size(1), smoothing,
                   probs.data<T>());
  });
}

void cross_entropy_backward(const Tensor& probs, const Tensor& target, double smoothing, double scale,
                            const Tensor& dlogits) {
  dispatch_floating(probs.dtype(), "cross_entropy backward", [&](auto type) {
    using T = decltype(type);
    backward(probs.data<T>(), target.data<int64_t>(), probs.size(0), probs.size(1), smoothing, scale,
             dlogits.data<T>());
  });
}

void cross_entropy_forward(const Tensor& logits, const Tensor& target, double smoothing, const Tensor& probs,
                           const Tensor& loss) {
  Tensor(loss).fill_(cross_entropy_forward(logits, target, smoothing, probs));  // a handle to the same tensor
}

void cross_entropy_backward(const Tensor& probs, const Tensor& target, double smoothing, const Tensor& dy,
                            const Tensor& dlogits) {
  cross_entropy_backward(probs, target, smoothing, dy.item() / static_cast<double>(probs.size(0)), dlogits);
}

}  // namespace tpp::ops::cpu
