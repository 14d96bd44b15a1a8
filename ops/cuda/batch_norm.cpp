// CUDA builds only: the Tensor-level batch-norm entry points.
#include "ops/cuda/batch_norm.h"

#include "engine/cuda/stream.h"
#include "engine/tensor.h"
#include "ops/cuda/kernel_args.h"

namespace tpp::ops::cuda {

namespace {

// Tensors of x's shape and dtype (x itself, y, dy, dx).
void check_activations(std::string_view op, const Tensor& x, const BatchNormShape& s,
                       std::initializer_list<const Tensor*> others) {
  check_kernel_arg(op, "x", x, x.device(), x.dtype());
  TPP_CHECK(x.numel() == s.n * s.c * s.hw, "{}: x of shape {} does not match [N, C, HW] = [{}, {}, {}]", op,
            shape_str(x.sizes()), s.n, s.c, s.hw);
  for (const Tensor* t : others) {
    check_kernel_arg(op, "an activation", *t, x.device(), x.dtype());
    TPP_CHECK(!t->defined() || t->numel() == x.numel(), "{}: a tensor of shape {} does not match x of shape {}", op,
              shape_str(t->sizes()), shape_str(x.sizes()));
  }
}

// Per-channel tensors: [C] of x's dtype (parameters, running statistics) or
// f64 (statistics), or [k, C] f64 (moments, sums).
void check_channels(std::string_view op, const Tensor& x, const BatchNormShape& s, DType dtype, int64_t rows,
                    std::initializer_list<const Tensor*> tensors) {
  for (const Tensor* t : tensors) {
    check_kernel_arg(op, "a per-channel tensor", *t, x.device(), dtype);
    TPP_CHECK(!t->defined() || t->numel() == rows * s.c,
              "{}: a per-channel tensor of shape {} does not match the {} channels of x with shape {}", op,
              shape_str(t->sizes()), s.c, shape_str(x.sizes()));
  }
}

}  // namespace

void batch_norm_forward_train(const Tensor& x, const BatchNormShape& s, const Tensor& weight, const Tensor& bias,
                              double eps, double momentum, const Tensor& y, const Tensor& mean, const Tensor& invstd,
                              const Tensor& running_mean, const Tensor& running_var) {
  constexpr std::string_view op = "batch_norm2d";
  check_activations(op, x, s, {&y});
  check_channels(op, x, s, x.dtype(), 1, {&weight, &bias, &running_mean, &running_var});
  check_channels(op, x, s, DType::f64, 1, {&mean, &invstd});
  const tpp::cuda::DeviceGuard guard(x.device().index);
  kernels::launch_batch_norm_forward_train(x.raw_data(), data_or_null(weight), data_or_null(bias), y.raw_data(),
                                           mean.data<double>(), invstd.data<double>(), data_or_null(running_mean),
                                           data_or_null(running_var), x.dtype(), s, eps, momentum,
                                           tpp::cuda::current_stream());
}

void batch_norm_stats_from_running(const Tensor& running_mean, const Tensor& running_var, double eps,
                                   const Tensor& mean, const Tensor& invstd) {
  constexpr std::string_view op = "batch_norm2d";
  const int64_t channels = running_mean.numel();
  check_kernel_arg(op, "running_mean", running_mean, running_mean.device(), running_mean.dtype());
  check_kernel_arg(op, "running_var", running_var, running_mean.device(), running_mean.dtype());
  check_kernel_arg(op, "mean", mean, running_mean.device(), DType::f64);
  check_kernel_arg(op, "invstd", invstd, running_mean.device(), DType::f64);
  TPP_CHECK(running_var.numel() == channels && mean.numel() == channels && invstd.numel() == channels,
            "{}: running statistics of shapes {} and {} do not match", op, shape_str(running_mean.sizes()),
            shape_str(running_var.sizes()));
  const tpp::cuda::DeviceGuard guard(running_mean.device().index);
  kernels::launch_batch_norm_stats_from_running(running_mean.raw_data(), running_var.raw_data(), mean.data<double>(),
                                                invstd.data<double>(), running_mean.dtype(), channels, eps,
                                                tpp::cuda::current_stream());
}

void batch_norm_forward_eval(const Tensor& x, const BatchNormShape& s, const Tensor& weight, const Tensor& bias,
                             const Tensor& mean, const Tensor& invstd, const Tensor& y) {
  constexpr std::string_view op = "batch_norm2d";
  check_activations(op, x, s, {&y});
  check_channels(op, x, s, x.dtype(), 1, {&weight, &bias});
  check_channels(op, x, s, DType::f64, 1, {&mean, &invstd});
  const tpp::cuda::DeviceGuard guard(x.device().index);
  kernels::launch_batch_norm_forward_eval(x.raw_data(), data_or_null(weight), data_or_null(bias),
                                          mean.data<double>(), invstd.data<double>(), y.raw_data(), x.dtype(), s,
                                          tpp::cuda::current_stream());
}

void batch_norm_backward(const Tensor& x, const Tensor& dy, const BatchNormShape& s, const Tensor& weight,
                         const Tensor& mean, const Tensor& invstd, bool batch_stats, const Tensor& dx,
                         const Tensor& dweight, const Tensor& dbias) {
  constexpr std::string_view op = "batch_norm2d backward";
  check_activations(op, x, s, {&dy, &dx});
  check_channels(op, x, s, x.dtype(), 1, {&weight, &dweight, &dbias});
  check_channels(op, x, s, DType::f64, 1, {&mean, &invstd});
  const tpp::cuda::DeviceGuard guard(x.device().index);
  kernels::launch_batch_norm_backward(x.raw_data(), dy.raw_data(), data_or_null(weight), mean.data<double>(),
                                      invstd.data<double>(), batch_stats, data_or_null(dx), data_or_null(dweight),
                                      data_or_null(dbias), x.dtype(), s, tpp::cuda::current_stream());
}

void batch_norm_local_moments(const Tensor& x, const BatchNormShape& s, const Tensor& moments) {
  constexpr std::string_view op = "sync_batch_norm2d";
  check_activations(op, x, s, {});
  check_channels(op, x, s, DType::f64, 3, {&moments});
  const tpp::cuda::DeviceGuard guard(x.device().index);
  kernels::launch_batch_norm_local_moments(x.raw_data(), moments.data<double>(), x.dtype(), s,
                                           tpp::cuda::current_stream());
}

void batch_norm_backward_sums(const Tensor& x, const Tensor& dy, const BatchNormShape& s, const Tensor& mean,
                              const Tensor& invstd, const Tensor& sums, const Tensor& dweight, const Tensor& dbias) {
  constexpr std::string_view op = "sync_batch_norm2d backward";
  check_activations(op, x, s, {&dy});
  check_channels(op, x, s, x.dtype(), 1, {&dweight, &dbias});
  check_channels(op, x, s, DType::f64, 1, {&mean, &invstd});
  check_channels(op, x, s, DType::f64, 2, {&sums});
  const tpp::cuda::DeviceGuard guard(x.device().index);
  kernels::launch_batch_norm_backward_sums(x.raw_data(), dy.raw_data(), mean.data<double>(), invstd.data<double>(),
                                           sums.data<double>(), data_or_null(dweight), data_or_null(dbias),
                                           x.dtype(), s, tpp::cuda::current_stream());
}

void batch_norm_backward_input(const Tensor& x, const Tensor& dy, const BatchNormShape& s, const Tensor& weight,
                               const Tensor& mean, const Tensor& invstd, const Tensor& sums, double count,
                               const Tensor& dx) {
  constexpr std::string_view op = "sync_batch_norm2d backward";
  check_activations(op, x, s, {&dy, &dx});
  check_channels(op, x, s, x.dtype(), 1, {&weight});
  check_channels(op, x, s, DType::f64, 1, {&mean, &invstd});
  check_channels(op, x, s, DType::f64, 2, {&sums});
  const tpp::cuda::DeviceGuard guard(x.device().index);
  kernels::launch_batch_norm_backward_input(x.raw_data(), dy.raw_data(), data_or_null(weight), mean.data<double>(),
                                            invstd.data<double>(), sums.data<double>(), count, dx.raw_data(),
                                            x.dtype(), s, tpp::cuda::current_stream());
}

void update_running_stat(const Tensor& running, const Tensor& value, double momentum) {
  constexpr std::string_view op = "batch_norm2d";
  check_kernel_arg(op, "running statistic", running, running.device(), running.dtype());
  check_kernel_arg(op, "value", value, running.device(), DType::f64);
  TPP_CHECK(value.numel() == running.numel(), "{}: running statistic of shape {} and value of shape {} differ", op,
            shape_str(running.sizes()), shape_str(value.sizes()));
  const tpp::cuda::DeviceGuard guard(running.device().index);
  kernels::launch_update_running_stat(running.raw_data(), value.data<double>(), running.dtype(), running.numel(),
                                      momentum, tpp::cuda::current_stream());
}

}  // namespace tpp::ops::cuda
