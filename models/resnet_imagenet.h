// ResNet-18/34/50 for ImageNet with torchvision's structure, module names and
// init: conv1 7×7/2, bn1, relu, maxpool 3/2/1, layer1..layer4, avgpool, fc.
// Blocks are BasicBlock (18/34) or Bottleneck (50, "v1.5": the stride sits on
// the 3×3 conv2); a projection shortcut is `downsample` = Sequential(1×1 conv,
// BN). Convs get Kaiming-normal (fan_out, ReLU gain), BN γ = 1, β = 0, fc
// PyTorch's default init. The stem takes `in_channels` (1 for Fashion-MNIST).
#pragma once

#include <array>

#include "models/layers.h"

namespace tpp::models {

class BasicBlock : public Module {
 public:
  static constexpr int64_t kExpansion = 1;
  BasicBlock(int64_t in_planes, int64_t planes, int64_t stride);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "BasicBlock"; }

  std::shared_ptr<Conv2d> conv1;
  std::shared_ptr<BatchNorm2d> bn1;
  std::shared_ptr<ReLU> relu;
  std::shared_ptr<Conv2d> conv2;
  std::shared_ptr<BatchNorm2d> bn2;
  std::shared_ptr<Sequential> downsample;  // null for an identity shortcut
};

class Bottleneck : public Module {
 public:
  static constexpr int64_t kExpansion = 4;
  Bottleneck(int64_t in_planes, int64_t planes, int64_t stride);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Bottleneck"; }

  std::shared_ptr<Conv2d> conv1;  // 1×1, in_planes → planes
  std::shared_ptr<BatchNorm2d> bn1;
  std::shared_ptr<Conv2d> conv2;  // 3×3 with the stride
  std::shared_ptr<BatchNorm2d> bn2;
  std::shared_ptr<Conv2d> conv3;  // 1×1, planes → 4·planes
  std::shared_ptr<BatchNorm2d> bn3;
  std::shared_ptr<ReLU> relu;
  std::shared_ptr<Sequential> downsample;  // null for an identity shortcut
};

enum class BlockKind { basic, bottleneck };

class ImageNetResNet : public Module {
 public:
  // blocks_per_stage: {2, 2, 2, 2} for ResNet-18, {3, 4, 6, 3} for 34 and 50.
  ImageNetResNet(BlockKind kind, const std::array<int64_t, 4>& blocks_per_stage, int64_t num_classes,
                 int64_t in_channels = 3);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "ImageNetResNet"; }

  std::shared_ptr<Conv2d> conv1;
  std::shared_ptr<BatchNorm2d> bn1;
  std::shared_ptr<ReLU> relu;
  std::shared_ptr<MaxPool2d> maxpool;
  std::shared_ptr<Sequential> layer1, layer2, layer3, layer4;
  std::shared_ptr<GlobalAvgPool2d> avgpool;
  std::shared_ptr<Linear> fc;
};

}  // namespace tpp::models
