// Cross-entropy: checks, the fused softmax + loss kernel for the common case
// (2-d logits, mean, no weights, nothing ignored) with its gradient right
// below, and PyTorch's options (ignore_index, reduction, class weights, N-d
// logits) composed from differentiable ops.
#include "ops/loss.h"

#include <algorithm>

#include "engine/autograd.h"
#include "ops/checks.h"
#include "ops/cpu/loss.h"
#include "ops/dispatch.h"
#include "ops/elementwise.h"
#include "ops/pad.h"
#include "ops/reduce.h"
#include "ops/softmax.h"
#if TPP_WITH_CUDA
#include "ops/cuda/loss.h"
#endif

namespace tpp::ops {

namespace {

constexpr std::string_view kOp = "cross_entropy";

// The target's shape for these logits: logits without the class dim.
Shape target_shape_for(const Tensor& logits) {
  Shape s = logits.sizes();
  s.erase(s.begin() + (logits.dim() == 1 ? 0 : 1));
  return s;
}

void check_inputs(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& opts) {
  check_floating(kOp, logits);
  TPP_CHECK(logits.dim() >= 1, "{}: expected logits [C], [N, C] or [N, C, d...] but got shape {}", kOp,
            shape_str(logits.sizes()));
  const Shape expected = target_shape_for(logits);
  TPP_CHECK(target.dtype() == DType::i64 && target.sizes() == expected,
            "{}: target must be i64 of shape {} to match logits of shape {} but got {} of shape {}", kOp,
            shape_str(expected), shape_str(logits.sizes()), dtype_name(target.dtype()), shape_str(target.sizes()));
  TPP_CHECK(logits.device() == target.device(), "{}: device mismatch: logits on {} and target on {}", kOp,
            logits.device().str(), target.device().str());
  TPP_CHECK(opts.label_smoothing >= 0 && opts.label_smoothing <= 1,
            "{}: label_smoothing must be in [0, 1] but got {}", kOp, opts.label_smoothing);
  if (!opts.weight.defined()) return;
  check_same_dtype_device(kOp, logits, opts.weight);
  const int64_t classes = logits.size(logits.dim() == 1 ? 0 : 1);
  TPP_CHECK(opts.weight.sizes() == Shape{classes}, "{}: weight of shape {} does not match the {} classes of logits {}",
            kOp, shape_str(opts.weight.sizes()), classes, shape_str(logits.sizes()));
}

// Every target in [0, classes) or equal to ignore_index.
void check_target_values(const std::vector<int64_t>& t, int64_t classes, int64_t ignore_index) {
  for (size_t i = 0; i < t.size(); ++i)
    TPP_CHECK(t[i] == ignore_index || (t[i] >= 0 && t[i] < classes),
              "{}: target {} at position {} is out of range for {} classes", kOp, t[i], i, classes);
}

// ---- the fused kernel: 2-d logits, mean, no weights, no row ignored ----

// softmax(x) into probs; returns the mean loss as a 0-d tensor on x's device.
Tensor forward_into(const Tensor& x, const Tensor& target, double smoothing, const Tensor& probs) {
  Tensor loss = empty({}, {.dtype = x.dtype(), .device = x.device()});
  TPP_ON_DEVICE(x, cross_entropy_forward(x, target, smoothing, probs, loss));
  return loss;
}

// dx from the 0-d upstream gradient dy, which stays on the GPU there.
void backward_into(const Tensor& probs, const Tensor& target, double smoothing, const Tensor& dy, const Tensor& dx) {
  TPP_ON_DEVICE(probs, cross_entropy_backward(probs, target, smoothing, dy.contiguous(), dx));
}

Tensor fused_cross_entropy(const Tensor& logits, const Tensor& target, double smoothing) {
  const Tensor x = logits.detach().contiguous(), t = target.contiguous();
  const Tensor probs = empty_like(x);
  Tensor y = forward_into(x, t, smoothing, probs);
  record_grad(y, "cross_entropy", {logits}, [probs, t, smoothing](const Tensor& dy) {
    Tensor dx = empty_like(probs);
    backward_into(probs, t, smoothing, dy, dx);
    return Grads{dx};
  });
  return y;
}

// ---- every other case, composed from differentiable ops ----

// The logits as [rows, C], classes last (a differentiable view or copy).
Tensor logits_as_rows(const Tensor& logits) {
  if (logits.dim() == 1) return logits.unsqueeze(0);
  if (logits.dim() == 2) return logits;
  Shape order{0};
  for (int64_t d = 2; d < logits.dim(); ++d) order.push_back(d);
  order.push_back(1);
  const int64_t classes = logits.size(1);
  return logits.permute(order).reshape({numel_of(target_shape_for(logits)), classes});
}

Tensor host_values(const std::vector<double>& values, const Tensor& like) {
  return from_vector<double>(values, {static_cast<int64_t>(values.size())}).to(like.dtype()).to(like.device());
}

Tensor index_tensor(const std::vector<int64_t>& values) {
  return from_vector<int64_t>(values, {static_cast<int64_t>(values.size())});
}

Tensor composed_cross_entropy(const Tensor& logits, const std::vector<int64_t>& t, const CrossEntropyOptions& opts) {
  const Tensor rows = logits_as_rows(logits);
  const int64_t classes = rows.size(1);
  std::vector<double> w(static_cast<size_t>(classes), 1.0);
  if (opts.weight.defined()) w = opts.weight.to(Device::cpu()).to(DType::f64).contiguous().to_vector<double>();

  // Only the rows not ignored add to the loss: an ignored row adds exactly 0,
  // even where its logits are not finite. As in PyTorch, log_softmax runs over
  // every row, so such a row's gradient is NaN (0 upstream times NaN).
  std::vector<int64_t> kept, picked, position(t.size());
  std::vector<double> kept_weight;
  double weight_sum = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    position[i] = static_cast<int64_t>(kept.size());
    if (t[i] == opts.ignore_index) continue;
    picked.push_back(static_cast<int64_t>(kept.size()) * classes + t[i]);
    kept.push_back(static_cast<int64_t>(i));
    kept_weight.push_back(w[static_cast<size_t>(t[i])]);
    weight_sum += kept_weight.back();
  }
  const int64_t n_kept = static_cast<int64_t>(kept.size());
  const Tensor logp = log_softmax(rows, 1).index_select(0, index_tensor(kept));  // [kept, C]
  Tensor loss = neg(logp.reshape({n_kept * classes}).index_select(0, index_tensor(picked)));
  if (opts.weight.defined()) loss = mul(loss, host_values(kept_weight, logits));
  if (opts.label_smoothing > 0) {
    const Tensor weighted = opts.weight.defined() ? mul(logp, opts.weight.detach()) : logp;
    const Tensor smooth = neg(sum(weighted, {1}));
    loss = add(mul(loss, 1 - opts.label_smoothing), mul(smooth, opts.label_smoothing / static_cast<double>(classes)));
  }
  switch (opts.reduction) {
    case Reduction::sum: return sum(loss);
    case Reduction::mean: return mul(sum(loss), 1.0 / weight_sum);  // 0 * inf = NaN when nothing counts, as PyTorch
    case Reduction::none: break;
  }
  // Row i takes its kept loss, or the 0 appended after them when ignored.
  for (size_t i = 0; i < t.size(); ++i)
    if (t[i] == opts.ignore_index) position[i] = n_kept;
  return constant_pad(loss, {0, 1}).index_select(0, index_tensor(position)).reshape(target_shape_for(logits));
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& opts) {
  check_inputs(logits, target, opts);
  const bool plain = logits.dim() == 2 && !opts.weight.defined() && opts.reduction == Reduction::mean;
  // The GPU's fused kernel checks the targets on the device, without a wait.
  if (plain && logits.device().is_cuda() && opts.ignore_index == -100)
    return fused_cross_entropy(logits, target, opts.label_smoothing);
  const std::vector<int64_t> t = target.to(Device::cpu()).contiguous().to_vector<int64_t>();
  const int64_t classes = logits.size(logits.dim() == 1 ? 0 : 1);
  check_target_values(t, classes, opts.ignore_index);
  const bool ignores_none = std::find(t.begin(), t.end(), opts.ignore_index) == t.end();
  if (plain && ignores_none && logits.device().is_cpu()) return fused_cross_entropy(logits, target, opts.label_smoothing);
  return composed_cross_entropy(logits, t, opts);
}

}  // namespace tpp::ops
