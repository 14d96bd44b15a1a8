// CPU reduction kernels. Inputs are contiguous and viewed as
// [outer, reduce, inner]: the reduced extent sits between two kept blocks.
// Outputs are contiguous [outer, inner]. Accumulation is in double.
#pragma once

#include "engine/tensor.h"

namespace tpp::ops::cpu {

struct ReduceLayout {
  int64_t outer = 1, reduce = 1, inner = 1;
};

// out[o, i] = scale * sum_r x[o, r, i]; x and out may differ in dtype
// (f64 partial sums between passes).
void sum_forward(const Tensor& x, const ReduceLayout& layout, double scale, const Tensor& out);

// values[o, i] = max_r x[o, r, i], indices[o, i] = its first r. NaN wins.
void max_forward(const Tensor& x, const ReduceLayout& layout, const Tensor& values, const Tensor& indices);
// dx = 0 except dx[o, indices[o, i], i] = dy[o, i]
void max_backward(const Tensor& dy, const Tensor& indices, const ReduceLayout& layout, const Tensor& dx);

// The largest element of a non-empty contiguous x (NaN wins).
double max_all(const Tensor& x);
// dx = dy / (number of elements equal to max) where x == max, else 0.
void max_all_backward(const Tensor& x, double max_value, double dy, const Tensor& dx);

// sum of x^2 over all elements of a contiguous x.
double sum_of_squares(const Tensor& x);

}  // namespace tpp::ops::cpu
