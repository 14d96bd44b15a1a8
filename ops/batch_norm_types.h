// The [N, C, HW] view batch-norm kernels work on (CPU and CUDA; free of fmt
// so that nvcc can include it).
#pragma once

#include <cstdint>

namespace tpp::ops {

struct BatchNormShape {
  int64_t n = 0, c = 0, hw = 0;
  int64_t per_channel() const { return n * hw; }
};

}  // namespace tpp::ops
