// Frobenius norm and its gradient right below.
#include "ops/norm.h"

#include "engine/autograd.h"
#include "ops/checks.h"
#include "ops/cpu/reduce.h"
#include "ops/dispatch.h"
#if TPP_WITH_CUDA
#include "ops/cuda/reduce.h"
#endif

namespace tpp::ops {

Tensor frobenius_norm(const Tensor& x) {
  check_floating("frobenius_norm", x);
  const Tensor xc = x.detach().contiguous();
  Tensor y = empty({}, {.dtype = x.dtype(), .device = x.device()});
  TPP_ON_DEVICE(xc, frobenius_norm_forward(xc, y));
  record_grad(y, "frobenius_norm", {x}, [xc, y = y.detach()](const Tensor& dy) {
    Tensor dx = empty_like(xc);
    TPP_ON_DEVICE(xc, frobenius_norm_backward(xc, y, dy, dx));  // 0 where the norm is 0: a subgradient
    return Grads{dx};
  });
  return y;
}

}  // namespace tpp::ops
