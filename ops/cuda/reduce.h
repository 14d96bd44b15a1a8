// CUDA reduction kernels (CUDA builds only; nvcc-safe). The Tensor-level
// entry points take the same arguments as ops/cpu/reduce.h where the work is
// the same; every result a backward needs stays on the device (no host read).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "engine/dtype_core.h"
#include "ops/reduce_types.h"

namespace tpp {
class Tensor;
}

namespace tpp::ops::cuda {

using ops::ReduceLayout;

// y (one element) = scale * the sum of every element of a contiguous x, in
// double, by a fixed two-pass tree (deterministic).
void sum_all(const Tensor& x, double scale, const Tensor& y);

void max_forward(const Tensor& x, const ReduceLayout& layout, const Tensor& values, const Tensor& indices);
void max_backward(const Tensor& dy, const Tensor& indices, const ReduceLayout& layout, const Tensor& dx);
void max_all(const Tensor& x, const Tensor& y);
void max_all_backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx);
void frobenius_norm_forward(const Tensor& x, const Tensor& y);
void frobenius_norm_backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx);

}  // namespace tpp::ops::cuda

namespace tpp::ops::cuda::kernels {

// Blocks of the first pass of a reduction over all n elements, and so the
// number of 8-byte partial results its scratch must hold.
int64_t all_reduce_blocks(int64_t n);

// Two-pass reductions over n contiguous elements of x (floating dtypes);
// `partials` holds all_reduce_blocks(n) 8-byte slots of scratch.
// out[0] = scale * sum x
void launch_sum_all(const void* x, DType dtype, int64_t n, double scale, void* out, void* partials,
                    cudaStream_t stream);
// out[0] = sqrt(sum x^2)
void launch_sum_squares_sqrt(const void* x, DType dtype, int64_t n, void* out, void* partials, cudaStream_t stream);
// out[0] = max x (NaN wins); n > 0
void launch_max_all(const void* x, DType dtype, int64_t n, void* out, void* partials, cudaStream_t stream);
// dx = dy[0] / ties where x == y[0] (both NaN counts as equal), else 0; ties
// is counted into `partials`, which needs all_reduce_blocks(n) + 1 slots.
void launch_max_all_backward(const void* x, const void* y, const void* dy, void* dx, DType dtype, int64_t n,
                             void* partials, cudaStream_t stream);
// dx = x * (dy[0] / y[0]), or 0 where y[0] == 0.
void launch_norm_backward(const void* x, const void* y, const void* dy, void* dx, DType dtype, int64_t n,
                          cudaStream_t stream);

// values/indices[o, i] = max over r of x[o, r, i] and its first r (NaN wins).
void launch_max_dim(const void* x, void* values, int64_t* indices, DType dtype, const ReduceLayout& layout,
                    cudaStream_t stream);
// dx = 0 except dx[o, indices[o, i], i] = dy[o, i] (dy contiguous [outer, inner]).
void launch_max_dim_backward(const void* dy, const int64_t* indices, void* dx, DType dtype, const ReduceLayout& layout,
                             cudaStream_t stream);

}  // namespace tpp::ops::cuda::kernels
