// Frobenius norm and its gradient right below.
#include "ops/norm.h"

#include <cmath>

#include "engine/autograd.h"
#include "ops/checks.h"
#include "ops/cpu/reduce.h"
#include "ops/elementwise.h"

namespace tpp::ops {

Tensor frobenius_norm(const Tensor& x) {
  check_floating("frobenius_norm", x);
  const Tensor xc = x.detach().contiguous();
  const double norm = std::sqrt(cpu::sum_of_squares(xc));
  Tensor y = full({}, norm, {.dtype = x.dtype(), .device = x.device()});
  record_grad(y, "frobenius_norm", {x}, [xc, norm](const Tensor& dy) {
    if (norm == 0) return Grads{zeros_like(xc)};  // a subgradient; x / ||x|| is 0/0 here
    return Grads{mul(xc, mul(dy, 1.0 / norm))};
  });
  return y;
}

}  // namespace tpp::ops
