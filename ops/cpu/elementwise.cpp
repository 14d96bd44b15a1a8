#include "ops/cpu/elementwise.h"

#include <cmath>

#include "engine/strided.h"

namespace tpp::ops::cpu {

namespace {

constexpr int64_t kParallelThreshold = 1 << 15;

template <class T>
struct StdMath {
  static T sqrt(T v) { return std::sqrt(v); }
  static T pow(T v, T p) { return std::pow(v, p); }
};

// No `simd` on these loops: some element functions branch (pow's special
// exponents, NaN-propagating relu), which clang cannot vectorize and then
// warns about; -O3 vectorizes the ones that can be.
template <class T, class Fn>
void binary_loop(const Tensor& a, const Tensor& b, const Tensor& out, Fn fn) {
  T* o = out.data<T>();
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  const int64_t n = out.numel();
  const bool flat_a = a.sizes() == out.sizes() && a.is_contiguous();
  const bool flat_b = b.sizes() == out.sizes() && b.is_contiguous();
  if (flat_a && flat_b) {
#pragma omp parallel for if (n > kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) o[i] = fn(pa[i], pb[i]);
    return;
  }
  if (flat_a && b.numel() == 1) {
    const T s = pb[0];
#pragma omp parallel for if (n > kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) o[i] = fn(pa[i], s);
    return;
  }
  const Tensor ea = a.detach().expand(out.sizes()), eb = b.detach().expand(out.sizes());
  StridedLoop<3>(out.sizes(), {&out.strides(), &ea.strides(), &eb.strides()}).run([&](const auto& off) {
    o[off[0]] = fn(pa[off[1]], pb[off[2]]);
  });
}

template <class T, class Fn>
void unary_loop(const Tensor& x, const Tensor& out, Fn fn) {
  T* o = out.data<T>();
  const T* px = x.data<T>();
  const int64_t n = out.numel();
  if (x.is_contiguous()) {
#pragma omp parallel for if (n > kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) o[i] = fn(px[i]);
    return;
  }
  StridedLoop<2>(out.sizes(), {&out.strides(), &x.strides()}).run([&](const auto& off) { o[off[0]] = fn(px[off[1]]); });
}

}  // namespace

void binary_forward(Binary op, const Tensor& a, const Tensor& b, const Tensor& out) {
  dispatch_floating(a.dtype(), "binary op", [&](auto type) {
    using T = decltype(type);
    switch (op) {
      case Binary::add: return binary_loop<T>(a, b, out, [](T x, T y) { return x + y; });
      case Binary::sub: return binary_loop<T>(a, b, out, [](T x, T y) { return x - y; });
      case Binary::mul: return binary_loop<T>(a, b, out, [](T x, T y) { return x * y; });
      case Binary::div: return binary_loop<T>(a, b, out, [](T x, T y) { return x / y; });
    }
  });
}

void unary_forward(Unary op, const Tensor& x, double scalar, const Tensor& out) {
  dispatch_floating(x.dtype(), "unary op", [&](auto type) {
    using T = decltype(type);
    const T s = static_cast<T>(scalar);
    switch (op) {
      case Unary::neg: return unary_loop<T>(x, out, [](T v) { return -v; });
      case Unary::exp: return unary_loop<T>(x, out, [](T v) { return std::exp(v); });
      case Unary::log: return unary_loop<T>(x, out, [](T v) { return std::log(v); });
      case Unary::sqrt: return unary_loop<T>(x, out, [](T v) { return std::sqrt(v); });
      case Unary::abs: return unary_loop<T>(x, out, [](T v) { return std::abs(v); });
      // NaN propagates, as in PyTorch: only values below 0 become 0.
      case Unary::relu: return unary_loop<T>(x, out, [](T v) { return v < T(0) ? T(0) : v; });
      case Unary::sign: return unary_loop<T>(x, out, [](T v) { return v > T(0) ? T(1) : (v < T(0) ? T(-1) : T(0)); });
      case Unary::add_scalar: return unary_loop<T>(x, out, [s](T v) { return v + s; });
      case Unary::mul_scalar: return unary_loop<T>(x, out, [s](T v) { return v * s; });
      case Unary::pow_scalar: return unary_loop<T>(x, out, [s](T v) { return pow_as_pytorch<T, StdMath<T>>(v, s); });
      case Unary::rsub_scalar: return unary_loop<T>(x, out, [s](T v) { return s - v; });
      case Unary::rdiv_scalar: return unary_loop<T>(x, out, [s](T v) { return s / v; });
    }
  });
}

void relu_backward(const Tensor& y, const Tensor& dy, const Tensor& dx) {
  dispatch_floating(y.dtype(), "relu backward", [&](auto type) {
    using T = decltype(type);
    // As PyTorch: the gradient passes unless the output is <= 0, so through NaN too.
    binary_loop<T>(y, dy, dx, [](T out, T grad) { return out <= T(0) ? T(0) : grad; });
  });
}

}  // namespace tpp::ops::cpu
