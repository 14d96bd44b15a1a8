// CUDA batch-norm kernels over contiguous x, y, dy, dx of shape [N, C, HW]
// (CUDA builds only; free of fmt for nvcc). The per-channel statistics stay
// on the GPU as f64 [C] tensors: mean and invstd = 1 / sqrt(var + eps).
// weight and bias may be undefined (1 and 0). Channel reductions run one
// block per channel and add in double in a fixed order (deterministic).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "engine/dtype_core.h"
#include "ops/batch_norm_types.h"

namespace tpp {
class Tensor;
}

namespace tpp::ops::cuda {

// Batch statistics into mean and invstd (biased variance) and the normalised
// y, in one kernel. When running_mean and running_var are defined the same
// kernel updates them in place: r = (1 - momentum) r + momentum stat, with
// the unbiased variance for running_var.
void batch_norm_forward_train(const Tensor& x, const BatchNormShape& s, const Tensor& weight, const Tensor& bias,
                              double eps, double momentum, const Tensor& y, const Tensor& mean, const Tensor& invstd,
                              const Tensor& running_mean, const Tensor& running_var);

// mean and invstd from the running statistics (eval mode).
void batch_norm_stats_from_running(const Tensor& running_mean, const Tensor& running_var, double eps,
                                   const Tensor& mean, const Tensor& invstd);

// Normalises with given statistics.
void batch_norm_forward_eval(const Tensor& x, const BatchNormShape& s, const Tensor& weight, const Tensor& bias,
                             const Tensor& mean, const Tensor& invstd, const Tensor& y);

// dx, dweight and dbias (each when defined) from dy. With batch_stats the
// statistics' dependence on x is included in dx.
void batch_norm_backward(const Tensor& x, const Tensor& dy, const BatchNormShape& s, const Tensor& weight,
                         const Tensor& mean, const Tensor& invstd, bool batch_stats, const Tensor& dx,
                         const Tensor& dweight, const Tensor& dbias);

// Pieces of synchronised batch norm (ops::sync_batch_norm2d brings these
// [k, C] results to the communicator and back).
//
// moments f64 [3, C]: count, mean and sum of squared deviations per channel
// (all 0 for a channel without values).
void batch_norm_local_moments(const Tensor& x, const BatchNormShape& s, const Tensor& moments);
// sums f64 [2, C]: sum dy and sum dy * (x - mean) over this process's values;
// also dweight = sum dy * xhat and dbias = sum dy where defined.
void batch_norm_backward_sums(const Tensor& x, const Tensor& dy, const BatchNormShape& s, const Tensor& mean,
                              const Tensor& invstd, const Tensor& sums, const Tensor& dweight, const Tensor& dbias);
// dx of batch statistics over `count` values in all, from the sums of
// batch_norm_backward_sums() over all of them (f64 [2, C] on this GPU).
void batch_norm_backward_input(const Tensor& x, const Tensor& dy, const BatchNormShape& s, const Tensor& weight,
                               const Tensor& mean, const Tensor& invstd, const Tensor& sums, double count,
                               const Tensor& dx);
// r = (1 - momentum) * r + momentum * value, in place; value f64 [C] on the GPU.
void update_running_stat(const Tensor& running, const Tensor& value, double momentum);

namespace kernels {

// Pointers are device pointers of the dtype given (weight, bias, running
// statistics, dx, dweight, dbias may be null); statistics are double.
void launch_batch_norm_forward_train(const void* x, const void* weight, const void* bias, void* y, double* mean,
                                     double* invstd, void* running_mean, void* running_var, DType dtype,
                                     const BatchNormShape& s, double eps, double momentum, cudaStream_t stream);
void launch_batch_norm_stats_from_running(const void* running_mean, const void* running_var, double* mean,
                                          double* invstd, DType dtype, int64_t channels, double eps,
                                          cudaStream_t stream);
void launch_batch_norm_forward_eval(const void* x, const void* weight, const void* bias, const double* mean,
                                    const double* invstd, void* y, DType dtype, const BatchNormShape& s,
                                    cudaStream_t stream);
void launch_batch_norm_backward(const void* x, const void* dy, const void* weight, const double* mean,
                                const double* invstd, bool batch_stats, void* dx, void* dweight, void* dbias,
                                DType dtype, const BatchNormShape& s, cudaStream_t stream);
void launch_batch_norm_local_moments(const void* x, double* moments, DType dtype, const BatchNormShape& s,
                                     cudaStream_t stream);
void launch_batch_norm_backward_sums(const void* x, const void* dy, const double* mean, const double* invstd,
                                     double* sums, void* dweight, void* dbias, DType dtype, const BatchNormShape& s,
                                     cudaStream_t stream);
void launch_batch_norm_backward_input(const void* x, const void* dy, const void* weight, const double* mean,
                                      const double* invstd, const double* sums, double count, void* dx, DType dtype,
                                      const BatchNormShape& s, cudaStream_t stream);
void launch_update_running_stat(void* running, const double* value, DType dtype, int64_t channels, double momentum,
                                cudaStream_t stream);

}  // namespace kernels

}  // namespace tpp::ops::cuda
