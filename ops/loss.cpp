// Cross-entropy: checks, the fused softmax + loss forward, and its gradient
// right below.
#include "ops/loss.h"

#include "engine/autograd.h"
#include "ops/checks.h"
#include "ops/cpu/loss.h"
#include "ops/dispatch.h"
#if TPP_WITH_CUDA
#include "ops/cuda/loss.h"
#endif

namespace tpp::ops {

namespace {

constexpr std::string_view kOp = "cross_entropy";

void check_inputs(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& opts) {
  check_floating(kOp, logits);
  check_dim(kOp, "logits", logits, 2);
  TPP_CHECK(target.dtype() == DType::i64 && target.dim() == 1 && target.size(0) == logits.size(0),
            "{}: target must be i64 of shape [{}] to match logits of shape {} but got {} of shape {}", kOp,
            logits.size(0), shape_str(logits.sizes()), dtype_name(target.dtype()), shape_str(target.sizes()));
  TPP_CHECK(logits.device() == target.device(), "{}: device mismatch: logits on {} and target on {}", kOp,
            logits.device().str(), target.device().str());
  TPP_CHECK(opts.label_smoothing >= 0 && opts.label_smoothing <= 1,
            "{}: label_smoothing must be in [0, 1] but got {}", kOp, opts.label_smoothing);
  if (target.device().is_cuda()) return;  // the kernel checks the values on the GPU (ops/cuda/loss.h)
  const int64_t classes = logits.size(1);
  const std::vector<int64_t> t = target.to_vector<int64_t>();
  for (size_t i = 0; i < t.size(); ++i)
    TPP_CHECK(t[i] >= 0 && t[i] < classes, "{}: target {} at position {} is out of range for {} classes", kOp, t[i],
              i, classes);
}

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

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& opts) {
  check_inputs(logits, target, opts);
  const Tensor x = logits.detach().contiguous(), t = target.contiguous();
  const Tensor probs = empty_like(x);
  Tensor y = forward_into(x, t, opts.label_smoothing, probs);
  record_grad(y, "cross_entropy", {logits}, [probs, t, smoothing = opts.label_smoothing](const Tensor& dy) {
    Tensor dx = empty_like(probs);
    backward_into(probs, t, smoothing, dy, dx);
    return Grads{dx};
  });
  return y;
}

}  // namespace tpp::ops
