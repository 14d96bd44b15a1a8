// Batch normalisation over the channels of an NCHW tensor.
#pragma once

#include "engine/tensor.h"

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

}  // namespace tpp::ops
