#include "ops/cpu/softmax.h"

#include <cmath>
#include <limits>
#include <vector>

namespace tpp::ops::cpu {

namespace {

bool worth_threads(const SoftmaxLayout& l) { return l.outer > 1 && l.outer * l.dim * l.inner > (1 << 14); }

// One row (inner == 1): contiguous, the common case (logits [N, C]).
template <class T>
void softmax_row(const T* x, int64_t n, bool log, T* y) {
  T m = -std::numeric_limits<T>::infinity();
  for (int64_t j = 0; j < n; ++j) m = std::max(m, x[j]);
  double total = 0;
  for (int64_t j = 0; j < n; ++j) {
    const T e = std::exp(x[j] - m);
    if (!log) y[j] = e;
    total += e;
  }
  if (log) {
    const T log_total = static_cast<T>(std::log(total));
    for (int64_t j = 0; j < n; ++j) y[j] = x[j] - m - log_total;
  } else {
    const T inv = static_cast<T>(1.0 / total);
    for (int64_t j = 0; j < n; ++j) y[j] *= inv;
  }
}

// A block [dim, inner]: the softmax runs down each of the inner columns.
template <class T>
void softmax_block(const T* x, const SoftmaxLayout& l, bool log, T* y) {
  std::vector<T> m(l.inner, -std::numeric_limits<T>::infinity());
  std::vector<double> total(l.inner, 0.0);
  for (int64_t d = 0; d < l.dim; ++d)
    for (int64_t i = 0; i < l.inner; ++i) m[i] = std::max(m[i], x[d * l.inner + i]);
  for (int64_t d = 0; d < l.dim; ++d)
    for (int64_t i = 0; i < l.inner; ++i) {
      const int64_t k = d * l.inner + i;
      const T e = std::exp(x[k] - m[i]);
      if (!log) y[k] = e;
      total[i] += e;
    }
  for (int64_t i = 0; i < l.inner; ++i) total[i] = log ? std::log(total[i]) : 1.0 / total[i];
  for (int64_t d = 0; d < l.dim; ++d)
    for (int64_t i = 0; i < l.inner; ++i) {
      const int64_t k = d * l.inner + i;
      y[k] = log ? x[k] - m[i] - static_cast<T>(total[i]) : y[k] * static_cast<T>(total[i]);
    }
}

template <class T>
void forward(const T* x, const SoftmaxLayout& l, bool log, T* y) {
  const int64_t block = l.dim * l.inner;
#pragma omp parallel for if (worth_threads(l))
  for (int64_t o = 0; o < l.outer; ++o) {
    if (l.inner == 1) softmax_row(x + o * block, l.dim, log, y + o * block);
    else softmax_block(x + o * block, l, log, y + o * block);
  }
}

template <class T>
void backward(const T* y, const T* dy, const SoftmaxLayout& l, bool log, T* dx) {
  const int64_t block = l.dim * l.inner;
#pragma omp parallel for if (worth_threads(l))
  for (int64_t o = 0; o < l.outer; ++o) {
    const T* yb = y + o * block;
    const T* gb = dy + o * block;
    T* out = dx + o * block;
    std::vector<double> dot(l.inner, 0.0);  // sum(dy * y) or sum(dy) down each column
    for (int64_t d = 0; d < l.dim; ++d)
      for (int64_t i = 0; i < l.inner; ++i) {
        const int64_t k = d * l.inner + i;
        dot[i] += log ? gb[k] : static_cast<double>(gb[k]) * yb[k];
      }
    for (int64_t d = 0; d < l.dim; ++d)
      for (int64_t i = 0; i < l.inner; ++i) {
        const int64_t k = d * l.inner + i;
        const T s = static_cast<T>(dot[i]);
        out[k] = log ? gb[k] - std::exp(yb[k]) * s : yb[k] * (gb[k] - s);
      }
  }
}

}  // namespace

void softmax_forward(const Tensor& x, const SoftmaxLayout& l, bool log, const Tensor& y) {
  dispatch_floating(x.dtype(), log ? "log_softmax" : "softmax", [&](auto type) {
    using T = decltype(type);
    forward(x.data<T>(), l, log, y.data<T>());
  });
}

void softmax_backward(const Tensor& y, const Tensor& dy, const SoftmaxLayout& l, bool log, const Tensor& dx) {
  dispatch_floating(y.dtype(), log ? "log_softmax backward" : "softmax backward", [&](auto type) {
    using T = decltype(type);
    backward(y.data<T>(), dy.data<T>(), l, log, dx.data<T>());
  });
}

}  // namespace tpp::ops::cpu
