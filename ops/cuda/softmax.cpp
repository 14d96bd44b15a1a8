// CUDA builds only: the Tensor-level softmax entry points.
#include "ops/cuda/softmax.h"

#include "engine/cuda/stream.h"
#include "engine/tensor.h"
#include "ops/cuda/kernel_args.h"

namespace tpp::ops::cuda {

void softmax_forward(const Tensor& x, const SoftmaxLayout& l, bool log, const Tensor& y) {
  const std::string_view op = log ? "log_softmax" : "softmax";
  check_kernel_arg(op, "x", x, x.device(), x.dtype());
  check_kernel_arg(op, "y", y, x.device(), x.dtype());
  const tpp::cuda::DeviceGuard guard(x.device().index);
  kernels::launch_softmax_forward(x.raw_data(), y.raw_data(), x.dtype(), l, log, tpp::cuda::current_stream());
}

void softmax_backward(const Tensor& y, const Tensor& dy, const SoftmaxLayout& l, bool log, const Tensor& dx) {
  const std::string_view op = log ? "log_softmax backward" : "softmax backward";
  check_kernel_arg(op, "y", y, y.device(), y.dtype());
  check_kernel_arg(op, "dy", dy, y.device(), y.dtype());
  check_kernel_arg(op, "dx", dx, y.device(), y.dtype());
  const tpp::cuda::DeviceGuard guard(y.device().index);
  kernels::launch_softmax_backward(y.raw_data(), dy.raw_data(), dx.raw_data(), y.dtype(), l, log,
                                   tpp::cuda::current_stream());
}

}  // namespace tpp::ops::cuda
