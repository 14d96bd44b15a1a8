// CUDA builds only: the Tensor-level constant padding entry point.
#include "ops/cuda/pad.h"

#include "engine/cuda/stream.h"
#include "engine/tensor.h"
#include "ops/cuda/kernel_args.h"

namespace tpp::ops::cuda {

namespace {

// The dims that carry padding (the trailing pad.size() / 2) keep their own
// entries; the ones before them, which y shares with x, become one.
kernels::PadGeometry pad_geometry(const Tensor& x, const std::vector<int64_t>& pad) {
  const int64_t nd = x.dim(), padded_dims = static_cast<int64_t>(pad.size() / 2);
  kernels::PadGeometry g;
  const int64_t leading = nd - padded_dims;
  TPP_CHECK(padded_dims + 1 <= tpp::cuda::kMaxDims,
            "constant_pad: padding {} dims of x with shape {} is more than CUDA supports ({})", padded_dims,
            shape_str(x.sizes()), tpp::cuda::kMaxDims - 1);
  auto add_dim = [&g](int64_t in, int64_t before, int64_t after) {
    g.in_sizes[g.ndim] = in;
    g.out_sizes[g.ndim] = before + in + after;
    g.before[g.ndim] = before;
    ++g.ndim;
  };
  int64_t merged = 1;
  for (int64_t d = 0; d < leading; ++d) merged *= x.size(d);
  add_dim(merged, 0, 0);
  for (int64_t d = leading; d < nd; ++d) {
    const size_t i = static_cast<size_t>(2 * (nd - 1 - d));
    add_dim(x.size(d), pad[i], pad[i + 1]);
  }
  return g;
}

}  // namespace

void constant_pad_forward(const Tensor& x, const std::vector<int64_t>& pad, double value, const Tensor& y) {
  check_kernel_arg("constant_pad", "x", x, x.device(), x.dtype());
  check_kernel_arg("constant_pad", "y", y, x.device(), x.dtype());
  const kernels::PadGeometry g = pad_geometry(x, pad);
  int64_t out_numel = 1;
  for (int d = 0; d < g.ndim; ++d) out_numel *= g.out_sizes[d];
  TPP_CHECK(out_numel == y.numel(), "constant_pad: y of shape {} does not hold x of shape {} padded by {}",
            shape_str(y.sizes()), shape_str(x.sizes()), shape_str(pad));
  const tpp::cuda::DeviceGuard guard(x.device().index);
  kernels::launch_constant_pad(x.raw_data(), y.raw_data(), x.dtype(), g, out_numel, value,
                               tpp::cuda::current_stream());
}

}  // namespace tpp::ops::cuda
