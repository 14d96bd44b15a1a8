// The kinds of element-wise op, shared by the CPU and CUDA kernels (free of
// fmt, so that nvcc can include it).
#pragma once

#include "ops/host_device.h"

namespace tpp::ops {

enum class Binary { add, sub, mul, div };
// `sign` is -1, 0 or 1 (0 for NaN too): abs's gradient, computed on the
// tensor's own device.
enum class Unary { neg, exp, log, sqrt, abs, relu, sign, add_scalar, mul_scalar, pow_scalar, rsub_scalar, rdiv_scalar };

// x^p as PyTorch computes it: the exponents it special-cases go to those
// functions, whose results differ from pow's at -0 and -inf (pow(-inf, 0.5)
// is sqrt's NaN, not pow's inf) and in the last bit (x * x * x). Math gives
// the dtype's sqrt and pow on the kernel's device.
template <class T, class Math>
TPP_HOST_DEVICE T pow_as_pytorch(T v, T p) {
  if (p == T(0.5)) return Math::sqrt(v);
  if (p == T(2)) return v * v;
  if (p == T(3)) return v * v * v;
  if (p == T(-0.5)) return T(1) / Math::sqrt(v);
  if (p == T(-1)) return T(1) / v;
  if (p == T(-2)) return T(1) / (v * v);
  return Math::pow(v, p);
}

}  // namespace tpp::ops
