// Norms.
#pragma once

#include "engine/tensor.h"

namespace tpp::ops {

// sqrt(sum of x^2) over all elements, as a 0-d tensor. Gradient x / ||x||,
// taken as 0 when x is all zeros.
Tensor frobenius_norm(const Tensor& x);

}  // namespace tpp::ops
