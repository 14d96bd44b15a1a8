// Flat arenas: every parameter of a model packed into one allocation and
// every gradient into another. The optimizer then updates the whole model in
// one loop (one launch on CUDA), an all-reduce sees one buffer, and a
// checkpoint is one contiguous write. Parameter handles held by layers stay
// valid: their TensorImpls are re-pointed into the arena, not replaced.
// Re-pack after anything that changes parameter shapes (pruning surgery).
#pragma once

#include "models/module.h"

namespace tpp::models {

struct ParameterArena {
  Tensor params;  // 1-d, every parameter back to back (each start 64-byte aligned); a leaf whose grad is `grads`
  Tensor grads;   // 1-d, same layout; each parameter's .grad is a view into it
  NamedTensors views;  // (name, parameter) in arena order
};

// Packs the parameters of `model` (all of one floating dtype). Values are
// preserved; gradients start at zero.
ParameterArena pack_parameters(Module& model);

// True when `param` lives inside `arena`.
bool in_arena(const ParameterArena& arena, const Tensor& param);

}  // namespace tpp::models
