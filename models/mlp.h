// MLP-7-Linear (TPP-METHOD §8.1): 7 linear layers with biases and Identity
// "activations" between them, no non-linearity, PyTorch's default init.
// Module names follow the reference FCNet: net.0, net.1 (Identity), net.2,
// ..., net.12.
#pragma once

#include "models/layers.h"

namespace tpp::models {

class Mlp : public Module {
 public:
  // Linear in_features→width, (linear_layers − 2) × Linear width→width,
  // Linear width→num_classes. The input is flattened from dim 1 first, so
  // [N, 1, 32, 32] and [N, 1024] are both accepted.
  Mlp(int64_t in_features, int64_t num_classes, int64_t width = 100, int64_t linear_layers = 7);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Mlp"; }

  std::shared_ptr<Sequential> net;
};

}  // namespace tpp::models
