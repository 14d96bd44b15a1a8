// Pooling: checks, PyTorch's output-size rules, and each gradient right below
// its forward.
#include "ops/pool.h"

#include "engine/autograd.h"
#include "ops/checks.h"
#include "ops/cpu/pool.h"
#include "ops/dispatch.h"
#include "ops/layout.h"
#if TPP_WITH_CUDA
#include "ops/cuda/pool.h"
#endif
#include "ops/reduce.h"

namespace tpp::ops {

namespace {

std::string pair_str(const std::array<int64_t, 2>& p) { return fmt::format("[{}, {}]", p[0], p[1]); }

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// PyTorch's rule: floor or ceil of (in + 2 pad - kernel) / stride, plus one
// (rounded down when the span is negative: a kernel larger than the padded
// input fits only in ceil mode); in ceil mode the last window must still
// start inside the input or the left padding, else it is dropped.
int64_t pooled_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, bool ceil_mode) {
  const int64_t span = in + 2 * pad - kernel;  // kernel: its extent, dilation included
  int64_t out = floor_div(span + (ceil_mode ? stride - 1 : 0), stride) + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

PoolGeometry geometry(std::string_view op, const Tensor& x, const Pool2dOptions& opts) {
  check_floating(op, x);
  check_dim(op, "x", x, 4);
  const std::array<int64_t, 2> k = opts.kernel, p = opts.padding, dil = opts.dilation;
  const std::array<int64_t, 2> s{opts.stride[0] == 0 ? k[0] : opts.stride[0],
                                 opts.stride[1] == 0 ? k[1] : opts.stride[1]};
  TPP_CHECK(k[0] > 0 && k[1] > 0 && s[0] > 0 && s[1] > 0,
            "{}: kernel {} and stride {} must be positive (x has shape {})", op, pair_str(k), pair_str(opts.stride),
            shape_str(x.sizes()));
  TPP_CHECK(dil[0] > 0 && dil[1] > 0, "{}: dilation {} must be positive (x has shape {})", op, pair_str(dil),
            shape_str(x.sizes()));
  // The extent of a window, its dilation included.
  const std::array<int64_t, 2> extent{dil[0] * (k[0] - 1) + 1, dil[1] * (k[1] - 1) + 1};
  TPP_CHECK(p[0] >= 0 && p[1] >= 0 && 2 * p[0] <= k[0] && 2 * p[1] <= k[1],
            "{}: padding {} must be between 0 and half the kernel {} (x has shape {})", op, pair_str(p), pair_str(k),
            shape_str(x.sizes()));
  const int64_t h = x.size(2), w = x.size(3);
  // A padded empty plane would pass the size check below but leave windows
  // with no input value (max: nothing to pick; avg without padding: 0 / 0).
  TPP_CHECK(h > 0 && w > 0, "{}: x of shape {} has no pixels to pool", op, shape_str(x.sizes()));
  const int64_t out_h = pooled_size(h, extent[0], s[0], p[0], opts.ceil_mode);
  const int64_t out_w = pooled_size(w, extent[1], s[1], p[1], opts.ceil_mode);
  TPP_CHECK(out_h > 0 && out_w > 0, "{}: kernel {}{} is larger than the padded input of x with shape {} and padding {}",
            op, pair_str(k), dil == std::array<int64_t, 2>{1, 1} ? "" : fmt::format(" (dilation {})", pair_str(dil)),
            shape_str(x.sizes()), pair_str(p));
  return {.planes = x.size(0) * x.size(1),
          .in_h = h,
          .in_w = w,
          .out_h = out_h,
          .out_w = out_w,
          .kernel_h = k[0],
          .kernel_w = k[1],
          .stride_h = s[0],
          .stride_w = s[1],
          .pad_h = p[0],
          .pad_w = p[1],
          .count_include_pad = opts.count_include_pad,
          .dilation_h = dil[0],
          .dilation_w = dil[1]};
}

Shape output_shape(const Tensor& x, const PoolGeometry& g) { return {x.size(0), x.size(1), g.out_h, g.out_w}; }

}  // namespace

Tensor max_pool2d(const Tensor& x, const Pool2dOptions& opts) {
  const PoolGeometry g = geometry("max_pool2d", x, opts);
  // Inference on channels-last activations (conv2d_inference's): the values
  // alone, in the same layout, for the next convolution to read as they are.
  if (x.device().is_cpu() && is_channels_last(x) && !(grad_enabled() && x.requires_grad())) {
    const Tensor y = empty_channels_last(output_shape(x, g), {.dtype = x.dtype(), .device = x.device()});
    cpu::max_pool2d_values_channels_last(x, g, y);
    return y;
  }
  Tensor y = empty(output_shape(x, g), {.dtype = x.dtype(), .device = x.device()});
  const Tensor argmax = empty(y.sizes(), {.dtype = DType::i64, .device = x.device()});
  const Tensor xc = x.detach().contiguous();
  TPP_ON_DEVICE(xc, max_pool2d_forward(xc, g, y, argmax));
  record_grad(y, "max_pool2d", {x}, [argmax, g, x_sizes = x.sizes()](const Tensor& dy) {
    Tensor dx = empty(x_sizes, {.dtype = dy.dtype(), .device = dy.device()});
    const Tensor dyc = dy.contiguous();
    TPP_ON_DEVICE(dyc, max_pool2d_backward(dyc, argmax, g, dx));
    return Grads{dx};
  });
  return y;
}

Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& opts) {
  TPP_CHECK(opts.dilation == (std::array<int64_t, 2>{1, 1}),
            "avg_pool2d: dilation {} is not supported (PyTorch's avg_pool2d has none)", pair_str(opts.dilation));
  const PoolGeometry g = geometry("avg_pool2d", x, opts);
  Tensor y = empty(output_shape(x, g), {.dtype = x.dtype(), .device = x.device()});
  const Tensor xc = x.detach().contiguous();
  TPP_ON_DEVICE(xc, avg_pool2d_forward(xc, g, y));
  record_grad(y, "avg_pool2d", {x}, [g, x_sizes = x.sizes()](const Tensor& dy) {
    Tensor dx = empty(x_sizes, {.dtype = dy.dtype(), .device = dy.device()});
    const Tensor dyc = dy.contiguous();
    TPP_ON_DEVICE(dyc, avg_pool2d_backward(dyc, g, dx));
    return Grads{dx};
  });
  return y;
}

Tensor adaptive_avg_pool2d(const Tensor& x, std::array<int64_t, 2> output_size) {
  constexpr std::string_view op = "adaptive_avg_pool2d";
  check_floating(op, x);
  check_dim(op, "x", x, 4);
  TPP_CHECK(output_size[0] > 0 && output_size[1] > 0, "{}: output size {} must be positive (x has shape {})", op,
            pair_str(output_size), shape_str(x.sizes()));
  TPP_CHECK(x.size(2) > 0 && x.size(3) > 0, "{}: x of shape {} has no pixels to pool", op, shape_str(x.sizes()));
  const PoolGeometry g{.planes = x.size(0) * x.size(1), .in_h = x.size(2), .in_w = x.size(3),
                       .out_h = output_size[0], .out_w = output_size[1]};
  Tensor y = empty({x.size(0), x.size(1), g.out_h, g.out_w}, {.dtype = x.dtype(), .device = x.device()});
  const Tensor xc = x.detach().contiguous();
  TPP_ON_DEVICE(xc, adaptive_avg_pool2d_forward(xc, g, y));
  record_grad(y, std::string(op), {x}, [g, x_sizes = x.sizes()](const Tensor& dy) {
    Tensor dx = empty(x_sizes, {.dtype = dy.dtype(), .device = dy.device()});
    const Tensor dyc = dy.contiguous();
    TPP_ON_DEVICE(dyc, adaptive_avg_pool2d_backward(dyc, g, dx));
    return Grads{dx};
  });
  return y;
}

Tensor global_avg_pool2d(const Tensor& x) {
  check_floating("global_avg_pool2d", x);
  check_dim("global_avg_pool2d", "x", x, 4);
  return mean(x, {2, 3});
}

}  // namespace tpp::ops
