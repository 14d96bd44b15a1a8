// SGD with momentum as PyTorch defines it (dampening 0):
//   g = grad + weight_decay * p
//   buf = g on the first step, else momentum * buf + g
//   step = nesterov ? g + momentum * buf : buf
//   p -= lr * step
// An optional mask per parameter (pruning) freezes its zero entries: there
// the parameter is set to 0 and its momentum to 0 at every step.
// Parameters on a GPU are updated by one fused kernel launch per step (per
// device and dtype; engine/cuda/fused_sgd.h) with the same arithmetic.
#pragma once

#include <memory>
#include <vector>

#include "engine/tensor.h"

namespace tpp {

class FusedSgdCache;  // the GPU step's slot arrays (CUDA builds)

struct SgdOptions {
  double lr = 0.1;
  double momentum = 0;
  double weight_decay = 0;
  bool nesterov = false;
};

class Sgd {
 public:
  Sgd(std::vector<Tensor> params, SgdOptions opts);

  // Updates every parameter that has a gradient; parameters without one are
  // left alone, as in PyTorch.
  void step();
  void zero_grad();
  void set_lr(double lr) { opts_.lr = lr; }
  double lr() const { return opts_.lr; }
  const SgdOptions& options() const { return opts_; }
  const std::vector<Tensor>& params() const { return params_; }
  // One buffer per parameter; undefined until that parameter's first step.
  const std::vector<Tensor>& momentum_buffers() const { return momentum_; }
  // Restores buffer `index` as saved from momentum_buffers() (resuming a run);
  // its shape and dtype must match the parameter's. The value is copied.
  void set_momentum_buffer(size_t index, const Tensor& buffer);
  // Masks parameter `index` from the next step on: where `mask` (u8 or
  // floating, broadcastable to the parameter's shape) is 0, the parameter is
  // set to 0 and receives no update. An undefined mask removes it. The mask
  // is copied (to the parameter's device and dtype).
  void set_mask(size_t index, const Tensor& mask);
  // One per parameter, undefined where none is set.
  const std::vector<Tensor>& masks() const { return masks_; }

 private:
  struct Update {
    size_t index;
    Tensor grad;  // contiguous
    bool first_step;
  };
  void step_on_gpu(const std::vector<Update>& updates);

  std::vector<Tensor> params_;
  std::vector<Tensor> momentum_;
  std::vector<Tensor> masks_;
  SgdOptions opts_;
  std::shared_ptr<FusedSgdCache> fused_cache_;  // made on the first GPU step
};

}  // namespace tpp
