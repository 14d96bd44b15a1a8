// CUDA builds only: the Tensor-level pooling entry points.
#include "ops/cuda/pool.h"

#include "engine/cuda/stream.h"
#include "engine/tensor.h"
#include "ops/cuda/kernel_args.h"

namespace tpp::ops::cuda {

namespace {

// x (or dx) [planes, in_h, in_w] and y (or dy) [planes, out_h, out_w] as the geometry says.
void check_planes(std::string_view op, const Tensor& input_side, const Tensor& output_side, const PoolGeometry& g) {
  check_kernel_arg(op, "input", input_side, input_side.device(), input_side.dtype());
  check_kernel_arg(op, "output", output_side, input_side.device(), input_side.dtype());
  TPP_CHECK(input_side.numel() == g.planes * g.in_h * g.in_w && output_side.numel() == g.planes * g.out_h * g.out_w,
            "{}: tensors of shapes {} and {} do not match the pooling geometry", op, shape_str(input_side.sizes()),
            shape_str(output_side.sizes()));
}

}  // namespace

void max_pool2d_forward(const Tensor& x, const PoolGeometry& g, const Tensor& y, const Tensor& argmax) {
  check_planes("max_pool2d", x, y, g);
  check_kernel_arg("max_pool2d", "argmax", argmax, x.device(), DType::i64);
  TPP_CHECK(argmax.numel() == y.numel(), "max_pool2d: argmax of shape {} does not match y of shape {}",
            shape_str(argmax.sizes()), shape_str(y.sizes()));
  const tpp::cuda::DeviceGuard guard(x.device().index);
  kernels::launch_max_pool2d_forward(x.raw_data(), y.raw_data(), argmax.data<int64_t>(), x.dtype(), g,
                                     tpp::cuda::current_stream());
}

void max_pool2d_backward(const Tensor& dy, const Tensor& argmax, const PoolGeometry& g, const Tensor& dx) {
  check_planes("max_pool2d backward", dx, dy, g);
  check_kernel_arg("max_pool2d backward", "argmax", argmax, dy.device(), DType::i64);
  TPP_CHECK(argmax.numel() == dy.numel(), "max_pool2d backward: argmax of shape {} does not match dy of shape {}",
            shape_str(argmax.sizes()), shape_str(dy.sizes()));
  const tpp::cuda::DeviceGuard guard(dy.device().index);
  kernels::launch_max_pool2d_backward(dy.raw_data(), argmax.data<int64_t>(), dx.raw_data(), dy.dtype(), g,
                                      tpp::cuda::current_stream());
}

void avg_pool2d_forward(const Tensor& x, const PoolGeometry& g, const Tensor& y) {
  check_planes("avg_pool2d", x, y, g);
  const tpp::cuda::DeviceGuard guard(x.device().index);
  kernels::launch_avg_pool2d_forward(x.raw_data(), y.raw_data(), x.dtype(), g, tpp::cuda::current_stream());
}

void avg_pool2d_backward(const Tensor& dy, const PoolGeometry& g, const Tensor& dx) {
  check_planes("avg_pool2d backward", dx, dy, g);
  const tpp::cuda::DeviceGuard guard(dy.device().index);
  kernels::launch_avg_pool2d_backward(dy.raw_data(), dx.raw_data(), dy.dtype(), g, tpp::cuda::current_stream());
}

void adaptive_avg_pool2d_forward(const Tensor& x, const PoolGeometry& g, const Tensor& y) {
  check_planes("adaptive_avg_pool2d", x, y, g);
  const tpp::cuda::DeviceGuard guard(x.device().index);
  kernels::launch_adaptive_avg_pool2d_forward(x.raw_data(), y.raw_data(), x.dtype(), g, tpp::cuda::current_stream());
}

void adaptive_avg_pool2d_backward(const Tensor& dy, const PoolGeometry& g, const Tensor& dx) {
  check_planes("adaptive_avg_pool2d backward", dx, dy, g);
  const tpp::cuda::DeviceGuard guard(dy.device().index);
  kernels::launch_adaptive_avg_pool2d_backward(dy.raw_data(), dx.raw_data(), dy.dtype(), g,
                                               tpp::cuda::current_stream());
}

}  // namespace tpp::ops::cuda
