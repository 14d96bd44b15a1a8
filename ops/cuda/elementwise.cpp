// Tensor-level glue of the element-wise CUDA kernels: device guard, strided
// offsets of the operands (broadcasts read in place through stride 0), and
// the launch on the device's compute stream.
#include "ops/cuda/elementwise.h"

#include "engine/cuda/stream.h"
#include "engine/cuda/tensor_transfer.h"
#include "engine/tensor.h"

namespace tpp::ops::cuda {

namespace {

bool dense_like(const Tensor& t, const Tensor& out) { return t.sizes() == out.sizes() && t.is_contiguous(); }

// out = fn(a, b) elementwise, a and b broadcast to out's shape.
template <class Launch>
void binary_like(std::string_view op, const Tensor& a, const Tensor& b, const Tensor& out, Launch launch) {
  const tpp::cuda::DeviceGuard guard(out.device().index);
  const int64_t n = out.numel();
  const bool out_dense = out.is_contiguous();
  const bool flat = out_dense && dense_like(a, out) && dense_like(b, out);
  const bool scalar_b = !flat && out_dense && dense_like(a, out) && b.numel() == 1;
  tpp::cuda::StridedOffsets<3> at;
  if (!flat && !scalar_b) {
    const Tensor ea = a.detach().expand(out.sizes()), eb = b.detach().expand(out.sizes());
    at = tpp::cuda::strided_offsets<3>(op, out.sizes(), {&out.strides(), &ea.strides(), &eb.strides()});
  }
  launch(at, n, flat, scalar_b, tpp::cuda::current_stream());
}

}  // namespace

void binary_forward(Binary op, const Tensor& a, const Tensor& b, const Tensor& out) {
  binary_like("binary op", a, b, out, [&](const auto& at, int64_t n, bool flat, bool scalar_b, cudaStream_t stream) {
    kernels::launch_binary(op, out.dtype(), out.raw_data(), a.raw_data(), b.raw_data(), at, n, flat, scalar_b, stream);
  });
}

void unary_forward(Unary op, const Tensor& x, double scalar, const Tensor& out) {
  const tpp::cuda::DeviceGuard guard(out.device().index);
  const bool flat = out.is_contiguous() && dense_like(x, out);
  tpp::cuda::StridedOffsets<2> at;
  if (!flat) at = tpp::cuda::strided_offsets<2>("unary op", out.sizes(), {&out.strides(), &x.strides()});
  kernels::launch_unary(op, out.dtype(), out.raw_data(), x.raw_data(), scalar, at, out.numel(), flat,
                        tpp::cuda::current_stream());
}

void relu_backward(const Tensor& y, const Tensor& dy, const Tensor& dx) {
  binary_like("relu backward", y, dy, dx,
              [&](const auto& at, int64_t n, bool flat, bool scalar_b, cudaStream_t stream) {
    kernels::launch_relu_backward(dx.dtype(), dx.raw_data(), y.raw_data(), dy.raw_data(), at, n, flat, scalar_b,
                                  stream);
  });
}

}  // namespace tpp::ops::cuda
