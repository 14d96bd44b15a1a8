// Constant padding: a filled output with x copied into its interior; the
// gradient is that interior of dy.
#include "ops/pad.h"

#include "engine/autograd.h"
#include "ops/checks.h"
#if TPP_WITH_CUDA
#include "ops/cuda/pad.h"
#endif

namespace tpp::ops {

namespace {

// The region of the padded output that holds x.
Tensor interior(const Tensor& padded, const Shape& x_sizes, const std::vector<int64_t>& pad) {
  Tensor view = padded;
  const int64_t nd = static_cast<int64_t>(x_sizes.size());
  for (size_t i = 0; i < pad.size() / 2; ++i) {
    const int64_t d = nd - 1 - static_cast<int64_t>(i);
    view = view.slice(d, pad[2 * i], pad[2 * i] + x_sizes[d]);
  }
  return view;
}

// y = x padded with value: on a GPU in one pass, else a fill and a copy.
void pad_into(Tensor y, const Tensor& x, const std::vector<int64_t>& pad, double value) {
#if TPP_WITH_CUDA
  if (x.device().is_cuda()) return cuda::constant_pad_forward(x.contiguous(), pad, value, y);
#endif
  y.fill_(value);
  interior(y, x.sizes(), pad).copy_(x);
}

}  // namespace

Tensor constant_pad(const Tensor& x, const std::vector<int64_t>& pad, double value) {
  check_floating("constant_pad", x);
  TPP_CHECK(pad.size() % 2 == 0 && static_cast<int64_t>(pad.size() / 2) <= x.dim(),
            "constant_pad: pad {} must have an even length of at most twice the dims of x with shape {}",
            shape_str(pad), shape_str(x.sizes()));
  Shape out_sizes = x.sizes();
  for (size_t i = 0; i < pad.size(); ++i) {
    TPP_CHECK(pad[i] >= 0, "constant_pad: negative padding is not supported (pad {}, x of shape {})", shape_str(pad),
              shape_str(x.sizes()));
    out_sizes[x.dim() - 1 - static_cast<int64_t>(i / 2)] += pad[i];
  }
  Tensor y = empty(out_sizes, {.dtype = x.dtype(), .device = x.device()});
  pad_into(y, x.detach(), pad, value);
  record_grad(y, "constant_pad", {x}, [x_sizes = x.sizes(), pad](const Tensor& dy) {
    return Grads{interior(dy, x_sizes, pad).contiguous()};
  });
  return y;
}

}  // namespace tpp::ops
