// CPU convolution kernels: im2col + GEMM forward, GEMM + col2im backward-data,
// GEMM over im2col backward-filter. Tensors are contiguous NCHW, outputs
// allocated by the caller.
#pragma once

#include <cstdint>

#include "engine/tensor.h"

namespace tpp::ops::cpu {

struct Conv2dGeometry {
  int64_t batch = 0, in_channels = 0, in_h = 0, in_w = 0;
  int64_t out_channels = 0, kernel_h = 0, kernel_w = 0, out_h = 0, out_w = 0;
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;

  int64_t in_pixels() const { return in_h * in_w; }
  int64_t out_pixels() const { return out_h * out_w; }
  int64_t kernel_area() const { return kernel_h * kernel_w; }
  // 1x1, stride 1, no padding: each image already is its own im2col matrix.
  bool is_pointwise() const {
    return kernel_h == 1 && kernel_w == 1 && stride_h == 1 && stride_w == 1 && pad_h == 0 && pad_w == 0;
  }
};

// y = conv(x, w) + bias; bias may be undefined.
void conv2d_forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y);

// Any of dx, dw, db may be undefined when that gradient is not wanted; x may
// be undefined when dw is.
void conv2d_backward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& dy, const Tensor& dx,
                     const Tensor& dw, const Tensor& db);

}  // namespace tpp::ops::cpu
