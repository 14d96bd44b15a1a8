// The model zoo: every architecture of the paper by name.
//
//   mlp7_linear                         MLP-7-Linear (MNIST at 32×32)
//   resnet20, resnet32, resnet56, resnet110   CIFAR ResNets, option-A shortcuts
//   vgg11, vgg13, vgg16, vgg19          CIFAR VGGs with BN
//   vgg_small                           three conv+BN+ReLU layers (32, 64, 128) for quick CPU runs
//   resnet18, resnet34, resnet50        ImageNet ResNets (torchvision)
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "models/module.h"

namespace tpp::models {

// The names make_model() accepts, in the order above.
const std::vector<std::string>& known_archs();
// "unknown arch 'resnt20'; known archs: ...; did you mean 'resnet20'?"
std::string unknown_arch_text(const std::string& name);

// A freshly initialised model taking `in_channels`-channel images and giving
// `num_classes` logits. An unknown arch throws tpp::Error listing the known.
std::shared_ptr<Module> make_model(const std::string& arch, int64_t num_classes, int64_t in_channels = 3);

// Fresh weights for every layer of `model` (an `arch` of the zoo, possibly
// narrowed), drawn as make_model() draws them but at the layers' present
// shapes: the "scratch" baseline trains a pruned architecture from here.
void initialize_weights(Module& model, const std::string& arch);

// make_model(), narrowed to `widths` (apply_widths), then initialise_weights().
std::shared_ptr<Module> make_model_with_widths(const std::string& arch, int64_t num_classes, int64_t in_channels,
                                               const std::map<std::string, int64_t>& widths);

// The input of one sample, [C, H, W], that `arch` takes for a dataset of
// C×resolution×resolution images: the dataset's own resolution for the CNNs,
// 32×32 for mlp7_linear (whose first layer has C·32·32 inputs; the data
// pipeline resizes MNIST to 32×32 for it).
Shape model_input_shape(const std::string& arch, int64_t channels, int64_t resolution);

}  // namespace tpp::models
