// Losses.
#pragma once

#include "engine/tensor.h"

namespace tpp::ops {

struct CrossEntropyOptions {
  double label_smoothing = 0;  // in [0, 1]
};

// Mean over the batch of -log softmax(logits)[target], for logits [N, C] and
// i64 target [N] with values in [0, C). With label smoothing e, as PyTorch:
// (1 - e) * nll + e * mean over classes of -log softmax. Returns a 0-d tensor
// (on the GPU for GPU logits); the gradient is (softmax - smoothed one-hot) / N.
// On the CPU a target out of range throws at once; on a GPU, where checking
// would stall the stream, its loss is NaN and the next call throws (at once
// under TPP_SYNC_DEBUG): see ops/cuda/loss.h.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& opts = {});

}  // namespace tpp::ops
