// Constant padding in torch.nn.functional.pad order.
#pragma once

#include <vector>

#include "engine/tensor.h"

namespace tpp::ops {

// pad = {last_before, last_after, second_last_before, second_last_after, ...}
// covers the trailing pad.size() / 2 dims. For NCHW, {0, 0, 0, 0, c0, c1}
// pads the channel dim (the ResNet option-A shortcut). A negative amount
// crops that many elements off that end, as in PyTorch.
Tensor constant_pad(const Tensor& x, const std::vector<int64_t>& pad, double value = 0);

}  // namespace tpp::ops
