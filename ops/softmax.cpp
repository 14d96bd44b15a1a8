// Softmax and log-softmax: layout, dispatch, and the gradient right below the
// forward (both gradients need only the output).
#include "ops/softmax.h"

#include "engine/autograd.h"
#include "ops/checks.h"
#include "ops/cpu/softmax.h"
#include "ops/dispatch.h"
#if TPP_WITH_CUDA
#include "ops/cuda/softmax.h"
#endif

namespace tpp::ops {

namespace {

Tensor softmax_impl(const Tensor& x, int64_t dim, bool log) {
  const std::string_view op = log ? "log_softmax" : "softmax";
  check_floating(op, x);
  const int64_t d = wrap_dim(dim, x.dim(), op);
  SoftmaxLayout l;
  for (int64_t k = 0; k < x.dim(); ++k) {
    if (k < d) l.outer *= x.size(k);
    else if (k == d) l.dim = x.size(k);
    else l.inner *= x.size(k);
  }
  Tensor y = empty(x.sizes(), {.dtype = x.dtype(), .device = x.device()});
  const Tensor xc = x.detach().contiguous();
  TPP_ON_DEVICE(xc, softmax_forward(xc, l, log, y));
  record_grad(y, std::string(op), {x}, [y_saved = y.detach(), l, log](const Tensor& dy) {
    Tensor dx = empty_like(y_saved);
    const Tensor g = dy.contiguous();
    TPP_ON_DEVICE(y_saved, softmax_backward(y_saved, g, l, log, dx));
    return Grads{dx};
  });
  return y;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, true); }

}  // namespace tpp::ops
