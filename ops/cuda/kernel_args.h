// Checks on the tensors that the Tensor-level CUDA entry points of ops/cuda
// hand to kernels as raw pointers (CUDA builds only).
#pragma once

#include <string_view>

#include "engine/tensor.h"

namespace tpp::ops::cuda {

// A tensor a kernel reads or writes through a raw pointer: contiguous, on
// `device`, of `dtype`. Undefined tensors pass (optional operands); the ops
// decide which ones must exist.
void check_kernel_arg(std::string_view op, std::string_view what, const Tensor& t, Device device, DType dtype);

// The device pointer of an optional operand, or nullptr.
inline void* data_or_null(const Tensor& t) { return t.defined() ? t.raw_data() : nullptr; }

}  // namespace tpp::ops::cuda
