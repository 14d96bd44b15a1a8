// A freshly initialised zoo model saved as a checkpoint, for the command tests.
#pragma once

#include <filesystem>
#include <string>

#include "engine/philox.h"
#include "models/checkpoint.h"
#include "models/zoo.h"

namespace tpp::testing {

// `arch` for 10 classes and `channels`-channel images, its metadata naming
// `dataset`, saved as <dir>/<arch>.safetensors.
inline std::filesystem::path save_zoo_model(const std::filesystem::path& dir, const std::string& arch,
                                            int64_t channels, const std::string& dataset, uint64_t seed) {
  manual_seed(seed);
  const auto net = models::make_model(arch, 10, channels);
  const auto path = dir / (arch + ".safetensors");
  models::save_checkpoint(path, *net, {.arch = arch, .dataset = dataset, .num_classes = 10, .in_channels = channels});
  return path;
}

}  // namespace tpp::testing
