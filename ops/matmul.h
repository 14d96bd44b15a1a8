// Matrix products on OpenBLAS, each differentiable.
#pragma once

#include "engine/tensor.h"

namespace tpp::ops {

// [M,K] x [K,N] -> [M,N]. As in PyTorch, a 1-d left operand [K] is a row
// (result [N]), a 1-d right operand [K] is a column (result [M]), and two
// 1-d operands give their dot product as a 0-d tensor. Transposed views are
// read in place, without a copy.
Tensor matmul(const Tensor& a, const Tensor& b);

// x [*, in] · weightᵀ + bias: weight [out, in], bias [out] or undefined.
// Leading dims of x are kept: the result is [*, out].
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = {});

}  // namespace tpp::ops
