// The options the fused cross-entropy kernels take (CPU and CUDA; free of fmt
// so that nvcc can include it).
#pragma once

#include <cstdint>

namespace tpp::ops {

// 2-d logits without class weights, reduced to one value.
struct FusedCrossEntropy {
  double smoothing = 0;
  int64_t ignore_index = -100;  // rows with this target add nothing and count nothing
  bool average = true;          // the mean over the rows not ignored, else their sum
};

}  // namespace tpp::ops
