// Channels-last activations: an NCHW tensor (shape and indexing unchanged)
// whose memory is NHWC, channels varying fastest. oneDNN's CPU inference
// kernels work in it for most of our shapes, so a chain of inference
// convolutions (and the pooling between them) hand it on without reordering;
// every other op reads it through its strides like any view, as PyTorch's
// channels_last memory format.
#pragma once

#include "engine/tensor.h"

namespace tpp::ops {

// A new tensor of the NCHW shape `nchw` with NHWC memory.
inline Tensor empty_channels_last(const Shape& nchw, const TensorOptions& options) {
  return empty({nchw[0], nchw[2], nchw[3], nchw[1]}, options).permute({0, 3, 1, 2});
}

// Whether a 4-d tensor's memory is NHWC (a one-channel NCHW tensor's is too).
inline bool is_channels_last(const Tensor& t) { return t.dim() == 4 && t.permute({0, 2, 3, 1}).is_contiguous(); }

}  // namespace tpp::ops
