// CPU softmax kernels over contiguous tensors viewed as [outer, dim, inner],
// the softmax running along the middle extent.
#pragma once

#include "engine/tensor.h"
#include "ops/softmax_types.h"

namespace tpp::ops::cpu {

using ops::SoftmaxLayout;

// y = softmax(x) or log_softmax(x) along the middle extent.
void softmax_forward(const Tensor& x, const SoftmaxLayout& l, bool log, const Tensor& y);
// softmax:     dx = y * (dy - sum(dy * y))
// log_softmax: dx = dy - exp(y) * sum(dy)
void softmax_backward(const Tensor& y, const Tensor& dy, const SoftmaxLayout& l, bool log, const Tensor& dx);

}  // namespace tpp::ops::cpu
