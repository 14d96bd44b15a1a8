// Element-wise math with numpy broadcasting, each differentiable.
#pragma once

#include "engine/tensor.h"

namespace tpp::ops {

Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);

Tensor add(const Tensor& a, double s);
Tensor mul(const Tensor& a, double s);
Tensor pow(const Tensor& x, double exponent);
Tensor rsub(double s, const Tensor& a);  // s - a
Tensor rdiv(double s, const Tensor& a);  // s / a

Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor relu(const Tensor& x);

// x * mask with a non-differentiable mask of x's shape (or broadcastable to
// it): pruning masks, dropout-style gating. The mask may be u8 or floating.
Tensor mask_mul(const Tensor& x, const Tensor& mask);

}  // namespace tpp::ops

namespace tpp {
inline Tensor operator+(const Tensor& a, const Tensor& b) { return ops::add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return ops::sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return ops::mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return ops::div(a, b); }
inline Tensor operator-(const Tensor& a) { return ops::neg(a); }
inline Tensor operator+(const Tensor& a, double s) { return ops::add(a, s); }
inline Tensor operator+(double s, const Tensor& a) { return ops::add(a, s); }
inline Tensor operator-(const Tensor& a, double s) { return ops::add(a, -s); }
inline Tensor operator-(double s, const Tensor& a) { return ops::rsub(s, a); }
inline Tensor operator*(const Tensor& a, double s) { return ops::mul(a, s); }
inline Tensor operator*(double s, const Tensor& a) { return ops::mul(a, s); }
inline Tensor operator/(const Tensor& a, double s) { return ops::mul(a, 1.0 / s); }
inline Tensor operator/(double s, const Tensor& a) { return ops::rdiv(s, a); }
}  // namespace tpp
