// 2-d pooling over NCHW tensors, with PyTorch's output-size rules.
#pragma once

#include <array>
#include <cstdint>

#include "engine/tensor.h"

namespace tpp::ops {

struct Pool2dOptions {
  std::array<int64_t, 2> kernel{2, 2}, stride{0, 0} /*0 = kernel*/, padding{0, 0};
  bool ceil_mode = false;
  bool count_include_pad = true;  // avg_pool2d only
  std::array<int64_t, 2> dilation{1, 1};  // max_pool2d only: the spacing of a window's taps
};

// Max over each window; padding counts as -inf. NaN propagates.
Tensor max_pool2d(const Tensor& x, const Pool2dOptions& opts);
// Mean over each window; with count_include_pad the zero padding is counted
// in the divisor (but never the overhang that ceil_mode adds past it).
Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& opts);
// [N, C, H, W] -> [N, C], the mean over H and W.
Tensor global_avg_pool2d(const Tensor& x);
// [N, C, H, W] -> [N, C, out_h, out_w] as PyTorch: output row i averages the
// input rows [floor(i H / out_h), ceil((i + 1) H / out_h)), and so for
// columns. Any output size >= 1, on any device.
Tensor adaptive_avg_pool2d(const Tensor& x, std::array<int64_t, 2> output_size);

}  // namespace tpp::ops
