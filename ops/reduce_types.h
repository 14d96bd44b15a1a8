// The [outer, reduce, inner] view of a reduction, shared by the CPU and CUDA
// kernels (free of fmt, so that nvcc can include it).
#pragma once

#include <cstdint>

namespace tpp::ops {

// A contiguous input seen as [outer, reduce, inner]: the reduced extent sits
// between two kept blocks; the output is contiguous [outer, inner].
struct ReduceLayout {
  int64_t outer = 1, reduce = 1, inner = 1;
};

}  // namespace tpp::ops
