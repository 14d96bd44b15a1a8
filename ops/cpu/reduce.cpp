#include "ops/cpu/reduce.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace tpp::ops::cpu {

namespace {

constexpr int64_t kParallelThreshold = 1 << 15;

template <class T>
bool beats(T candidate, T best) {  // strictly greater, NaN beats everything but NaN
  return candidate > best || (std::isnan(candidate) && !std::isnan(best));
}

template <class T, class U>
void sum_rows(const T* x, const ReduceLayout& l, double scale, U* out) {
  const bool parallel = l.outer * l.reduce * l.inner > kParallelThreshold && l.outer > 1;
  if (l.outer == 1 && l.inner == 1) {  // one long row: split it across threads
    double acc = 0;
#pragma omp parallel for reduction(+ : acc) if (l.reduce > kParallelThreshold)  // no simd: f32 into an f64 sum, which clang cannot vectorize
    for (int64_t r = 0; r < l.reduce; ++r) acc += x[r];
    out[0] = static_cast<U>(acc * scale);
    return;
  }
  if (l.inner == 1) {
#pragma omp parallel for if (parallel)
    for (int64_t o = 0; o < l.outer; ++o) {
      const T* row = x + o * l.reduce;
      double acc = 0;
#pragma omp simd reduction(+ : acc)
      for (int64_t r = 0; r < l.reduce; ++r) acc += row[r];
      out[o] = static_cast<U>(acc * scale);
    }
    return;
  }
#pragma omp parallel for if (parallel)
  for (int64_t o = 0; o < l.outer; ++o) {
    std::vector<double> acc(l.inner, 0.0);
    for (int64_t r = 0; r < l.reduce; ++r) {
      const T* row = x + (o * l.reduce + r) * l.inner;
#pragma omp simd
      for (int64_t i = 0; i < l.inner; ++i) acc[i] += row[i];
    }
    for (int64_t i = 0; i < l.inner; ++i) out[o * l.inner + i] = static_cast<U>(acc[i] * scale);
  }
}

template <class T>
void max_rows(const T* x, const ReduceLayout& l, T* values, int64_t* indices) {
  const bool parallel = l.outer * l.reduce * l.inner > kParallelThreshold && l.outer > 1;
#pragma omp parallel for if (parallel)
  for (int64_t o = 0; o < l.outer; ++o) {
    const T* block = x + o * l.reduce * l.inner;
    T* best = values + o * l.inner;
    int64_t* where = indices + o * l.inner;
    for (int64_t i = 0; i < l.inner; ++i) best[i] = block[i], where[i] = 0;
    for (int64_t r = 1; r < l.reduce; ++r) {
      const T* row = block + r * l.inner;
      for (int64_t i = 0; i < l.inner; ++i)
        if (beats(row[i], best[i])) best[i] = row[i], where[i] = r;
    }
  }
}

}  // namespace

void sum_forward(const Tensor& x, const ReduceLayout& layout, double scale, const Tensor& out) {
  dispatch_floating(x.dtype(), "sum", [&](auto in_type) {
    dispatch_floating(out.dtype(), "sum", [&](auto out_type) {
      using T = decltype(in_type);
      using U = decltype(out_type);
      sum_rows(x.data<T>(), layout, scale, out.data<U>());
    });
  });
}

void max_forward(const Tensor& x, const ReduceLayout& layout, const Tensor& values, const Tensor& indices) {
  dispatch_floating(x.dtype(), "max", [&](auto type) {
    using T = decltype(type);
    max_rows(x.data<T>(), layout, values.data<T>(), indices.data<int64_t>());
  });
}

void max_backward(const Tensor& dy, const Tensor& indices, const ReduceLayout& l, const Tensor& dx) {
  dispatch_floating(dy.dtype(), "max backward", [&](auto type) {
    using T = decltype(type);
    const T* g = dy.data<T>();
    const int64_t* where = indices.data<int64_t>();
    T* out = dx.data<T>();
    std::fill(out, out + dx.numel(), T(0));
    for (int64_t o = 0; o < l.outer; ++o)
      for (int64_t i = 0; i < l.inner; ++i) {
        const int64_t k = o * l.inner + i;
        out[(o * l.reduce + where[k]) * l.inner + i] = g[k];
      }
  });
}

void max_all(const Tensor& x, const Tensor& y) {
  dispatch_floating(x.dtype(), "max", [&](auto type) {
    using T = decltype(type);
    const T* p = x.data<T>();
    T best = p[0];
    for (int64_t i = 1; i < x.numel(); ++i)
      if (beats(p[i], best)) best = p[i];
    y.data<T>()[0] = best;
  });
}

void max_all_backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx) {
  dispatch_floating(x.dtype(), "max backward", [&](auto type) {
    using T = decltype(type);
    const T* p = x.data<T>();
    T* out = dx.data<T>();
    const T m = y.data<T>()[0];
    const bool nan_max = std::isnan(m);
    const auto is_max = [&](T v) { return nan_max ? std::isnan(v) : v == m; };
    int64_t ties = 0;
    for (int64_t i = 0; i < x.numel(); ++i) ties += is_max(p[i]);
    const T share = static_cast<T>(dy.item() / static_cast<double>(ties));
    for (int64_t i = 0; i < x.numel(); ++i) out[i] = is_max(p[i]) ? share : T(0);
  });
}

void frobenius_norm_forward(const Tensor& x, const Tensor& y) {
  dispatch_floating(x.dtype(), "frobenius_norm", [&](auto type) {
    using T = decltype(type);
    const T* p = x.data<T>();
    const int64_t n = x.numel();
    double acc = 0;
#pragma omp parallel for reduction(+ : acc) if (n > kParallelThreshold)  // no simd: as in sum_rows
    for (int64_t i = 0; i < n; ++i) acc += static_cast<double>(p[i]) * p[i];
    y.data<T>()[0] = static_cast<T>(std::sqrt(acc));
  });
}

void frobenius_norm_backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx) {
  dispatch_floating(x.dtype(), "frobenius_norm backward", [&](auto type) {
    using T = decltype(type);
    const double norm = static_cast<double>(y.data<T>()[0]);
    // dy / norm in double: for a tiny norm (1e-40 in f32) it overflows T.
    const double scale = norm == 0 ? 0.0 : dy.item() / norm;
    const T* p = x.data<T>();
    T* out = dx.data<T>();
    const int64_t n = x.numel();
#pragma omp parallel for simd if (n > kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(static_cast<double>(p[i]) * scale);
  });
}

}  // namespace tpp::ops::cpu
