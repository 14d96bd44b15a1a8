// CPU kernels for element-wise ops. Outputs are contiguous and already
// allocated with the broadcast shape.
#pragma once

#include "engine/tensor.h"
#include "ops/elementwise_types.h"

namespace tpp::ops::cpu {

using ops::Binary;
using ops::Unary;

void binary_forward(Binary op, const Tensor& a, const Tensor& b, const Tensor& out);
void unary_forward(Unary op, const Tensor& x, double scalar, const Tensor& out);
// dx = dy where y > 0, else 0.
void relu_backward(const Tensor& y, const Tensor& dy, const Tensor& dx);

}  // namespace tpp::ops::cpu
