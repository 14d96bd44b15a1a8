// CPU convolution kernels: im2col + GEMM forward, GEMM + col2im backward-data,
// GEMM over im2col backward-filter. Tensors are contiguous NCHW, outputs
// allocated by the caller (except in inference, below).
#pragma once

#include <cstdint>

#include "engine/tensor.h"
#include "ops/conv2d_types.h"

namespace tpp::ops::cpu {

using ops::Conv2dGeometry;

// y = conv(x, w) + bias; bias may be undefined.
void conv2d_forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y);

// Inference only: y = conv(x, w) + bias (+ residual, when defined), then
// max(·, 0) when `relu`; fused on oneDNN, else the forward above and a pass
// over y. x may be NCHW or channels-last (NHWC memory); so may y be: it is
// channels-last where oneDNN's kernel works so (consecutive layers then hand
// over NHWC tensors without a reorder). w and bias contiguous.
Tensor conv2d_inference(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& bias,
                        const Tensor& residual, bool relu);

// Any of dx, dw, db may be undefined when that gradient is not wanted; x may
// be undefined when dw is.
void conv2d_backward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& dy, const Tensor& dx,
                     const Tensor& dw, const Tensor& db);

}  // namespace tpp::ops::cpu
