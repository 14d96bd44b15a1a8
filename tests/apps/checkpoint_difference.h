// How far apart two checkpoints are: for the tests that run the same training
// two ways (two ranks against one process, the GPU against the CPU).
#pragma once

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>

#include "engine/safetensors.h"

namespace tpp::testing {

// The largest |a - b| / (1 + |b|) over every floating tensor of two
// checkpoints (weights, BN statistics, momentum buffers): an absolute
// difference for values up to 1, relative above; infinite when their tensors
// differ in names or shapes. `where` names the tensor.
inline double max_difference(const std::filesystem::path& a, const std::filesystem::path& b,
                             std::string* where = nullptr) {
  const auto fa = load_safetensors(a), fb = load_safetensors(b);
  if (fa.tensors.size() != fb.tensors.size()) return INFINITY;
  double worst = 0;
  for (const auto& [name, t] : fa.tensors) {
    const auto it = fb.tensors.find(name);
    if (it == fb.tensors.end() || it->second.sizes() != t.sizes() || it->second.dtype() != t.dtype())
      return INFINITY;
    if (!is_floating(t.dtype()) || name == "train.best_test_acc") continue;
    const auto x = t.to(DType::f64).to_vector<double>(), y = it->second.to(DType::f64).to_vector<double>();
    for (size_t i = 0; i < x.size(); ++i) {
      const double diff = std::abs(x[i] - y[i]) / (1 + std::abs(y[i]));
      if (diff > worst && where) *where = name;
      worst = std::max(worst, diff);
    }
  }
  return worst;
}

}  // namespace tpp::testing
