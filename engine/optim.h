// SGD with momentum as PyTorch defines it (dampening 0):
//   g = grad + weight_decay * p
//   buf = g on the first step, else momentum * buf + g
//   step = nesterov ? g + momentum * buf : buf
//   p -= lr * step
#pragma once

#include <vector>

#include "engine/tensor.h"

namespace tpp {

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

 private:
  std::vector<Tensor> params_;
  std::vector<Tensor> momentum_;
  SgdOptions opts_;
};

}  // namespace tpp
