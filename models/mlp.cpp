#include "models/mlp.h"

namespace tpp::models {

Mlp::Mlp(int64_t in_features, int64_t num_classes, int64_t width, int64_t linear_layers) {
  TPP_CHECK(linear_layers >= 2, "Mlp: needs at least 2 linear layers, got {}", linear_layers);
  net = register_module("net", std::make_shared<Sequential>());
  net->add(std::make_shared<Linear>(in_features, width));
  net->add(std::make_shared<Identity>());
  for (int64_t i = 0; i < linear_layers - 2; ++i) {
    net->add(std::make_shared<Linear>(width, width));
    net->add(std::make_shared<Identity>());
  }
  net->add(std::make_shared<Linear>(width, num_classes));
}

Tensor Mlp::forward(const Tensor& x) { return (*net)(x.flatten(1)); }

}  // namespace tpp::models
