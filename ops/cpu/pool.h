// CPU pooling kernels over contiguous NCHW tensors, one (n, c) plane per task.
#pragma once

#include "engine/tensor.h"

namespace tpp::ops::cpu {

struct PoolGeometry {
  int64_t planes = 0;  // N * C
  int64_t in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  int64_t kernel_h = 0, kernel_w = 0, stride_h = 0, stride_w = 0, pad_h = 0, pad_w = 0;
  bool count_include_pad = true;
};

// y [planes, out_h, out_w]; argmax holds each maximum's flat index in its input plane.
void max_pool2d_forward(const Tensor& x, const PoolGeometry& g, const Tensor& y, const Tensor& argmax);
void max_pool2d_backward(const Tensor& dy, const Tensor& argmax, const PoolGeometry& g, const Tensor& dx);

void avg_pool2d_forward(const Tensor& x, const PoolGeometry& g, const Tensor& y);
void avg_pool2d_backward(const Tensor& dy, const PoolGeometry& g, const Tensor& dx);

}  // namespace tpp::ops::cpu
