// CPU cross-entropy kernels: logits and probs contiguous [N, C], target i64 [N]
// already checked to lie in [0, C) or equal ignore_index. The same work and
// arguments as ops/cuda/loss.h, so that ops/loss.cpp dispatches with
// TPP_ON_DEVICE.
#pragma once

#include "engine/tensor.h"
#include "ops/loss_types.h"

namespace tpp::ops::cpu {

// Writes softmax(logits) into probs, the reduced smoothed loss into the 0-d
// `loss` and what it was divided by into the 0-d f64 `divisor` (the rows not
// ignored, or 1 for a sum; 0 / 0 = NaN when a mean counts no row).
void cross_entropy_forward(const Tensor& logits, const Tensor& target, const FusedCrossEntropy& opts,
                           const Tensor& probs, const Tensor& loss, const Tensor& divisor);
// dlogits = dy / divisor * (probs - ((1 - smoothing) * one_hot(target) + smoothing / C)) on the rows not
// ignored, and 0 times probs (0, or NaN where the softmax is) on the rows ignored; dy is 0-d.
void cross_entropy_backward(const Tensor& probs, const Tensor& target, const FusedCrossEntropy& opts,
                            const Tensor& divisor, const Tensor& dy, const Tensor& dlogits);

}  // namespace tpp::ops::cpu
