#include "ops/cuda/kernel_args.h"

#include "engine/error.h"

namespace tpp::ops::cuda {

void check_kernel_arg(std::string_view op, std::string_view what, const Tensor& t, Device device, DType dtype) {
  if (!t.defined()) return;
  TPP_CHECK(t.is_contiguous() && t.device() == device && t.dtype() == dtype,
            "{}: CUDA kernel argument {} must be a contiguous {} tensor on {} but is {} on {} with shape {}", op,
            what, dtype_name(dtype), device.str(), dtype_name(t.dtype()), t.device().str(), shape_str(t.sizes()));
}

}  // namespace tpp::ops::cuda
