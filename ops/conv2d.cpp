// conv2d: argument checks, the output geometry, dispatch, and the gradient
// right below the forward.
#include "ops/conv2d.h"

#include "engine/autograd.h"
#include "ops/checks.h"
#include "ops/cpu/conv2d.h"
#include "ops/dispatch.h"
#include "ops/elementwise.h"
#if TPP_WITH_CUDA
#include "ops/cuda/conv2d.h"
#endif

namespace tpp::ops {

namespace {

std::string pair_str(const std::array<int64_t, 2>& v) { return fmt::format("[{}, {}]", v[0], v[1]); }

void check_options(const Conv2dOptions& o) {
  TPP_CHECK(o.stride[0] > 0 && o.stride[1] > 0, "conv2d: stride must be positive but got {}", pair_str(o.stride));
  TPP_CHECK(o.dilation[0] > 0 && o.dilation[1] > 0, "conv2d: dilation must be positive but got {}",
            pair_str(o.dilation));
  TPP_CHECK(o.padding[0] >= 0 && o.padding[1] >= 0, "conv2d: padding must be non-negative but got {}",
            pair_str(o.padding));
  TPP_CHECK(o.groups > 0, "conv2d: groups must be positive but got {}", o.groups);
}

Conv2dGeometry checked_geometry(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& o) {
  check_floating("conv2d", x);
  check_same_dtype_device("conv2d", x, weight);
  TPP_CHECK(x.dim() == 4, "conv2d: expected input to be 4-d [N, C, H, W] but got shape {}", shape_str(x.sizes()));
  TPP_CHECK(weight.dim() == 4, "conv2d: expected weight to be 4-d [out, in / groups, kh, kw] but got shape {}",
            shape_str(weight.sizes()));
  check_options(o);
  const Shape& xs = x.sizes();
  const Shape& ws = weight.sizes();
  TPP_CHECK(xs[1] % o.groups == 0, "conv2d: groups {} does not divide the {} input channels of input {}", o.groups,
            xs[1], shape_str(xs));
  TPP_CHECK(ws[0] % o.groups == 0, "conv2d: groups {} does not divide the {} output channels of weight {}", o.groups,
            ws[0], shape_str(ws));
  TPP_CHECK(xs[1] == ws[1] * o.groups, "conv2d: input has {} channels but weight {} expects {} (groups {})", xs[1],
            shape_str(ws), ws[1] * o.groups, o.groups);
  if (bias.defined()) {
    check_same_dtype_device("conv2d", x, bias);
    TPP_CHECK(bias.sizes() == Shape{ws[0]}, "conv2d: bias of shape {} does not match weight {} (expected [{}])",
              shape_str(bias.sizes()), shape_str(ws), ws[0]);
  }
  Conv2dGeometry g;
  g.batch = xs[0];
  g.in_channels = xs[1];
  g.in_h = xs[2];
  g.in_w = xs[3];
  g.out_channels = ws[0];
  g.kernel_h = ws[2];
  g.kernel_w = ws[3];
  g.stride_h = o.stride[0];
  g.stride_w = o.stride[1];
  g.pad_h = o.padding[0];
  g.pad_w = o.padding[1];
  g.dilation_h = o.dilation[0];
  g.dilation_w = o.dilation[1];
  g.groups = o.groups;
  // Floor division of a possibly negative span: C++ rounds toward zero.
  const auto out_size = [](int64_t in, int64_t pad, int64_t dil, int64_t k, int64_t stride) {
    const int64_t span = in + 2 * pad - dil * (k - 1) - 1;
    return span < 0 ? 0 : span / stride + 1;
  };
  g.out_h = out_size(g.in_h, g.pad_h, g.dilation_h, g.kernel_h, g.stride_h);
  g.out_w = out_size(g.in_w, g.pad_w, g.dilation_w, g.kernel_w, g.stride_w);
  TPP_CHECK(g.out_h > 0 && g.out_w > 0 && g.kernel_h > 0 && g.kernel_w > 0,
            "conv2d: input {} is too small for weight {} with padding {}, dilation {} and stride {}: the output "
            "would be {}x{}",
            shape_str(xs), shape_str(ws), pair_str(o.padding), pair_str(o.dilation), pair_str(o.stride), g.out_h,
            g.out_w);
  return g;
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& opts) {
  const Conv2dGeometry g = checked_geometry(x, weight, bias, opts);
  const Tensor xc = x.detach().contiguous(), wc = weight.detach().contiguous();
  Tensor y = empty({g.batch, g.out_channels, g.out_h, g.out_w}, {.dtype = x.dtype(), .device = x.device()});
  TPP_ON_DEVICE(y, conv2d_forward(g, xc, wc, bias.defined() ? bias.detach().contiguous() : Tensor(), y));

  const bool need_x = x.requires_grad(), need_w = weight.requires_grad();
  const bool need_b = bias.defined() && bias.requires_grad();
  // The input is only needed for the filter gradient.
  const Tensor saved_x = need_w ? xc : Tensor();
  record_grad(y, "conv2d", {x, weight, bias}, [g, saved_x, wc, need_x, need_w, need_b](const Tensor& dy) {
    const auto buffer = [&](bool wanted, const Shape& shape) {
      return wanted ? empty(shape, {.dtype = dy.dtype(), .device = dy.device()}) : Tensor();
    };
    const Tensor dx = buffer(need_x, {g.batch, g.in_channels, g.in_h, g.in_w});
    const Tensor dw = buffer(need_w, wc.sizes()), db = buffer(need_b, {g.out_channels});
    TPP_ON_DEVICE(dy, conv2d_backward(g, saved_x, wc, dy.contiguous(), dx, dw, db));
    return Grads{dx, dw, db};
  });
  return y;
}

Tensor conv2d_inference(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& opts,
                        bool relu, const Tensor& residual) {
  const bool wants_grad = x.requires_grad() || weight.requires_grad() || (bias.defined() && bias.requires_grad()) ||
                          (residual.defined() && residual.requires_grad());
  TPP_CHECK(!(grad_enabled() && wants_grad),
            "conv2d_inference: an operand requires a gradient, which this op does not record; use conv2d, or run "
            "under NoGradGuard");
  const Conv2dGeometry g = checked_geometry(x, weight, bias, opts);
  if (residual.defined()) {
    check_same_dtype_device("conv2d_inference", x, residual);
    const Shape y_shape{g.batch, g.out_channels, g.out_h, g.out_w};
    TPP_CHECK(residual.sizes() == y_shape, "conv2d_inference: residual of shape {} does not match the output shape {}",
              shape_str(residual.sizes()), shape_str(y_shape));
  }
  if (!x.device().is_cpu()) {
    Tensor y = conv2d(x, weight, bias, opts);
    if (residual.defined()) y = add(y, residual);
    return relu ? ops::relu(y) : y;
  }
  return cpu::conv2d_inference(g, x, weight.contiguous(), bias.defined() ? bias.contiguous() : Tensor(), residual,
                               relu);
}

}  // namespace tpp::ops
