// CPU cross-entropy kernels: logits and probs contiguous [N, C], target i64 [N]
// already checked to lie in [0, C).
#pragma once

#include "engine/tensor.h"

namespace tpp::ops::cpu {

// Writes softmax(logits) into probs and returns the mean smoothed loss.
double cross_entropy_forward(const Tensor& logits, const Tensor& target, double smoothing, const Tensor& probs);
// dlogits = scale * (probs - ((1 - smoothing) * one_hot(target) + smoothing / C)).
void cross_entropy_backward(const Tensor& probs, const Tensor& target, double smoothing, double scale,
                            const Tensor& dlogits);

// The same with the CUDA kernels' arguments (ops/cuda/loss.h), so that
// ops/loss.cpp dispatches with TPP_ON_DEVICE: the mean loss into the 0-d
// `loss`; the gradient of the mean for the 0-d upstream gradient `dy`.
void cross_entropy_forward(const Tensor& logits, const Tensor& target, double smoothing, const Tensor& probs,
                           const Tensor& loss);
void cross_entropy_backward(const Tensor& probs, const Tensor& target, double smoothing, const Tensor& dy,
                            const Tensor& dlogits);

}  // namespace tpp::ops::cpu
