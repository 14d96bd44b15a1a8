// `tpp list [archs|datasets|methods]`: what the other commands accept for
// --arch, --dataset and --method, one line each.
#include <fmt/format.h>

#include <map>

#include "apps/commands.h"
#include "apps/usage.h"
#include "data/catalog.h"
#include "engine/error.h"
#include "models/zoo.h"
#include "prune/method.h"

namespace tpp::apps {

namespace {

using Entries = std::vector<std::pair<std::string, std::string>>;

std::string arch_description(const std::string& arch) {
  static const std::map<std::string, std::string> lines = {
      {"mlp7_linear", "7-layer linear MLP on 32x32 images (the paper's exact-JSV toy, §8.3)"},
      {"resnet20", "CIFAR ResNet, 20 layers (3 stages of basic blocks, 16-32-64 filters)"},
      {"resnet32", "CIFAR ResNet, 32 layers"},
      {"resnet56", "CIFAR ResNet, 56 layers (the paper's main CIFAR-10 model)"},
      {"resnet110", "CIFAR ResNet, 110 layers"},
      {"vgg11", "CIFAR VGG-11 with batch norm"},
      {"vgg13", "CIFAR VGG-13 with batch norm"},
      {"vgg16", "CIFAR VGG-16 with batch norm"},
      {"vgg19", "CIFAR VGG-19 with batch norm (the paper's CIFAR-100 model)"},
      {"vgg_small", "small VGG with batch norm, for quick runs on Fashion-MNIST or CIFAR"},
      {"resnet18", "ImageNet ResNet-18 (basic blocks)"},
      {"resnet34", "ImageNet ResNet-34 (basic blocks)"},
      {"resnet50", "ImageNet ResNet-50 (bottleneck blocks; the paper's ImageNet model)"}};
  const auto it = lines.find(arch);
  return it == lines.end() ? std::string("zoo model") : it->second;
}

Entries archs() {
  Entries out;
  for (const std::string& arch : models::known_archs()) out.emplace_back(arch, arch_description(arch));
  return out;
}

Entries datasets() {
  return {{"mnist", "handwritten digits, 28x28 grey, 10 classes, 60k/10k images"},
          {"fashion-mnist", "clothing, 28x28 grey, 10 classes, 60k/10k (Debian: dataset-fashion-mnist)"},
          {"cifar10", "32x32 colour, 10 classes, 50k/10k (the binary version)"},
          {"cifar100", "32x32 colour, 100 classes (or 20 superclasses), 50k/10k"},
          {"imagenet", "ILSVRC-2012 as train/ and val/ folders of class folders, 1000 classes"},
          {"imagefolder:<path>", "any folder of split/class/image files (PNG or JPEG)"}};
}

Entries methods() {
  static const std::map<std::string, std::string> lines = {
      {"tpp", "Trainability Preserving Pruning: regularise (gram + L2 + BN, growing lambda), remove, retrain"},
      {"l1", "remove the smallest-L1 filters, retrain"},
      {"l1+orthp", "l1, then OrthP (orthogonal weights) right after removal"},
      {"l1+kernorth", "l1, retraining with KernOrth added to the loss"},
      {"l1+orthconv", "l1, retraining with OrthConv added to the loss"},
      {"kernorth+l1", "train the dense model with KernOrth first, then l1"},
      {"orthconv+l1", "train the dense model with OrthConv first, then l1"},
      {"scratch", "the pruned widths, freshly initialised, trained from scratch"}};
  Entries out;
  for (const prune::Method& m : prune::known_methods()) {
    const auto it = lines.find(m.name);
    out.emplace_back(m.name, it == lines.end() ? std::string("pruning method") : it->second);
  }
  return out;
}

void print_group(const std::string& title, const Entries& entries, bool heading) {
  size_t width = 0;
  for (const auto& [name, line] : entries) width = std::max(width, name.size());
  if (heading) fmt::print("{}:\n", title);
  for (const auto& [name, line] : entries) fmt::print("{}{:<{}}  {}\n", heading ? "  " : "", name, width, line);
}

int run_list(const std::string& what) {
  const std::vector<std::pair<std::string, Entries>> groups = {
      {"archs", archs()}, {"datasets", datasets()}, {"methods", methods()}};
  bool first = true;
  for (const auto& [title, entries] : groups) {
    if (!what.empty() && what != title) continue;
    if (!first) fmt::print("\n");
    print_group(title, entries, what.empty());
    first = false;
  }
  return 0;
}

}  // namespace

CLI::App* add_list_command(CLI::App& app) {
  auto what = std::make_shared<std::string>();
  CLI::App* sub = app.add_subcommand("list", "The archs, datasets and pruning methods the commands accept");
  sub->add_option("what", *what, "archs, datasets or methods (default: all three)")
      ->check(one_of({"archs", "datasets", "methods"}));
  sub->footer("Examples:\n  tpp list\n  tpp list archs");
  register_command(sub, [what] { return run_list(*what); });
  return sub;
}

}  // namespace tpp::apps
