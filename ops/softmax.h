// Softmax and log-softmax along one dim, computed with the maximum
// subtracted first so that large inputs do not overflow.
#pragma once

#include "engine/tensor.h"

namespace tpp::ops {

Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

}  // namespace tpp::ops
