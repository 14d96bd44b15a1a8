// Losses.
#pragma once

#include "engine/tensor.h"

namespace tpp::ops {

struct CrossEntropyOptions {
  double label_smoothing = 0;  // in [0, 1]
};

// Mean over the batch of -log softmax(logits)[target], for logits [N, C] and
// i64 target [N] with values in [0, C). With label smoothing e, as PyTorch:
// (1 - e) * nll + e * mean over classes of -log softmax. Returns a 0-d tensor;
// the gradient is (softmax - smoothed one-hot) / N.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& opts = {});

}  // namespace tpp::ops
