// Tensor-level glue of the CUDA reduction kernels: device guard, scratch for
// the two-pass reductions from the caching allocator, and the launch on the
// device's compute stream. Inputs arrive contiguous (ops/reduce.cpp, ops/norm.cpp).
#include "ops/cuda/reduce.h"

#include "engine/cuda/caching_allocator.h"
#include "engine/cuda/stream.h"
#include "engine/tensor.h"

namespace tpp::ops::cuda {

namespace {

// Scratch of `slots` 8-byte partial results, used on the current stream only.
tpp::cuda::DeviceBuffer partials_for(int64_t slots) {
  return tpp::cuda::device_allocate(static_cast<size_t>(slots) * 8, tpp::cuda::current_stream());
}

// An empty tensor is contiguous whatever its strides (a transposed [0, 2] is [2, 0] with strides [1, 2]).
void check_contiguous(std::string_view op, const Tensor& t) {
  TPP_CHECK(t.numel() == 0 || t.is_contiguous(), "{}: the CUDA kernel needs a contiguous tensor but got shape {} strides {}", op,
            shape_str(t.sizes()), shape_str(t.strides()));
}

}  // namespace

void sum_all(const Tensor& x, double scale, const Tensor& y) {
  check_contiguous("sum", x);
  const tpp::cuda::DeviceGuard guard(x.device().index);
  const tpp::cuda::DeviceBuffer partials = partials_for(kernels::all_reduce_blocks(x.numel()));
  kernels::launch_sum_all(x.raw_data(), x.dtype(), x.numel(), scale, y.raw_data(), partials.data(),
                          tpp::cuda::current_stream());
}

void max_forward(const Tensor& x, const ReduceLayout& layout, const Tensor& values, const Tensor& indices) {
  check_contiguous("max", x);
  const tpp::cuda::DeviceGuard guard(x.device().index);
  kernels::launch_max_dim(x.raw_data(), values.raw_data(), indices.data<int64_t>(), x.dtype(), layout,
                          tpp::cuda::current_stream());
}

void max_backward(const Tensor& dy, const Tensor& indices, const ReduceLayout& layout, const Tensor& dx) {
  check_contiguous("max backward", dy);
  check_contiguous("max backward", indices);
  const tpp::cuda::DeviceGuard guard(dx.device().index);
  kernels::launch_max_dim_backward(dy.raw_data(), indices.data<int64_t>(), dx.raw_data(), dx.dtype(), layout,
                                   tpp::cuda::current_stream());
}

void max_all(const Tensor& x, const Tensor& y) {
  check_contiguous("max", x);
  const tpp::cuda::DeviceGuard guard(x.device().index);
  const tpp::cuda::DeviceBuffer partials = partials_for(kernels::all_reduce_blocks(x.numel()));
  kernels::launch_max_all(x.raw_data(), x.dtype(), x.numel(), y.raw_data(), partials.data(),
                          tpp::cuda::current_stream());
}

void max_all_backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx) {
  check_contiguous("max backward", x);
  const tpp::cuda::DeviceGuard guard(x.device().index);
  const Tensor dy_value = dy.contiguous();  // one element; contiguous gives its own offset
  const tpp::cuda::DeviceBuffer partials = partials_for(kernels::all_reduce_blocks(x.numel()) + 1);
  kernels::launch_max_all_backward(x.raw_data(), y.raw_data(), dy_value.raw_data(), dx.raw_data(), x.dtype(),
                                   x.numel(), partials.data(), tpp::cuda::current_stream());
}

void frobenius_norm_forward(const Tensor& x, const Tensor& y) {
  check_contiguous("frobenius_norm", x);
  const tpp::cuda::DeviceGuard guard(x.device().index);
  const tpp::cuda::DeviceBuffer partials = partials_for(kernels::all_reduce_blocks(x.numel()));
  kernels::launch_sum_squares_sqrt(x.raw_data(), x.dtype(), x.numel(), y.raw_data(), partials.data(),
                                   tpp::cuda::current_stream());
}

void frobenius_norm_backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx) {
  check_contiguous("frobenius_norm backward", x);
  const tpp::cuda::DeviceGuard guard(x.device().index);
  const Tensor dy_value = dy.contiguous();
  kernels::launch_norm_backward(x.raw_data(), y.raw_data(), dy_value.raw_data(), dx.raw_data(), x.dtype(), x.numel(),
                                tpp::cuda::current_stream());
}

}  // namespace tpp::ops::cuda
