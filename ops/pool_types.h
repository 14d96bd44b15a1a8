// The geometry pooling kernels work on and the windows it gives (CPU and
// CUDA; free of fmt so that nvcc can include it).
#pragma once

#include <cstdint>

#include "ops/host_device.h"

namespace tpp::ops {

struct PoolGeometry {
  int64_t planes = 0;  // N * C
  int64_t in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  int64_t kernel_h = 0, kernel_w = 0, stride_h = 0, stride_w = 0, pad_h = 0, pad_w = 0;
  bool count_include_pad = true;
  int64_t dilation_h = 1, dilation_w = 1;  // max pooling only: the taps of a window are this far apart
};

// A window's extent along one axis: [begin, end) inside the input, and the
// divisor extent that includes padding but not the ceil-mode overhang.
struct PoolSpan {
  int64_t begin, end, padded;
};

TPP_HOST_DEVICE inline PoolSpan pool_window(int64_t out_index, int64_t stride, int64_t pad, int64_t kernel,
                                            int64_t in_size) {
  const int64_t start = out_index * stride - pad;
  const int64_t stop = start + kernel < in_size + pad ? start + kernel : in_size + pad;
  return {start < 0 ? 0 : start, stop < in_size ? stop : in_size, stop - start};
}

// The taps of a dilated window along one axis that fall inside the input:
// begin, begin + step, ... below end (none when begin >= end).
struct PoolTaps {
  int64_t begin, end, step;
};

TPP_HOST_DEVICE inline PoolTaps dilated_pool_window(int64_t out_index, int64_t stride, int64_t pad, int64_t kernel,
                                                    int64_t dilation, int64_t in_size) {
  const int64_t start = out_index * stride - pad;
  const int64_t first = start >= 0 ? start : start + (-start + dilation - 1) / dilation * dilation;
  const int64_t stop = start + (kernel - 1) * dilation + 1;
  return {first, stop < in_size ? stop : in_size, dilation};
}

// Adaptive pooling's window along one axis, as PyTorch: output i covers
// [floor(i in / out), ceil((i + 1) in / out)).
TPP_HOST_DEVICE inline PoolSpan adaptive_pool_window(int64_t out_index, int64_t in_size, int64_t out_size) {
  const int64_t begin = out_index * in_size / out_size, end = ((out_index + 1) * in_size + out_size - 1) / out_size;
  return {begin, end, end - begin};
}

}  // namespace tpp::ops
