// Batch norm: checks, statistics choice, running-stat update, and the
// gradient right below the forward. The per-channel statistics are f64 [C]
// tensors on x's device (SavedStats), so that a training step on a GPU never
// waits for the host; the kernels of both devices take the same arguments.
#include "ops/batch_norm.h"

#include <algorithm>
#include <cmath>

#include "engine/autograd.h"
#include "engine/distributed.h"
#include "ops/checks.h"
#include "ops/cpu/batch_norm.h"
#include "ops/dispatch.h"
#include "ops/elementwise.h"
#if TPP_WITH_CUDA
#include "ops/cuda/batch_norm.h"
#endif

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

// The statistics a forward normalised with, kept for its backward: mean
// and invstd, f64 [C] tensors on x's device.
struct SavedStats {
  Tensor mean, invstd;
};

Tensor f64_on_device_of(const Tensor& x, const Shape& shape) {
  return empty(shape, {.dtype = DType::f64, .device = x.device()});
}

// Statistics computed elsewhere (sync batch norm), kept where x's kernels read them.
SavedStats saved_stats(const cpu::ChannelStats& host, const Tensor& x) {
  const int64_t channels = static_cast<int64_t>(host.mean.size());
  return {from_vector<double>(host.mean, {channels}).to(x.device()),
          from_vector<double>(host.invstd, {channels}).to(x.device())};
}

// Normalises x into y with its batch statistics and, when running_mean and
// running_var are defined, updates them (PyTorch's rule). `relu` (CPU only):
// max(y, 0) fused in.
SavedStats normalize_with_batch_stats(const Tensor& xc, const BatchNormShape& shape, const Tensor& w, const Tensor& b,
                                      const BatchNormOptions& opts, const Tensor& y, const Tensor& running_mean,
                                      const Tensor& running_var, bool relu) {
  const SavedStats stats{f64_on_device_of(xc, {shape.c}), f64_on_device_of(xc, {shape.c})};
  if (relu) {
    cpu::batch_norm_forward_train(xc, shape, w, b, opts.eps, opts.momentum, y, stats.mean, stats.invstd, running_mean,
                                  running_var, true);
  } else {
    TPP_ON_DEVICE(xc, batch_norm_forward_train(xc, shape, w, b, opts.eps, opts.momentum, y, stats.mean, stats.invstd,
                                               running_mean, running_var));
  }
  return stats;
}

SavedStats stats_from_running(const Tensor& running_mean, const Tensor& running_var, double eps) {
  const SavedStats stats{f64_on_device_of(running_mean, running_mean.sizes()),
                         f64_on_device_of(running_mean, running_mean.sizes())};
  // Only training requires them contiguous (updated in place); the kernels read raw pointers.
  TPP_ON_DEVICE(running_mean, batch_norm_stats_from_running(running_mean.contiguous(), running_var.contiguous(), eps,
                                                            stats.mean, stats.invstd));
  return stats;
}

void normalize_with(const Tensor& xc, const BatchNormShape& shape, const Tensor& w, const Tensor& b,
                    const SavedStats& stats, const Tensor& y, bool relu) {
  if (relu) return cpu::batch_norm_forward_eval(xc, shape, w, b, stats.mean, stats.invstd, y, true);
  TPP_ON_DEVICE(xc, batch_norm_forward_eval(xc, shape, w, b, stats.mean, stats.invstd, y));
}

// relu_y: the fused ReLU's output (CPU only), undefined without one.
void backward_into(const Tensor& xc, const Tensor& dy, const BatchNormShape& shape, const Tensor& w,
                   const SavedStats& stats, bool batch_stats, const Tensor& dx, const Tensor& dw, const Tensor& db,
                   const Tensor& relu_y) {
  if (relu_y.defined())
    return cpu::batch_norm_backward(xc, dy, shape, w, stats.mean, stats.invstd, batch_stats, dx, dw, db, relu_y);
  TPP_ON_DEVICE(xc, batch_norm_backward(xc, dy, shape, w, stats.mean, stats.invstd, batch_stats, dx, dw, db));
}

// batch_norm2d, followed by max(·, 0) inside its kernels when `relu`.
Tensor batch_norm2d_then(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                         const Tensor& running_var, const BatchNormOptions& opts, bool relu) {
  check_inputs(x, weight, bias, running_mean, running_var, opts);
  const Tensor xc = x.detach().contiguous();
  const BatchNormShape shape{x.size(0), x.size(1), x.size(2) * x.size(3)};
  const bool batch_stats = opts.training || !running_mean.defined();
  const Tensor w = weight.defined() ? weight.detach().contiguous() : Tensor();
  const Tensor b = bias.defined() ? bias.detach().contiguous() : Tensor();
  Tensor y = empty_like(xc);

  SavedStats stats;
  if (batch_stats) {
    TPP_CHECK(shape.per_channel() > 1, "{}: expected more than 1 value per channel when training but got x of shape {}",
              kOp, shape_str(x.sizes()));
    stats = normalize_with_batch_stats(xc, shape, w, b, opts, y, opts.training ? running_mean : Tensor(),
                                       opts.training ? running_var : Tensor(), relu);
  } else {
    stats = stats_from_running(running_mean, running_var, opts.eps);
    normalize_with(xc, shape, w, b, stats, y, relu);
  }

  const bool need_x = x.requires_grad(), need_w = weight.defined() && weight.requires_grad(),
             need_b = bias.defined() && bias.requires_grad();
  record_grad(y, relu ? "batch_norm2d_relu" : "batch_norm2d", {x, weight, bias},
              [xc, w, shape, stats = std::move(stats), batch_stats, need_x, need_w, need_b,
               relu_y = relu ? y.detach() : Tensor()](const Tensor& dy) {
                const auto per_channel = [&](bool needed) {
                  return needed ? empty({shape.c}, {.dtype = xc.dtype(), .device = xc.device()}) : Tensor();
                };
                Tensor dx = need_x ? empty_like(xc) : Tensor();
                Tensor dw = per_channel(need_w), db = per_channel(need_b);
                backward_into(xc, dy.contiguous(), shape, w, stats, batch_stats, dx, dw, db, relu_y);
                return Grads{dx, dw, db};
              });
  return y;
}

}  // namespace

Tensor batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                    const Tensor& running_var, const BatchNormOptions& opts) {
  return batch_norm2d_then(x, weight, bias, running_mean, running_var, opts, false);
}

Tensor batch_norm2d_relu(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                         const Tensor& running_var, const BatchNormOptions& opts) {
  if (!x.device().is_cpu()) return relu(batch_norm2d(x, weight, bias, running_mean, running_var, opts));
  return batch_norm2d_then(x, weight, bias, running_mean, running_var, opts, true);
}

namespace {

// Combines the ranks' (count, mean, squared deviations) per channel, in rank
// order (Chan et al.'s pairwise update): `gathered` is f64 [W, 3, C].
struct GlobalMoments {
  double count = 0;
  std::vector<double> mean, squared_deviations;
};

GlobalMoments combine_moments(const Tensor& gathered, int64_t channels) {
  const double* g = gathered.data<double>();
  GlobalMoments out{0, std::vector<double>(channels, 0.0), std::vector<double>(channels, 0.0)};
  for (int64_t r = 0; r < gathered.size(0); ++r) {
    const double* row = g + r * 3 * channels;
    const double n_b = row[0];
    if (n_b == 0) continue;
    const double n_a = out.count, n = n_a + n_b;
    for (int64_t c = 0; c < channels; ++c) {
      const double delta = row[channels + c] - out.mean[c];
      out.mean[c] += delta * n_b / n;
      out.squared_deviations[c] += row[2 * channels + c] + delta * delta * n_a * n_b / n;
    }
    out.count = n;
  }
  return out;
}

// This rank's [3, C] f64, on x's device: count, mean, sum of squared
// deviations per channel.
Tensor local_moments(const Tensor& xc, const BatchNormShape& shape) {
  const Tensor local = f64_on_device_of(xc, {3, shape.c});
  TPP_ON_DEVICE(xc, batch_norm_local_moments(xc, shape, local));
  return local;
}

// r = (1 - momentum) * r + momentum * value, on the running statistic's device.
void blend_running_stat(const Tensor& running, const std::vector<double>& value, double momentum) {
  const Tensor on_device = from_vector<double>(value, {static_cast<int64_t>(value.size())}).to(running.device());
  TPP_ON_DEVICE(running, update_running_stat(running, on_device, momentum));
}

// dx from the per-channel sums of every rank (one all-reduce), and this
// rank's dweight and dbias.
Grads sync_backward(const Tensor& xc, const Tensor& dy, const BatchNormShape& shape, const Tensor& w,
                    const SavedStats& stats, dist::Communicator& comm, double count, bool need_x, bool need_w,
                    bool need_b) {
  const auto per_channel = [&](bool needed) {
    return needed ? empty({shape.c}, {.dtype = xc.dtype(), .device = xc.device()}) : Tensor();
  };
  const Tensor dw = per_channel(need_w), db = per_channel(need_b);
  const Tensor sums = f64_on_device_of(xc, {2, shape.c});
  TPP_ON_DEVICE(xc, batch_norm_backward_sums(xc, dy, shape, stats.mean, stats.invstd, sums, dw, db));
  Tensor dx;
  if (need_x) {  // the same on every rank (one model): all ranks join the all-reduce or none
    const Tensor all = sums.to(comm.device());
    comm.all_reduce(all, dist::ReduceOp::sum);
    dx = empty_like(xc);
    const Tensor all_here = all.to(xc.device());
    TPP_ON_DEVICE(xc, batch_norm_backward_input(xc, dy, shape, w, stats.mean, stats.invstd, all_here, count, dx));
  }
  return {dx, dw, db};
}

}  // namespace

Tensor sync_batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                         const Tensor& running_var, const std::shared_ptr<dist::Communicator>& comm,
                         const BatchNormOptions& opts) {
  TPP_CHECK(comm != nullptr, "sync_batch_norm2d: no communicator (x has shape {})", shape_str(x.sizes()));
  if (!opts.training) return batch_norm2d(x, weight, bias, running_mean, running_var, opts);
  check_inputs(x, weight, bias, running_mean, running_var, opts);
  const Tensor xc = x.detach().contiguous();
  const BatchNormShape shape{x.size(0), x.size(1), x.size(2) * x.size(3)};
  const Tensor w = weight.defined() ? weight.detach().contiguous() : Tensor();
  const Tensor b = bias.defined() ? bias.detach().contiguous() : Tensor();

  // The moments go to the communicator's device and the gathered [W, 3, C] to
  // the host, where they are combined in rank order.
  const Tensor gathered = comm->all_gather(local_moments(xc, shape).to(comm->device())).to(Device::cpu());
  const GlobalMoments global = combine_moments(gathered, shape.c);
  TPP_CHECK(global.count > 1,
            "sync_batch_norm2d: expected more than 1 value per channel over all {} ranks when training but got x of "
            "shape {}",
            comm->world_size(), shape_str(x.sizes()));
  cpu::ChannelStats host{global.mean, std::vector<double>(shape.c)};
  std::vector<double> unbiased_var(shape.c);
  for (int64_t c = 0; c < shape.c; ++c) {
    host.invstd[c] = 1.0 / std::sqrt(global.squared_deviations[c] / global.count + opts.eps);
    unbiased_var[c] = global.squared_deviations[c] / (global.count - 1);
  }
  SavedStats stats = saved_stats(host, xc);
  Tensor y = empty_like(xc);
  normalize_with(xc, shape, w, b, stats, y, false);
  if (running_mean.defined()) {
    blend_running_stat(running_mean, global.mean, opts.momentum);
    blend_running_stat(running_var, unbiased_var, opts.momentum);
  }

  const bool need_x = x.requires_grad(), need_w = weight.defined() && weight.requires_grad(),
             need_b = bias.defined() && bias.requires_grad();
  record_grad(y, "sync_batch_norm2d", {x, weight, bias},
              [xc, w, shape, stats = std::move(stats), comm, count = global.count, need_x, need_w,
               need_b](const Tensor& dy) {
                return sync_backward(xc, dy.contiguous(), shape, w, stats, *comm, count, need_x, need_w, need_b);
              });
  return y;
}

}  // namespace tpp::ops
