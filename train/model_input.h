// What input a built model takes, read off the model itself (so it holds for
// a bare state_dict whose channels were inferred, and for pruned models).
#pragma once

#include <string>

#include "models/module.h"

namespace tpp::train {

struct ModelInput {
  std::string arch;
  int64_t channels = 0;
  bool fixed_resolution = false;  // true for models with a linear first layer (mlp7_linear: 32x32)
  int64_t height = 0, width = 0;  // when fixed_resolution
};

ModelInput model_input(models::Module& model, const std::string& arch);

}  // namespace tpp::train
