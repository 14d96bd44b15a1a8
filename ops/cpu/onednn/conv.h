// f32 convolutions on oneDNN: forward, backward-data, backward-weights over
// contiguous NCHW buffers (weights [K, C / groups, kh, kw]). Each pass's
// primitive is made once per shape and kept (the CPU counterpart of the cuDNN
// algorithm cache); oneDNN picks its own memory layouts inside, reordering to
// and from ours, with every work buffer from our allocator.
#pragma once

#include <cstddef>

#include "ops/conv2d_types.h"

namespace tpp::ops::cpu::onednn {

// y = conv(x, w) + bias; bias may be null.
void conv2d_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias, float* y);

// How an inference call lays out its activations and what it fuses.
struct InferenceCall {
  bool relu = false;             // max(·, 0) last
  bool residual = false;         // add a residual tensor (channels-last, as y) before the ReLU
  bool x_channels_last = false;  // x is NHWC in memory (else NCHW)
  bool y_channels_last = false;  // y is to be NHWC in memory (else NCHW)
};

// Inference only: y = conv(x, w) + bias (+ residual), then max(·, 0) when
// `relu`, in one pass (oneDNN's forward_inference with binary-add and eltwise
// post-ops: the residual is read as each output block is written); bias may
// be null, residual is null unless call.residual. A residual needs x, y and
// itself channels-last (see inference_works_channels_last).
void conv2d_inference(const Conv2dGeometry& g, const float* x, const float* w, const float* bias,
                      const float* residual, const InferenceCall& call, float* y);

// Whether oneDNN's inference kernel for this shape works on channels-last
// activations: then NHWC input and output cost no reorder, and consecutive
// layers can hand NHWC tensors to each other.
bool inference_works_channels_last(const Conv2dGeometry& g, bool with_bias);
// The gradients of input (dx), weight (dw) and bias (db), each null when not
// wanted; db only with dw. With both passes to run, dy goes into oneDNN's
// layout once. x may be null when dw is.
void conv2d_backward(const Conv2dGeometry& g, const float* x, const float* w, const float* dy, float* dx, float* dw,
                     float* db);

// How many primitives (one per shape and pass) have been made so far.
size_t conv_primitive_count();

}  // namespace tpp::ops::cpu::onednn
