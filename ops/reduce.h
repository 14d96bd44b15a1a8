// Reductions: sum, mean and max over all elements or over chosen dims.
// Reducing over all elements gives a 0-d tensor, as in PyTorch.
#pragma once

#include <vector>

#include "engine/tensor.h"

namespace tpp::ops {

Tensor sum(const Tensor& x);
// An empty `dims` reduces over every dim (as torch.sum(x, dim=[])).
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);

Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);

// Largest element. NaN wins (propagates); the gradient is shared evenly
// between tied maxima, as in PyTorch.
Tensor max(const Tensor& x);

// Largest element along `dim` and its i64 index; on ties the first index.
// The gradient flows to that index only.
struct MaxResult {
  Tensor values, indices;
};
MaxResult max(const Tensor& x, int64_t dim, bool keepdim = false);

}  // namespace tpp::ops
