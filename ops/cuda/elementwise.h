// CUDA kernels for element-wise ops (CUDA builds only; nvcc-safe). The
// Tensor-level entry points take the same arguments as ops/cpu/elementwise.h;
// inputs are read in place (strided views, broadcasts) and outputs may be
// strided too.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "engine/cuda/indexing.h"
#include "engine/dtype_core.h"
#include "ops/elementwise_types.h"

namespace tpp {
class Tensor;
}

namespace tpp::ops::cuda {

using ops::Binary;
using ops::Unary;

void binary_forward(Binary op, const Tensor& a, const Tensor& b, const Tensor& out);
void unary_forward(Unary op, const Tensor& x, double scalar, const Tensor& out);
// dx = dy where y > 0, else 0.
void relu_backward(const Tensor& y, const Tensor& dy, const Tensor& dx);

}  // namespace tpp::ops::cuda

namespace tpp::ops::cuda::kernels {

// out[at(i)[0]] = a[at(i)[1]] (op) b[at(i)[2]] for i < n, floating dtypes.
// `flat`: all three are contiguous of n elements (at is then unused);
// `scalar_b`: a and out contiguous, b one element.
void launch_binary(Binary op, DType dtype, void* out, const void* a, const void* b,
                   const tpp::cuda::StridedOffsets<3>& at, int64_t n, bool flat, bool scalar_b, cudaStream_t stream);

// out[at(i)[0]] = op(x[at(i)[1]], scalar) for i < n; `flat` as above.
void launch_unary(Unary op, DType dtype, void* out, const void* x, double scalar,
                  const tpp::cuda::StridedOffsets<2>& at, int64_t n, bool flat, cudaStream_t stream);

// dx[at(i)[0]] = y[at(i)[1]] > 0 ? dy[at(i)[2]] : 0 for i < n; `flat` and
// `scalar_b` (dy one element) as above.
void launch_relu_backward(DType dtype, void* dx, const void* y, const void* dy, const tpp::cuda::StridedOffsets<3>& at,
                          int64_t n, bool flat, bool scalar_b, cudaStream_t stream);

}  // namespace tpp::ops::cuda::kernels
