#include "models/resnet_cifar.h"

#include "ops/elementwise.h"
#include "ops/pad.h"

namespace tpp::models {

namespace {

std::shared_ptr<Conv2d> conv3x3(int64_t in, int64_t out, int64_t stride) {
  return std::make_shared<Conv2d>(
      Conv2dSpec{.in_channels = in, .out_channels = out, .kernel_size = 3, .stride = stride, .padding = 1, .bias = false});
}

}  // namespace

CifarBasicBlock::CifarBasicBlock(int64_t in_planes, int64_t planes, int64_t stride)
    : stride_(stride),
      project_(stride != 1 || in_planes != planes),
      pad_before_((planes - in_planes) / 2),
      pad_after_(planes - in_planes - (planes - in_planes) / 2) {
  TPP_CHECK(planes >= in_planes, "CifarBasicBlock: option-A shortcut cannot narrow {} to {} channels", in_planes,
            planes);
  conv1 = register_module("conv1", conv3x3(in_planes, planes, stride));
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(planes));
  conv2 = register_module("conv2", conv3x3(planes, planes, 1));
  bn2 = register_module("bn2", std::make_shared<BatchNorm2d>(planes));
}

Tensor CifarBasicBlock::shortcut(const Tensor& x) const {
  if (!project_) return x;
  const Tensor subsampled = x.slice(2, 0, x.size(2), stride_).slice(3, 0, x.size(3), stride_);
  return ops::constant_pad(subsampled, {0, 0, 0, 0, pad_before_, pad_after_});
}

Tensor CifarBasicBlock::forward(const Tensor& x) {
  if (may_fold_batch_norm(*conv1, *bn1, x))
    return conv_bn_inference(*conv2, *bn2, conv_bn_inference(*conv1, *bn1, x, true), true, shortcut(x));
  Tensor out = batch_norm_relu(*bn1, (*conv1)(x));
  out = (*bn2)((*conv2)(out));
  return ops::relu(ops::add(out, shortcut(x)));
}

CifarResNet::CifarResNet(int64_t depth, int64_t num_classes, int64_t in_channels, int64_t width) {
  TPP_CHECK(depth >= 8 && (depth - 2) % 6 == 0, "CifarResNet: depth must be 6n + 2 (20, 32, 56, 110), got {}", depth);
  TPP_CHECK(width > 0, "CifarResNet: width must be positive, got {}", width);
  const int64_t blocks_per_stage = (depth - 2) / 6;
  conv1 = register_module("conv1", conv3x3(in_channels, width, 1));
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(width));
  int64_t in_planes = width;
  const auto make_stage = [&](const char* name, int64_t planes, int64_t stride) {
    auto stage = register_module(name, std::make_shared<Sequential>());
    for (int64_t b = 0; b < blocks_per_stage; ++b) {
      stage->add(std::make_shared<CifarBasicBlock>(in_planes, planes, b == 0 ? stride : 1));
      in_planes = planes;
    }
    return stage;
  };
  layer1 = make_stage("layer1", width, 1);
  layer2 = make_stage("layer2", 2 * width, 2);
  layer3 = make_stage("layer3", 4 * width, 2);
  fc = register_module("fc", std::make_shared<Linear>(4 * width, num_classes));
}

Tensor CifarResNet::forward(const Tensor& x) {
  Tensor out = may_fold_batch_norm(*conv1, *bn1, x) ? conv_bn_inference(*conv1, *bn1, x, true)
                                                    : batch_norm_relu(*bn1, (*conv1)(x));
  out = (*layer3)((*layer2)((*layer1)(out)));
  return (*fc)(ops::global_avg_pool2d(out));
}

}  // namespace tpp::models
