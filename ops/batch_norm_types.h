// The [N, C, HW] view batch-norm kernels work on (CPU and CUDA; free of fmt
// so that nvcc can include it).
#pragma once

#include <cstdint>

#include "ops/host_device.h"

namespace tpp::ops {

// A channel mean (computed in double) as the unevaluated sum hi + lo of two
// T values. Rounding the mean to f32 before subtracting it loses the digits
// that matter when the mean is large against the spread (x = 1000 + 2^-14:
// the f32 mean 1000 + 2^-15 rounds to 1000); x - hi is exact for x near the
// mean, so (x - hi) - lo keeps them at the cost of one more subtraction.
template <class T>
struct SplitMean {
  T hi, lo;
  TPP_HOST_DEVICE explicit SplitMean(double mean)
      : hi(static_cast<T>(mean)), lo(static_cast<T>(mean - static_cast<double>(hi))) {}
  TPP_HOST_DEVICE T centre(T x) const { return (x - hi) - lo; }
};

struct BatchNormShape {
  int64_t n = 0, c = 0, hw = 0;
  int64_t per_channel() const { return n * hw; }
};

}  // namespace tpp::ops
