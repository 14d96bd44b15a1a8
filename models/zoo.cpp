#include "models/zoo.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <functional>

#include "engine/autograd.h"
#include "engine/init.h"
#include "engine/suggest.h"
#include "models/layers.h"
#include "models/mlp.h"
#include "models/resnet_cifar.h"
#include "models/resnet_imagenet.h"
#include "models/vgg_cifar.h"
#include "models/surgery.h"

namespace tpp::models {

namespace {

constexpr int64_t kMlpResolution = 32;

using Factory = std::function<std::shared_ptr<Module>(int64_t num_classes, int64_t in_channels)>;

struct Arch {
  std::string name;
  Factory make;
};

const std::vector<Arch>& archs() {
  static const std::vector<Arch> table = [] {
    std::vector<Arch> t;
    t.push_back({"mlp7_linear", [](int64_t classes, int64_t channels) {
                   return std::make_shared<Mlp>(channels * kMlpResolution * kMlpResolution, classes);
                 }});
    for (const int64_t depth : {20, 32, 56, 110})
      t.push_back({fmt::format("resnet{}", depth), [depth](int64_t classes, int64_t channels) {
                     return std::make_shared<CifarResNet>(depth, classes, channels);
                   }});
    for (const int64_t depth : {11, 13, 16, 19})
      t.push_back({fmt::format("vgg{}", depth), [depth](int64_t classes, int64_t channels) {
                     return std::make_shared<CifarVgg>(CifarVgg::config(depth), classes, channels);
                   }});
    t.push_back({"vgg_small", [](int64_t classes, int64_t channels) {
                   return std::make_shared<CifarVgg>(CifarVgg::small_config(), classes, channels);
                 }});
    t.push_back({"resnet18", [](int64_t classes, int64_t channels) {
                   return std::make_shared<ImageNetResNet>(BlockKind::basic, std::array<int64_t, 4>{2, 2, 2, 2},
                                                           classes, channels);
                 }});
    t.push_back({"resnet34", [](int64_t classes, int64_t channels) {
                   return std::make_shared<ImageNetResNet>(BlockKind::basic, std::array<int64_t, 4>{3, 4, 6, 3},
                                                           classes, channels);
                 }});
    t.push_back({"resnet50", [](int64_t classes, int64_t channels) {
                   return std::make_shared<ImageNetResNet>(BlockKind::bottleneck, std::array<int64_t, 4>{3, 4, 6, 3},
                                                           classes, channels);
                 }});
    return t;
  }();
  return table;
}

const Arch& find_arch(const std::string& name) {
  const auto& table = archs();
  const auto it = std::find_if(table.begin(), table.end(), [&](const Arch& a) { return a.name == name; });
  TPP_CHECK(it != table.end(), "{}", unknown_arch_text(name));
  return *it;
}

}  // namespace

std::string unknown_arch_text(const std::string& name) {
  return fmt::format("unknown arch '{}'; known archs: {}{}", name, fmt::join(known_archs(), ", "),
                     did_you_mean(name, known_archs()));
}

const std::vector<std::string>& known_archs() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const Arch& a : archs()) out.push_back(a.name);
    return out;
  }();
  return names;
}

std::shared_ptr<Module> make_model(const std::string& arch, int64_t num_classes, int64_t in_channels) {
  const Arch& a = find_arch(arch);
  TPP_CHECK(num_classes > 0 && in_channels > 0, "make_model: {} needs positive num_classes and in_channels, got {} and {}",
            arch, num_classes, in_channels);
  return a.make(num_classes, in_channels);
}

void initialize_weights(Module& model, const std::string& arch) {
  find_arch(arch);
  const bool vgg = arch.starts_with("vgg");
  const bool torchvision = arch == "resnet18" || arch == "resnet34" || arch == "resnet50";
  const NoGradGuard no_grad;
  for (auto& [name, module] : model.named_modules()) {
    if (auto* linear = dynamic_cast<Linear*>(module)) {
      reset_parameters(*linear);
      if (vgg) {
        kaiming_normal_(linear->weight, FanMode::fan_in, "relu");
        linear->bias.fill_(0);
      }
    } else if (auto* conv = dynamic_cast<Conv2d*>(module)) {
      reset_parameters(*conv);
      if (vgg) kaiming_normal_(conv->weight, FanMode::fan_in, "relu");
      if (torchvision) kaiming_normal_(conv->weight, FanMode::fan_out, "relu");
    } else if (auto* bn = dynamic_cast<BatchNorm2d*>(module)) {
      reset_parameters(*bn);
    }
  }
}

std::shared_ptr<Module> make_model_with_widths(const std::string& arch, int64_t num_classes, int64_t in_channels,
                                               const std::map<std::string, int64_t>& widths) {
  const std::shared_ptr<Module> model = [&] {
    const SkipInit values_come_later;
    return make_model(arch, num_classes, in_channels);
  }();
  apply_widths(*model, widths);
  initialize_weights(*model, arch);
  return model;
}

Shape model_input_shape(const std::string& arch, int64_t channels, int64_t resolution) {
  find_arch(arch);
  if (arch == "mlp7_linear") return {channels, kMlpResolution, kMlpResolution};
  return {channels, resolution, resolution};
}

}  // namespace tpp::models
