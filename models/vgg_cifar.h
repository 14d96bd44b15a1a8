// VGG-11/13/16/19 with BN for CIFAR (vgg*_C of EigenDamage; TPP-METHOD §6.4):
// `features` is a Sequential of [Conv2d 3×3 pad 1 without bias, BatchNorm2d,
// ReLU] per conv and MaxPool2d(2, 2) per "M" of the standard VGG configs,
// with the final pool removed; then global average pooling and one Linear
// `classifier`. Init: Kaiming-normal (fan_in, gain √2) on conv and linear
// weights, zero biases, BN γ = 1 and β = 0.
#pragma once

#include <vector>

#include "models/layers.h"

namespace tpp::models {

class CifarVgg : public Module {
 public:
  static constexpr int64_t kMaxPool = 0;  // the "M" entry of a config

  // Standard config for depth 11, 13, 16 or 19 (without the final pool).
  static std::vector<int64_t> config(int64_t depth);
  // vgg_small: 32, M, 64, M, 128 — a CNN with BN that trains in about a
  // minute an epoch on Fashion-MNIST on two CPU cores (quickstart, tests).
  static std::vector<int64_t> small_config() { return {32, kMaxPool, 64, kMaxPool, 128}; }

  // `config` lists conv widths and kMaxPool entries.
  CifarVgg(const std::vector<int64_t>& config, int64_t num_classes, int64_t in_channels = 3);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "CifarVgg"; }

  std::shared_ptr<Sequential> features;
  std::shared_ptr<Linear> classifier;
};

}  // namespace tpp::models
