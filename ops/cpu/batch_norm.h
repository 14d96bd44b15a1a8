// CPU batch-norm kernels over contiguous x, y, dy, dx of shape [N, C, HW],
// in parallel over the N·C blocks of each tensor.
#pragma once

#include <vector>

#include "engine/tensor.h"
#include "ops/batch_norm_types.h"

namespace tpp::ops::cpu {

using ops::BatchNormShape;

// Per-channel mean and 1/sqrt(var + eps) used to normalise.
struct ChannelStats {
  std::vector<double> mean, invstd;
};

// A ReLU after batch norm fuses into it: `relu` writes max(y, 0) as each value
// is written; the backward given that output as `relu_y` takes the gradient
// through the ReLU (dy where relu_y > 0) as it reads dy. Undefined / false:
// batch norm alone.

// Batch statistics and the normalised output in one sweep per channel.
// Fills stats (biased variance inside invstd) and the unbiased variance.
void batch_norm_forward_train(const Tensor& x, const BatchNormShape& s, const Tensor& weight, const Tensor& bias,
                              double eps, const Tensor& y, ChannelStats& stats, std::vector<double>& unbiased_var,
                              bool relu = false);

// Normalises with given statistics (eval mode).
void batch_norm_forward_eval(const Tensor& x, const BatchNormShape& s, const Tensor& weight, const Tensor& bias,
                             const ChannelStats& stats, const Tensor& y, bool relu = false);

// dx (if defined), dweight (if defined) and dbias (if defined) from dy.
// With batch_stats the statistics' dependence on x is included in dx.
void batch_norm_backward(const Tensor& x, const Tensor& dy, const BatchNormShape& s, const Tensor& weight,
                         const ChannelStats& stats, bool batch_stats, const Tensor& dx, const Tensor& dweight,
                         const Tensor& dbias, const Tensor& relu_y = {});

// Pieces of synchronised batch norm, whose statistics span the batches of
// several processes (ops::sync_batch_norm2d combines them in between).
//
// This process's per-channel mean and sum of squared deviations from it
// (both 0 for a channel without values).
void batch_norm_local_moments(const Tensor& x, const BatchNormShape& s, std::vector<double>& mean,
                              std::vector<double>& squared_deviations);
// Per channel: sum dy and sum dy * (x - stats.mean) over this process's values.
void batch_norm_backward_sums(const Tensor& x, const Tensor& dy, const BatchNormShape& s, const ChannelStats& stats,
                              std::vector<double>& sum_dy, std::vector<double>& sum_dy_centred);
// dx of batch statistics over `count` values in all, given the sums of
// batch_norm_backward_sums() over all of them:
//   dx = w * invstd * (dy - [sum dy + xhat * sum dy * xhat] / count).
void batch_norm_backward_input(const Tensor& x, const Tensor& dy, const BatchNormShape& s, const Tensor& weight,
                               const ChannelStats& stats, const std::vector<double>& sum_dy,
                               const std::vector<double>& sum_dy_centred, double count, const Tensor& dx);

// r = (1 - momentum) * r + momentum * value, in place on contiguous [C] tensors.
void update_running_stat(const Tensor& running, const std::vector<double>& value, double momentum);

// ---- The same with the CUDA kernels' arguments (ops/cuda/batch_norm.h) ----
// The statistics are f64 [C] tensors (mean, invstd); `moments` is f64
// [3, C] (count, mean, squared deviations); `sums` is f64 [2, C] (sum dy,
// sum dy * (x - mean)). So ops/batch_norm.cpp dispatches with TPP_ON_DEVICE.

void batch_norm_forward_train(const Tensor& x, const BatchNormShape& s, const Tensor& weight, const Tensor& bias,
                              double eps, double momentum, const Tensor& y, const Tensor& mean, const Tensor& invstd,
                              const Tensor& running_mean, const Tensor& running_var, bool relu = false);
void batch_norm_stats_from_running(const Tensor& running_mean, const Tensor& running_var, double eps,
                                   const Tensor& mean, const Tensor& invstd);
void batch_norm_forward_eval(const Tensor& x, const BatchNormShape& s, const Tensor& weight, const Tensor& bias,
                             const Tensor& mean, const Tensor& invstd, const Tensor& y, bool relu = false);
void batch_norm_backward(const Tensor& x, const Tensor& dy, const BatchNormShape& s, const Tensor& weight,
                         const Tensor& mean, const Tensor& invstd, bool batch_stats, const Tensor& dx,
                         const Tensor& dweight, const Tensor& dbias, const Tensor& relu_y = {});
void batch_norm_local_moments(const Tensor& x, const BatchNormShape& s, const Tensor& moments);
// dweight and dbias (when defined): this process's sums of dy * xhat and dy.
void batch_norm_backward_sums(const Tensor& x, const Tensor& dy, const BatchNormShape& s, const Tensor& mean,
                              const Tensor& invstd, const Tensor& sums, const Tensor& dweight, const Tensor& dbias);
void batch_norm_backward_input(const Tensor& x, const Tensor& dy, const BatchNormShape& s, const Tensor& weight,
                               const Tensor& mean, const Tensor& invstd, const Tensor& sums, double count,
                               const Tensor& dx);
void update_running_stat(const Tensor& running, const Tensor& value, double momentum);

}  // namespace tpp::ops::cpu
