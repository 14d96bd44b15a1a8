// The [outer, dim, inner] view softmax kernels work on (CPU and CUDA; free of
// fmt so that nvcc can include it).
#pragma once

#include <cstdint>

namespace tpp::ops {

struct SoftmaxLayout {
  int64_t outer = 1, dim = 1, inner = 1;
};

}  // namespace tpp::ops
