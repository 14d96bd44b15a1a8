// Batch normalisation over the channels of an NCHW tensor.
#pragma once

#include <memory>

#include "engine/tensor.h"

namespace tpp::dist {
class Communicator;
}

namespace tpp::ops {

struct BatchNormOptions {
  bool training = true;
  double momentum = 0.1;
  double eps = 1e-5;
};

// y = (x - mean) / sqrt(var + eps) * weight + bias, per channel of x [N, C, H, W].
// Training: mean and the biased var come from the batch (over N, H, W) and,
// when running_mean/running_var are defined, those are updated in place as in
// PyTorch: r = (1 - momentum) * r + momentum * stat, with the UNBIASED batch
// variance for running_var. Eval: the running statistics are used; if they
// are undefined the batch statistics are used, as PyTorch does.
// weight and bias may each be undefined (no affine transform).
Tensor batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                    const Tensor& running_var, const BatchNormOptions& opts = {});

// relu(batch_norm2d(...)), the same values and gradients, with the ReLU inside
// batch norm's passes on the CPU (forward: as each value is written;
// backward: the gradient masked where the output is 0 as batch norm reads
// it), which saves the ReLU's own pass over the activations both ways.
// Other devices run the two ops.
Tensor batch_norm2d_relu(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                         const Tensor& running_var, const BatchNormOptions& opts = {});

// Synchronised batch norm for data-parallel training: in training mode the
// statistics are those of the batches of every rank of `comm` together, as if
// one process normalised their concatenation (eval mode is batch_norm2d).
// Forward gathers each rank's per-channel count, mean and sum of squared
// deviations and combines them in rank order (the same numbers on every
// rank); the running statistics get the global mean and unbiased variance.
// Backward all-reduces the per-channel sums of dy and dy·(x − mean), so dx
// is the gradient of the SUM of the ranks' losses; weight and bias get this
// rank's share, which the gradient average over ranks completes. Every rank
// must call it (and its backward) in the same order; `comm` is kept alive by
// the graph. On a GPU the kernels run there and only the [3, C] moments and
// [2, C] sums travel to the communicator's device; the gathered moments are
// combined on the host (one wait per forward).
Tensor sync_batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                         const Tensor& running_var, const std::shared_ptr<dist::Communicator>& comm,
                         const BatchNormOptions& opts = {});

}  // namespace tpp::ops
