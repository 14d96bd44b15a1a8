// CPU reduction kernels. Inputs are contiguous and viewed as
// [outer, reduce, inner] (ops/reduce_types.h). Outputs are contiguous
// [outer, inner]. Accumulation is in double. Results that a backward needs
// stay in tensors (0-d for reductions over everything), as on the GPU.
#pragma once

#include "engine/tensor.h"
#include "ops/reduce_types.h"

namespace tpp::ops::cpu {

using ops::ReduceLayout;

// out[o, i] = scale * sum_r x[o, r, i]; x and out may differ in dtype
// (f64 partial sums between passes).
void sum_forward(const Tensor& x, const ReduceLayout& layout, double scale, const Tensor& out);

// values[o, i] = max_r x[o, r, i], indices[o, i] = its first r. NaN wins.
void max_forward(const Tensor& x, const ReduceLayout& layout, const Tensor& values, const Tensor& indices);
// dx = 0 except dx[o, indices[o, i], i] = dy[o, i]
void max_backward(const Tensor& dy, const Tensor& indices, const ReduceLayout& layout, const Tensor& dx);

// y (0-d) = the largest element of a non-empty contiguous x (NaN wins).
void max_all(const Tensor& x, const Tensor& y);
// dx = dy / (number of elements equal to y) where x == y, else 0; y and dy 0-d.
void max_all_backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx);

// y (0-d) = sqrt(sum of x^2) over a contiguous x.
void frobenius_norm_forward(const Tensor& x, const Tensor& y);
// dx = x * (dy / y), or 0 when y is 0 (x all zeros: a subgradient).
void frobenius_norm_backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx);

}  // namespace tpp::ops::cpu
