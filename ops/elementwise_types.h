// The kinds of element-wise op, shared by the CPU and CUDA kernels (free of
// fmt, so that nvcc can include it).
#pragma once

namespace tpp::ops {

enum class Binary { add, sub, mul, div };
// `sign` is -1, 0 or 1 (0 for NaN too): abs's gradient, computed on the
// tensor's own device.
enum class Unary { neg, exp, log, sqrt, abs, relu, sign, add_scalar, mul_scalar, pow_scalar, rsub_scalar, rdiv_scalar };

}  // namespace tpp::ops
