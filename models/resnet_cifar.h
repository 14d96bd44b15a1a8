// ResNet-20/32/56/110 for CIFAR (He et al. 2016, §4.2; TPP-METHOD §6.4):
// a 3×3 stem conv to 16 channels, three stages of n BasicBlocks with widths
// 16/32/64 (depth = 6n + 2), global average pooling and one linear layer.
// Shortcuts are option A: parameter-free subsampling plus zero channels.
// PyTorch's default init. State-dict keys as the common PyTorch CIFAR ResNet:
// conv1.weight, bn1.*, layer1.0.conv1.weight, ..., fc.weight, fc.bias.
#pragma once

#include "models/layers.h"

namespace tpp::models {

class CifarBasicBlock : public Module {
 public:
  // stride 2 (or a change of width) switches the option-A shortcut on.
  CifarBasicBlock(int64_t in_planes, int64_t planes, int64_t stride);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "CifarBasicBlock"; }

  std::shared_ptr<Conv2d> conv1;
  std::shared_ptr<BatchNorm2d> bn1;
  std::shared_ptr<Conv2d> conv2;
  std::shared_ptr<BatchNorm2d> bn2;

 private:
  // Option A: x[:, :, ::stride, ::stride], then zero channels split evenly
  // before and after (F.pad(..., (0, 0, 0, 0, before, after))).
  Tensor shortcut(const Tensor& x) const;

  int64_t stride_;
  bool project_;
  int64_t pad_before_, pad_after_;
};

class CifarResNet : public Module {
 public:
  // Stage widths `width`, 2·width, 4·width: 16/32/64 as in the paper (the
  // zoo's); narrower for small test fixtures.
  CifarResNet(int64_t depth, int64_t num_classes, int64_t in_channels = 3, int64_t width = 16);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "CifarResNet"; }

  std::shared_ptr<Conv2d> conv1;
  std::shared_ptr<BatchNorm2d> bn1;
  std::shared_ptr<Sequential> layer1, layer2, layer3;
  std::shared_ptr<Linear> fc;
};

}  // namespace tpp::models
