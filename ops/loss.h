// Losses.
#pragma once

#include "engine/tensor.h"

namespace tpp::ops {

enum class Reduction { mean, sum, none };

struct CrossEntropyOptions {
  double label_smoothing = 0;  // in [0, 1]
  int64_t ignore_index = -100;  // rows whose target is this add nothing (and count nothing)
  Reduction reduction = Reduction::mean;
  Tensor weight{};  // [C] class weights (not differentiated), or undefined for 1 each
};

// -log softmax(logits)[target] per row, as torch.nn.functional.cross_entropy:
// logits [N, C] (or [N, C, d...], classes in dim 1, or [C] for one row) and
// i64 target [N] ([N, d...], or 0-d) with values in [0, C) or ignore_index.
// The row loss is w[t] * nll, and with label smoothing e
// (1 - e) * w[t] * nll + e / C * sum over classes j of -w[j] * log softmax_j.
// reduction mean divides the sum by the sum of w[t] over the rows not
// ignored (NaN when every row is ignored); none returns the row losses in
// the target's shape, 0 where ignored. The gradient flows to logits only.
// A target out of range throws at once on the CPU. On a GPU, 2-d logits
// without weights and with reduction mean or sum take fused kernels that do
// not read the target on the host: there an out-of-range target (one not
// ignore_index) makes the loss NaN and the next call throws (at once under
// TPP_SYNC_DEBUG; see ops/cuda/loss.h). Every other case reads the target on
// the host and works on any device.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& opts = {});

}  // namespace tpp::ops
