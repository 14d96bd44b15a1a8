// One kernel launch for an SGD step over many parameters of one GPU and dtype
// (CUDA builds only; nvcc-safe). The host describes each parameter by a slot
// of device pointers; the slots live in device memory and the grid's blocks
// walk (parameter, chunk) pairs, finding their parameter by binary search
// over the slots' first chunks. Same arithmetic as the CPU step in
// engine/optim.cpp (PyTorch's SGD, dampening 0), plus an optional mask.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "engine/dtype_core.h"

namespace tpp::cuda {

// Elements of a parameter that one block updates per chunk.
inline constexpr int64_t kSgdChunk = 4096;

// One parameter of a fused step; every pointer is device memory of the
// step's dtype.
struct SgdSlot {
  void* param = nullptr;
  const void* grad = nullptr;     // contiguous, param's shape
  void* buffer = nullptr;         // momentum buffer; null when momentum is 0
  const void* mask = nullptr;     // param's shape and dtype, 0 = pruned; null = none
  int64_t numel = 0;              // > 0
  int64_t first_chunk = 0;        // the chunks of all earlier slots
  int64_t first_step = 0;         // 1: the buffer starts as this step's direction
};

struct SgdHyper {
  double lr = 0, momentum = 0, weight_decay = 0;
  bool nesterov = false;
};

// The chunks a parameter of numel elements takes.
inline int64_t sgd_chunks(int64_t numel) { return (numel + kSgdChunk - 1) / kSgdChunk; }

// Per element of every slot (masked elements: param = 0, buffer = 0, no step):
//   d = grad + weight_decay * param
//   buffer = first_step ? d : momentum * buffer + d;  d = nesterov ? d + momentum * buffer : buffer
//   param -= lr * d
// `slots` is a device array of slot_count slots; total_chunks is the sum of
// their sgd_chunks. f32 or f64.
void launch_fused_sgd(const SgdSlot* slots, int64_t slot_count, int64_t total_chunks, DType dtype,
                      const SgdHyper& hyper, cudaStream_t stream);

}  // namespace tpp::cuda
