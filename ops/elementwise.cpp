// Element-wise ops: checks, dispatch, and each gradient right below its
// forward. Backward formulas reuse the forward ops (run without recording).
#include "ops/elementwise.h"

#include "engine/autograd.h"
#include "ops/checks.h"
#include "ops/cpu/elementwise.h"
#include "ops/dispatch.h"
#if TPP_WITH_CUDA
#include "ops/cuda/elementwise.h"
#endif

namespace tpp::ops {

namespace {

Tensor binary(Binary kind, std::string_view name, const Tensor& a, const Tensor& b) {
  check_same_dtype_device(name, a, b);
  check_floating(name, a);
  Tensor out = empty(broadcast_shapes(name, a.sizes(), b.sizes()), {.dtype = a.dtype(), .device = a.device()});
  TPP_ON_DEVICE(out, binary_forward(kind, a, b, out));
  return out;
}

Tensor unary(Unary kind, std::string_view name, const Tensor& x, double scalar = 0) {
  check_floating(name, x);
  Tensor out = empty(x.sizes(), {.dtype = x.dtype(), .device = x.device()});
  TPP_ON_DEVICE(out, unary_forward(kind, x, scalar, out));
  return out;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor y = binary(Binary::add, "add", a, b);
  record_grad(y, "add", {a, b}, [sa = a.sizes(), sb = b.sizes()](const Tensor& dy) {
    return Grads{sum_to_shape(dy, sa), sum_to_shape(dy, sb)};
  });
  return y;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor y = binary(Binary::sub, "sub", a, b);
  record_grad(y, "sub", {a, b}, [sa = a.sizes(), sb = b.sizes()](const Tensor& dy) {
    return Grads{sum_to_shape(dy, sa), sum_to_shape(neg(dy), sb)};
  });
  return y;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor y = binary(Binary::mul, "mul", a, b);
  const bool need_a = a.requires_grad(), need_b = b.requires_grad();
  record_grad(y, "mul", {a, b}, [a, b, need_a, need_b](const Tensor& dy) {
    return Grads{need_a ? sum_to_shape(mul(dy, b), a.sizes()) : Tensor(),
                 need_b ? sum_to_shape(mul(dy, a), b.sizes()) : Tensor()};
  });
  return y;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor y = binary(Binary::div, "div", a, b);
  const bool need_a = a.requires_grad(), need_b = b.requires_grad();
  record_grad(y, "div", {a, b}, [a, b, y = y.detach(), need_a, need_b](const Tensor& dy) {
    const Tensor da = need_a ? div(dy, b) : Tensor();
    // d(a/b)/db = -(a/b)/b, computed as -dy · (y / b) in PyTorch's order (the same
    // overflow where a/b² is out of range and dy small).
    const Tensor db = need_b ? sum_to_shape(neg(mul(dy, div(y, b))), b.sizes()) : Tensor();
    return Grads{need_a ? sum_to_shape(da, a.sizes()) : Tensor(), db};
  });
  return y;
}

Tensor add(const Tensor& a, double s) {
  Tensor y = unary(Unary::add_scalar, "add", a, s);
  record_grad(y, "add_scalar", {a}, [](const Tensor& dy) { return Grads{dy}; });
  return y;
}

Tensor mul(const Tensor& a, double s) {
  Tensor y = unary(Unary::mul_scalar, "mul", a, s);
  record_grad(y, "mul_scalar", {a}, [s](const Tensor& dy) { return Grads{mul(dy, s)}; });
  return y;
}

Tensor rsub(double s, const Tensor& a) {
  Tensor y = unary(Unary::rsub_scalar, "rsub", a, s);
  record_grad(y, "rsub", {a}, [](const Tensor& dy) { return Grads{neg(dy)}; });
  return y;
}

Tensor rdiv(double s, const Tensor& a) {
  Tensor y = unary(Unary::rdiv_scalar, "rdiv", a, s);
  record_grad(y, "rdiv", {a}, [a, y = y.detach()](const Tensor& dy) { return Grads{neg(div(mul(dy, y), a))}; });
  return y;
}

Tensor pow(const Tensor& x, double p) {
  Tensor y = unary(Unary::pow_scalar, "pow", x, p);
  // p * x^(p-1) is 0 * inf at x = 0 for p = 0; the gradient of a constant is 0 (as in PyTorch).
  record_grad(y, "pow", {x}, [x, p](const Tensor& dy) {
    return Grads{p == 0 ? zeros(dy.sizes(), {.dtype = dy.dtype(), .device = dy.device()}) : mul(mul(dy, pow(x, p - 1)), p)};
  });
  return y;
}

Tensor neg(const Tensor& x) {
  Tensor y = unary(Unary::neg, "neg", x);
  record_grad(y, "neg", {x}, [](const Tensor& dy) { return Grads{neg(dy)}; });
  return y;
}

Tensor exp(const Tensor& x) {
  Tensor y = unary(Unary::exp, "exp", x);
  record_grad(y, "exp", {x}, [y = y.detach()](const Tensor& dy) { return Grads{mul(dy, y)}; });
  return y;
}

Tensor log(const Tensor& x) {
  Tensor y = unary(Unary::log, "log", x);
  record_grad(y, "log", {x}, [x](const Tensor& dy) { return Grads{div(dy, x)}; });
  return y;
}

Tensor sqrt(const Tensor& x) {
  Tensor y = unary(Unary::sqrt, "sqrt", x);
  record_grad(y, "sqrt", {x}, [y = y.detach()](const Tensor& dy) { return Grads{div(mul(dy, 0.5), y)}; });
  return y;
}

Tensor abs(const Tensor& x) {
  Tensor y = unary(Unary::abs, "abs", x);
  // sign(x), with 0 at 0 as in PyTorch: x / |x| would give NaN there.
  record_grad(y, "abs", {x}, [x](const Tensor& dy) { return Grads{mul(dy, unary(Unary::sign, "abs", x))}; });
  return y;
}

Tensor relu(const Tensor& x) {
  Tensor y = unary(Unary::relu, "relu", x);
  record_grad(y, "relu", {x}, [y = y.detach()](const Tensor& dy) {
    Tensor dx = empty_like(y);
    TPP_ON_DEVICE(dx, relu_backward(y, dy, dx));
    return Grads{dx};
  });
  return y;
}

Tensor mask_mul(const Tensor& x, const Tensor& mask) {
  check_floating("mask_mul", x);
  TPP_CHECK(x.device() == mask.device(), "mask_mul: device mismatch: {} and {}", x.device().str(),
            mask.device().str());
  const Tensor m = mask.dtype() == x.dtype() ? mask : mask.to(x.dtype());
  Tensor y = binary(Binary::mul, "mask_mul", x.detach(), m);
  TPP_CHECK(y.sizes() == x.sizes(), "mask_mul: mask of shape {} does not broadcast to input shape {}",
            shape_str(mask.sizes()), shape_str(x.sizes()));
  record_grad(y, "mask_mul", {x}, [m](const Tensor& dy) { return Grads{mul(dy, m)}; });
  return y;
}

}  // namespace tpp::ops
