// 2-d convolution (cross-correlation, as in PyTorch) over NCHW tensors.
#pragma once

#include <array>
#include <cstdint>

#include "engine/tensor.h"

namespace tpp::ops {

struct Conv2dOptions {
  std::array<int64_t, 2> stride{1, 1}, padding{0, 0}, dilation{1, 1};
  int64_t groups = 1;
};

// x [N, C, H, W], weight [K, C / groups, kh, kw], bias [K] or undefined
// -> [N, K, OH, OW] with OH = (H + 2 pad - dilation (kh - 1) - 1) / stride + 1.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = {}, const Conv2dOptions& opts = {});

// Inference only (records no gradient): conv2d(x, weight, bias), plus
// `residual` when given (a ResNet block's shortcut, of the output's shape),
// then max(·, 0) when `relu`, in one pass where the backend can (oneDNN on
// the CPU in f32: its inference kernels, the sum and ReLU applied while each
// block is in cache). The result may be laid out channels-last in memory
// (NHWC strides, as PyTorch's channels_last): the shape and every op's view of
// it are NCHW, and the next conv2d_inference reads it without a reorder.
// Refuses operands that require a gradient while autograd records.
Tensor conv2d_inference(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& opts,
                        bool relu, const Tensor& residual = {});

}  // namespace tpp::ops
