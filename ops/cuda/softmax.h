// CUDA softmax kernels over contiguous tensors viewed as [outer, dim, inner]
// (CUDA builds only; free of fmt for nvcc). Same work as ops/cpu/softmax.h.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "engine/dtype_core.h"
#include "ops/softmax_types.h"

namespace tpp {
class Tensor;
}

namespace tpp::ops::cuda {

// y = softmax(x) or log_softmax(x) along the middle extent.
void softmax_forward(const Tensor& x, const SoftmaxLayout& l, bool log, const Tensor& y);
// softmax:     dx = y * (dy - sum(dy * y))
// log_softmax: dx = dy - exp(y) * sum(dy)
void softmax_backward(const Tensor& y, const Tensor& dy, const SoftmaxLayout& l, bool log, const Tensor& dx);

namespace kernels {

// Rows longer than a warp with inner == 1 get one block each; every other
// layout one thread per (outer, inner) column, walking down dim.
void launch_softmax_forward(const void* x, void* y, DType dtype, const SoftmaxLayout& l, bool log,
                            cudaStream_t stream);
void launch_softmax_backward(const void* y, const void* dy, void* dx, DType dtype, const SoftmaxLayout& l, bool log,
                             cudaStream_t stream);

}  // namespace kernels

}  // namespace tpp::ops::cuda
