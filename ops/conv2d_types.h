// The geometry of one 2-d convolution, shared by the CPU and CUDA kernels.
// Plain data, free of fmt and of C++20, so that nvcc can include it too.
#pragma once

#include <cstdint>

namespace tpp::ops {

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

}  // namespace tpp::ops
