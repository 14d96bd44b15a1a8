// CPU pooling kernels over contiguous NCHW tensors, one (n, c) plane per task
// (and max pooling's values over channels-last ones, for inference).
#pragma once

#include "engine/tensor.h"
#include "ops/pool_types.h"

namespace tpp::ops::cpu {

using ops::PoolGeometry;

// y [planes, out_h, out_w]; argmax holds each maximum's flat index in its input plane.
void max_pool2d_forward(const Tensor& x, const PoolGeometry& g, const Tensor& y, const Tensor& argmax);
void max_pool2d_backward(const Tensor& dy, const Tensor& argmax, const PoolGeometry& g, const Tensor& dx);
// The maxima alone (no gradient to come), x and y channels-last (ops/layout.h).
void max_pool2d_values_channels_last(const Tensor& x, const PoolGeometry& g, const Tensor& y);

void avg_pool2d_forward(const Tensor& x, const PoolGeometry& g, const Tensor& y);
void avg_pool2d_backward(const Tensor& dy, const PoolGeometry& g, const Tensor& dx);

// Adaptive average pooling: only planes, in_h/in_w and out_h/out_w of g are read.
void adaptive_avg_pool2d_forward(const Tensor& x, const PoolGeometry& g, const Tensor& y);
void adaptive_avg_pool2d_backward(const Tensor& dy, const PoolGeometry& g, const Tensor& dx);

}  // namespace tpp::ops::cpu
