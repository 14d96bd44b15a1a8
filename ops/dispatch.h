// Picks an op's kernel by the device of a tensor:
//   TPP_ON_DEVICE(x, relu_backward(y, dy, dx));
// calls ops::cuda::relu_backward(...) for CUDA tensors and ops::cpu::relu_backward(...)
// otherwise. CPU-only builds never make a CUDA tensor (storage refuses), so
// there the macro names the CPU kernel alone and the CUDA one need not exist.
// The CUDA kernels take the same arguments as the CPU ones wherever the work
// is the same; they are declared in ops/cuda/<op>.h.
#pragma once

#include "engine/tensor.h"

#if TPP_WITH_CUDA
#define TPP_ON_DEVICE(tensor, call) ((tensor).device().is_cuda() ? ::tpp::ops::cuda::call : ::tpp::ops::cpu::call)
#else
#define TPP_ON_DEVICE(tensor, call) (::tpp::ops::cpu::call)
#endif
