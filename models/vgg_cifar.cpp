#include "models/vgg_cifar.h"

#include "engine/autograd.h"
#include "engine/init.h"

namespace tpp::models {

std::vector<int64_t> CifarVgg::config(int64_t depth) {
  constexpr int64_t M = kMaxPool;
  switch (depth) {
    case 11: return {64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512};
    case 13: return {64, 64, M, 128, 128, M, 256, 256, M, 512, 512, M, 512, 512};
    case 16: return {64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512};
    case 19: return {64, 64, M, 128, 128, M, 256, 256, 256, 256, M, 512, 512, 512, 512, M, 512, 512, 512, 512};
    default: TPP_CHECK(false, "CifarVgg: depth must be 11, 13, 16 or 19, got {}", depth);
  }
  return {};
}

CifarVgg::CifarVgg(const std::vector<int64_t>& config, int64_t num_classes, int64_t in_channels) {
  features = register_module("features", std::make_shared<Sequential>());
  int64_t channels = in_channels;
  NoGradGuard no_grad;
  for (const int64_t width : config) {
    if (width == kMaxPool) {
      features->add(std::make_shared<MaxPool2d>(2, 2));
      continue;
    }
    auto conv = features->add(std::make_shared<Conv2d>(
        Conv2dSpec{.in_channels = channels, .out_channels = width, .kernel_size = 3, .padding = 1, .bias = false}));
    if (!init_skipped()) kaiming_normal_(conv->weight, FanMode::fan_in, "relu");
    features->add(std::make_shared<BatchNorm2d>(width));
    features->add(std::make_shared<ReLU>());
    channels = width;
  }
  classifier = register_module("classifier", std::make_shared<Linear>(channels, num_classes));
  if (!init_skipped()) kaiming_normal_(classifier->weight, FanMode::fan_in, "relu");
  classifier->bias.fill_(0);
}

Tensor CifarVgg::forward(const Tensor& x) { return (*classifier)(ops::global_avg_pool2d((*features)(x))); }

}  // namespace tpp::models
