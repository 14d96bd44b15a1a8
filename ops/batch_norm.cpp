// Batch norm: checks, statistics choice, running-stat update, and the
// gradient right below the forward.
#include "ops/batch_norm.h"

#include <cmath>

#include "engine/autograd.h"
#include "ops/checks.h"
#include "ops/cpu/batch_norm.h"

namespace tpp::ops {

namespace {

constexpr std::string_view kOp = "batch_norm2d";

// A per-channel tensor (weight, bias, running stat): undefined or [C].
void check_channel_param(std::string_view what, const Tensor& p, const Tensor& x) {
  if (!p.defined()) return;
  TPP_CHECK(p.dim() == 1 && p.size(0) == x.size(1),
            "{}: {} of shape {} does not match the {} channels of x with shape {}", kOp, what, shape_str(p.sizes()),
            x.size(1), shape_str(x.sizes()));
  check_same_dtype_device(kOp, x, p);
}

void check_inputs(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, const BatchNormOptions& opts) {
  check_floating(kOp, x);
  check_dim(kOp, "x", x, 4);
  check_channel_param("weight", weight, x);
  check_channel_param("bias", bias, x);
  check_channel_param("running_mean", running_mean, x);
  check_channel_param("running_var", running_var, x);
  TPP_CHECK(running_mean.defined() == running_var.defined(),
            "{}: running_mean and running_var must both be given or both be undefined (x has shape {})", kOp,
            shape_str(x.sizes()));
  if (opts.training && running_mean.defined())
    TPP_CHECK(running_mean.is_contiguous() && running_var.is_contiguous(),
              "{}: running statistics must be contiguous to be updated in place (x has shape {})", kOp,
              shape_str(x.sizes()));
}

cpu::ChannelStats stats_from_running(const Tensor& running_mean, const Tensor& running_var, double eps) {
  cpu::ChannelStats stats{running_mean.to_vector<double>(), running_var.to_vector<double>()};
  for (double& v : stats.invstd) v = 1.0 / std::sqrt(v + eps);
  return stats;
}

}  // namespace

Tensor batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                    const Tensor& running_var, const BatchNormOptions& opts) {
  check_inputs(x, weight, bias, running_mean, running_var, opts);
  const Tensor xc = x.detach().contiguous();
  const cpu::BatchNormShape shape{x.size(0), x.size(1), x.size(2) * x.size(3)};
  const bool batch_stats = opts.training || !running_mean.defined();
  const Tensor w = weight.defined() ? weight.detach().contiguous() : Tensor();
  const Tensor b = bias.defined() ? bias.detach().contiguous() : Tensor();
  Tensor y = empty_like(xc);

  cpu::ChannelStats stats;
  if (batch_stats) {
    TPP_CHECK(shape.per_channel() > 1, "{}: expected more than 1 value per channel when training but got x of shape {}",
              kOp, shape_str(x.sizes()));
    std::vector<double> unbiased_var;
    cpu::batch_norm_forward_train(xc, shape, w, b, opts.eps, y, stats, unbiased_var);
    if (opts.training && running_mean.defined()) {
      cpu::update_running_stat(running_mean, stats.mean, opts.momentum);
      cpu::update_running_stat(running_var, unbiased_var, opts.momentum);
    }
  } else {
    stats = stats_from_running(running_mean, running_var, opts.eps);
    cpu::batch_norm_forward_eval(xc, shape, w, b, stats, y);
  }

  const bool need_x = x.requires_grad(), need_w = weight.defined() && weight.requires_grad(),
             need_b = bias.defined() && bias.requires_grad();
  record_grad(y, "batch_norm2d", {x, weight, bias},
              [xc, w, shape, stats = std::move(stats), batch_stats, need_x, need_w, need_b](const Tensor& dy) {
                const auto per_channel = [&](bool needed) {
                  return needed ? empty({shape.c}, {.dtype = xc.dtype(), .device = xc.device()}) : Tensor();
                };
                Tensor dx = need_x ? empty_like(xc) : Tensor();
                Tensor dw = per_channel(need_w), db = per_channel(need_b);
                cpu::batch_norm_backward(xc, dy.contiguous(), shape, w, stats, batch_stats, dx, dw, db);
                return Grads{dx, dw, db};
              });
  return y;
}

}  // namespace tpp::ops
