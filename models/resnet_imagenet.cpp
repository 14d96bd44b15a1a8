#include "models/resnet_imagenet.h"

#include "engine/autograd.h"
#include "engine/init.h"
#include "ops/elementwise.h"

namespace tpp::models {

namespace {

std::shared_ptr<Conv2d> conv(int64_t in, int64_t out, int64_t kernel, int64_t stride) {
  return std::make_shared<Conv2d>(Conv2dSpec{.in_channels = in,
                                             .out_channels = out,
                                             .kernel_size = kernel,
                                             .stride = stride,
                                             .padding = kernel / 2,
                                             .bias = false});
}

// torchvision adds a projection when the block changes resolution or width.
std::shared_ptr<Sequential> make_downsample(int64_t in_planes, int64_t out_planes, int64_t stride) {
  if (stride == 1 && in_planes == out_planes) return nullptr;
  auto downsample = std::make_shared<Sequential>();
  downsample->add(conv(in_planes, out_planes, 1, stride));
  downsample->add(std::make_shared<BatchNorm2d>(out_planes));
  return downsample;
}

}  // namespace

BasicBlock::BasicBlock(int64_t in_planes, int64_t planes, int64_t stride) {
  conv1 = register_module("conv1", conv(in_planes, planes, 3, stride));
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(planes));
  relu = register_module("relu", std::make_shared<ReLU>());
  conv2 = register_module("conv2", conv(planes, planes, 3, 1));
  bn2 = register_module("bn2", std::make_shared<BatchNorm2d>(planes));
  if (auto projection = make_downsample(in_planes, planes * kExpansion, stride))
    downsample = register_module("downsample", projection);
}

// The shortcut runs after the main path, as in torchvision, so that layers
// execute in the order TPP's per-layer schedules count them.
Tensor BasicBlock::forward(const Tensor& x) {
  Tensor out = (*relu)((*bn1)((*conv1)(x)));
  out = (*bn2)((*conv2)(out));
  const Tensor identity = downsample ? (*downsample)(x) : x;
  return (*relu)(ops::add(out, identity));
}

Bottleneck::Bottleneck(int64_t in_planes, int64_t planes, int64_t stride) {
  conv1 = register_module("conv1", conv(in_planes, planes, 1, 1));
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(planes));
  conv2 = register_module("conv2", conv(planes, planes, 3, stride));
  bn2 = register_module("bn2", std::make_shared<BatchNorm2d>(planes));
  conv3 = register_module("conv3", conv(planes, planes * kExpansion, 1, 1));
  bn3 = register_module("bn3", std::make_shared<BatchNorm2d>(planes * kExpansion));
  relu = register_module("relu", std::make_shared<ReLU>());
  if (auto projection = make_downsample(in_planes, planes * kExpansion, stride))
    downsample = register_module("downsample", projection);
}

Tensor Bottleneck::forward(const Tensor& x) {
  Tensor out = (*relu)((*bn1)((*conv1)(x)));
  out = (*relu)((*bn2)((*conv2)(out)));
  out = (*bn3)((*conv3)(out));
  const Tensor identity = downsample ? (*downsample)(x) : x;
  return (*relu)(ops::add(out, identity));
}

ImageNetResNet::ImageNetResNet(BlockKind kind, const std::array<int64_t, 4>& blocks_per_stage, int64_t num_classes,
                               int64_t in_channels) {
  conv1 = register_module("conv1", conv(in_channels, 64, 7, 2));
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(64));
  relu = register_module("relu", std::make_shared<ReLU>());
  maxpool = register_module("maxpool", std::make_shared<MaxPool2d>(3, 2, 1));

  const int64_t expansion = kind == BlockKind::basic ? BasicBlock::kExpansion : Bottleneck::kExpansion;
  int64_t in_planes = 64;
  const auto make_stage = [&](const char* name, int64_t planes, int64_t blocks, int64_t stride) {
    TPP_CHECK(blocks > 0, "ImageNetResNet: {} needs at least one block, got {}", name, blocks);
    auto stage = register_module(name, std::make_shared<Sequential>());
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t block_stride = b == 0 ? stride : 1;
      if (kind == BlockKind::basic)
        stage->add(std::make_shared<BasicBlock>(in_planes, planes, block_stride));
      else
        stage->add(std::make_shared<Bottleneck>(in_planes, planes, block_stride));
      in_planes = planes * expansion;
    }
    return stage;
  };
  layer1 = make_stage("layer1", 64, blocks_per_stage[0], 1);
  layer2 = make_stage("layer2", 128, blocks_per_stage[1], 2);
  layer3 = make_stage("layer3", 256, blocks_per_stage[2], 2);
  layer4 = make_stage("layer4", 512, blocks_per_stage[3], 2);
  avgpool = register_module("avgpool", std::make_shared<GlobalAvgPool2d>());
  fc = register_module("fc", std::make_shared<Linear>(512 * expansion, num_classes));

  if (init_skipped()) return;
  NoGradGuard no_grad;
  for (auto& [name, module] : named_modules())
    if (auto* c = dynamic_cast<Conv2d*>(module)) kaiming_normal_(c->weight, FanMode::fan_out, "relu");
}

Tensor ImageNetResNet::forward(const Tensor& x) {
  Tensor out = (*maxpool)((*relu)((*bn1)((*conv1)(x))));
  out = (*layer4)((*layer3)((*layer2)((*layer1)(out))));
  return (*fc)((*avgpool)(out));
}

}  // namespace tpp::models
