// The geometry pooling kernels work on (CPU and CUDA; free of fmt so that
// nvcc can include it).
#pragma once

#include <cstdint>

namespace tpp::ops {

struct PoolGeometry {
  int64_t planes = 0;  // N * C
  int64_t in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  int64_t kernel_h = 0, kernel_w = 0, stride_h = 0, stride_w = 0, pad_h = 0, pad_w = 0;
  bool count_include_pad = true;
  int64_t dilation_h = 1, dilation_w = 1;  // max pooling only: the taps of a window are this far apart
};

}  // namespace tpp::ops
