// Layer links from the traced data flow, and filter removal: a model that
// loses filters computes what the full model computes with those filters
// (and their BN γ, β) set to zero.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "engine/autograd.h"
#include "engine/philox.h"
#include "models/layers.h"
#include "models/summary.h"
#include "models/surgery.h"
#include "models/zoo.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "ops/softmax.h"

using namespace tpp;
using namespace tpp::models;

namespace {

std::map<std::string, LayerLink> links_by_name(Module& model) {
  std::map<std::string, LayerLink> out;
  for (LayerLink& link : trace_layer_links(model)) out.emplace(link.name, link);
  return out;
}

Module& module_named(Module& model, const std::string& name) {
  for (auto& [n, m] : model.named_modules())
    if (n == name) return *m;
  FAIL("no module " << name);
  return model;
}

// BN running statistics and affine values away from their defaults, so that
// eval-mode outputs depend on every one of them.
void randomize_batch_norms(Module& model, uint64_t seed) {
  Generator gen(seed);
  NoGradGuard no_grad;
  for (auto& [name, m] : model.named_modules())
    if (auto* bn = dynamic_cast<BatchNorm2d*>(m)) {
      const Shape c{bn->running_mean.numel()};
      bn->running_mean.copy_(randn(c, {}, &gen));
      bn->running_var.copy_(uniform(c, 0.5, 1.5, {}, &gen));
      bn->weight.copy_(uniform(c, 0.5, 1.5, {}, &gen));
      bn->bias.copy_(uniform(c, -0.5, 0.5, {}, &gen));
    }
}

std::vector<int64_t> random_subset(int64_t n, int64_t k, std::mt19937& rng) {
  std::vector<int64_t> all(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) all[static_cast<size_t>(i)] = i;
  std::shuffle(all.begin(), all.end(), rng);
  all.resize(static_cast<size_t>(k));
  std::sort(all.begin(), all.end());
  return all;
}

Tensor as_index(const std::vector<int64_t>& ids) {
  return from_vector<int64_t>(ids, {static_cast<int64_t>(ids.size())});
}

void zero_rows(const Tensor& t, const std::vector<int64_t>& rows) {
  if (!t.defined()) return;
  for (const int64_t r : rows) t.select(0, r).fill_(0);
}

// Zeroes the filters `layer` will lose, with their BN γ and β, and returns
// the kept indices of every prunable layer (about half of each).
std::map<std::string, Tensor> zero_half_of_prunable(Module& model, uint64_t seed) {
  std::mt19937 rng(static_cast<unsigned>(seed));
  std::map<std::string, Tensor> kept;
  NoGradGuard no_grad;
  for (const LayerLink& link : trace_layer_links(model)) {
    if (!link.prunable()) continue;
    Module& m = module_named(model, link.name);
    const Tensor weight = dynamic_cast<Conv2d*>(&m) ? dynamic_cast<Conv2d&>(m).weight : dynamic_cast<Linear&>(m).weight;
    const Tensor bias = dynamic_cast<Conv2d*>(&m) ? dynamic_cast<Conv2d&>(m).bias : dynamic_cast<Linear&>(m).bias;
    const int64_t n = weight.size(0);
    const std::vector<int64_t> keep = random_subset(n, std::max<int64_t>(1, n / 2 - 1), rng);
    std::vector<int64_t> drop;
    for (int64_t i = 0; i < n; ++i)
      if (!std::binary_search(keep.begin(), keep.end(), i)) drop.push_back(i);
    zero_rows(weight, drop);
    zero_rows(bias, drop);
    for (const std::string& bn_name : link.batch_norms) {
      auto& bn = dynamic_cast<BatchNorm2d&>(module_named(model, bn_name));
      zero_rows(bn.weight, drop);
      zero_rows(bn.bias, drop);
    }
    kept.emplace(link.name, as_index(keep));
  }
  return kept;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  const std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  double d = 0;
  for (size_t i = 0; i < x.size(); ++i) d = std::max(d, std::abs(x[i] - y[i]));
  return d;
}

double max_abs(const Tensor& a) {
  double m = 0;
  for (const double v : a.to_vector<double>()) m = std::max(m, std::abs(v));
  return m;
}

// Removal of half the filters of every prunable layer leaves the eval-mode
// logits of the zeroed model unchanged.
void check_lossless_removal(const std::string& arch, int64_t classes, int64_t channels, const Shape& input) {
  auto model = make_model(arch, classes, channels);
  randomize_batch_norms(*model, 7);
  const auto kept = zero_half_of_prunable(*model, 11);
  REQUIRE(!kept.empty());
  model->eval();
  const Tensor x = randn(input);
  Tensor before, after;
  {
    NoGradGuard no_grad;
    before = (*model)(x);
  }
  const auto widths_before = layer_widths(*model);
  keep_filters(*model, kept);
  {
    NoGradGuard no_grad;
    after = (*model)(x);
  }
  for (const auto& [layer, index] : kept) CHECK(layer_widths(*model).at(layer) == index.numel());
  CHECK(layer_widths(*model) != widths_before);
  CHECK(max_abs_diff(before, after) <= 1e-4 * std::max(1.0, max_abs(before)));
}

// conv -> BN -> ReLU -> flatten of the whole 4×32×32 map -> linear.
class FlattenNet : public Module {
 public:
  FlattenNet() {
    conv = register_module("conv", std::make_shared<Conv2d>(Conv2dSpec{
                                       .in_channels = 1, .out_channels = 4, .kernel_size = 3, .padding = 1}));
    bn = register_module("bn", std::make_shared<BatchNorm2d>(4));
    fc = register_module("fc", std::make_shared<Linear>(4 * 32 * 32, 3));
  }
  Tensor forward(const Tensor& x) override { return (*fc)(ops::relu((*bn)((*conv)(x))).flatten(1)); }
  std::string type_name() const override { return "FlattenNet"; }
  std::shared_ptr<Conv2d> conv;
  std::shared_ptr<BatchNorm2d> bn;
  std::shared_ptr<Linear> fc;
};

// conv -> softmax over channels -> conv: the softmax mixes the channels.
class ChannelSoftmaxNet : public Module {
 public:
  ChannelSoftmaxNet() {
    a = register_module("a",
                        std::make_shared<Conv2d>(Conv2dSpec{.in_channels = 3, .out_channels = 4, .kernel_size = 1}));
    b = register_module("b",
                        std::make_shared<Conv2d>(Conv2dSpec{.in_channels = 4, .out_channels = 2, .kernel_size = 1}));
  }
  Tensor forward(const Tensor& x) override { return ops::global_avg_pool2d((*b)(ops::softmax((*a)(x), 1))); }
  std::string type_name() const override { return "ChannelSoftmaxNet"; }
  std::shared_ptr<Conv2d> a, b;
};

}  // namespace

TEST_SUITE("models") {
  TEST_CASE("layer_widths: out channels of every conv and linear layer of resnet20") {
    auto model = make_model("resnet20", 10);
    const auto widths = layer_widths(*model);
    CHECK(widths.size() == 20);
    CHECK(widths.at("conv1") == 16);
    CHECK(widths.at("layer2.0.conv1") == 32);
    CHECK(widths.at("layer3.2.conv2") == 64);
    CHECK(widths.at("fc") == 10);
  }

  TEST_CASE("trace_layer_links: resnet20 block conv1 feeds conv2 through bn1, stem, conv2 and fc are refused") {
    auto model = make_model("resnet20", 10);
    const auto links = trace_layer_links(*model);
    REQUIRE(links.size() == 20);
    CHECK(links[0].name == "conv1");
    CHECK(links[1].name == "layer1.0.conv1");
    CHECK(links[17].name == "layer3.2.conv1");
    CHECK(links[19].name == "fc");
    for (size_t i = 0; i < links.size(); ++i) CHECK(links[i].exec_index == static_cast<int64_t>(i));

    const LayerLink& conv1 = links[1];
    CHECK(conv1.prunable());
    CHECK(conv1.batch_norms == std::vector<std::string>{"layer1.0.bn1"});
    CHECK(conv1.consumers == std::vector<std::string>{"layer1.0.conv2"});
    CHECK(conv1.features_per_channel == 1);

    CHECK(links[0].refusal == "its output feeds a residual sum ('add')");
    CHECK(links[2].refusal == "its output feeds a residual sum ('add')");
    CHECK(links[19].refusal == "its output channels are the model's outputs");
  }

  TEST_CASE("trace_layer_links: resnet56's last block conv1 is layer 53 in forward order") {
    const SkipInit no_values;
    auto model = make_model("resnet56", 10);
    const auto links = links_by_name(*model);
    CHECK(links.at("layer3.8.conv1").exec_index == 53);
    CHECK(links.at("fc").exec_index == 55);
  }

  TEST_CASE("trace_layer_links: vgg11 convs feed the next conv across max-pools, the last one feeds the classifier") {
    const SkipInit no_values;
    auto model = make_model("vgg11", 100);
    const auto links = trace_layer_links(*model);
    REQUIRE(links.size() == 9);
    CHECK(links[0].name == "features.0");
    CHECK(links[0].consumers == std::vector<std::string>{"features.4"});  // 0 conv, 1 BN, 2 ReLU, 3 pool
    CHECK(links[0].batch_norms == std::vector<std::string>{"features.1"});
    CHECK(links[7].consumers == std::vector<std::string>{"classifier"});
    CHECK(links[7].features_per_channel == 1);
    CHECK(links[8].name == "classifier");
    CHECK_FALSE(links[8].prunable());
  }

  TEST_CASE("trace_layer_links: resnet50 conv1 -> conv2 -> conv3 in a Bottleneck, conv3 and downsample feed the sum") {
    const SkipInit no_values;
    auto model = make_model("resnet50", 1000);
    const auto links = trace_layer_links(*model);
    std::map<std::string, LayerLink> by_name;
    for (const LayerLink& l : links) by_name.emplace(l.name, l);
    CHECK(by_name.at("layer1.0.conv1").consumers == std::vector<std::string>{"layer1.0.conv2"});
    CHECK(by_name.at("layer1.0.conv2").consumers == std::vector<std::string>{"layer1.0.conv3"});
    CHECK(by_name.at("layer1.0.conv2").batch_norms == std::vector<std::string>{"layer1.0.bn2"});
    CHECK(by_name.at("layer1.0.conv3").refusal == "its output feeds a residual sum ('add')");
    CHECK(by_name.at("layer1.0.downsample.0").refusal == "its output feeds a residual sum ('add')");
    // The stem feeds layer1.0's conv1 and its projection shortcut, not a sum:
    // its filters could go (the paper keeps it whole by configuration).
    CHECK(by_name.at("conv1").consumers == std::vector<std::string>{"layer1.0.conv1", "layer1.0.downsample.0"});
    // torchvision's order: the shortcut runs after the main path.
    CHECK(links[1].name == "layer1.0.conv1");
    CHECK(links[4].name == "layer1.0.downsample.0");
    CHECK(links.back().name == "fc");
  }

  TEST_CASE("trace_layer_links: each prunable layer's BN is the first BatchNorm after it in registration order") {
    for (const std::string arch : {"resnet20", "vgg19", "resnet34", "resnet50"}) {
      CAPTURE(arch);
      const SkipInit no_values;
      auto model = make_model(arch, 10);
      const auto modules = model->named_modules();
      for (const LayerLink& link : trace_layer_links(*model)) {
        if (!link.prunable()) continue;
        auto it = std::find_if(modules.begin(), modules.end(), [&](const auto& m) { return m.first == link.name; });
        it = std::find_if(it, modules.end(),
                          [](const auto& m) { return dynamic_cast<BatchNorm2d*>(m.second) != nullptr; });
        REQUIRE(it != modules.end());
        CAPTURE(link.name);
        CHECK(link.batch_norms == std::vector<std::string>{it->first});
      }
    }
  }

  TEST_CASE("trace_layer_links: mlp7_linear hidden layers feed the next linear, the output layer is refused") {
    auto model = make_model("mlp7_linear", 10, 1);
    const auto links = trace_layer_links(*model);
    REQUIRE(links.size() == 7);
    CHECK(links[0].name == "net.0");
    CHECK(links[0].consumers == std::vector<std::string>{"net.2"});
    CHECK(links[0].batch_norms.empty());
    CHECK(links[5].consumers == std::vector<std::string>{"net.12"});
    CHECK(links[6].refusal == "its output channels are the model's outputs");
  }

  TEST_CASE("keep_filters: resnet20 with half of every block conv1 removed gives the zeroed model's logits") {
    check_lossless_removal("resnet20", 10, 3, {2, 3, 32, 32});
  }

  TEST_CASE("keep_filters: vgg11 with half of every prunable conv removed gives the zeroed model's logits") {
    check_lossless_removal("vgg11", 10, 3, {2, 3, 32, 32});
  }

  TEST_CASE("keep_filters: mlp7_linear with half of every hidden layer removed gives the zeroed model's outputs") {
    check_lossless_removal("mlp7_linear", 10, 1, {3, 1, 32, 32});
  }

  TEST_CASE("keep_filters: a flattened map loses each removed channel's block of H·W input features") {
    FlattenNet model;
    randomize_batch_norms(model, 3);
    const auto links = links_by_name(model);
    CHECK(links.at("conv").consumers == std::vector<std::string>{"fc"});
    CHECK(links.at("conv").features_per_channel == 32 * 32);
    zero_rows(model.conv->weight, {1, 2});
    zero_rows(model.conv->bias, {1, 2});
    zero_rows(model.bn->weight, {1, 2});
    zero_rows(model.bn->bias, {1, 2});
    model.eval();
    NoGradGuard no_grad;
    const Tensor x = randn({2, 1, 32, 32});
    const Tensor before = model(x);
    keep_filters(model, "conv", as_index({0, 3}));
    CHECK(model.fc->weight.sizes() == Shape{3, 2 * 32 * 32});
    CHECK(max_abs_diff(before, model(x)) <= 1e-5);
  }

  TEST_CASE("keep_filters: updates the parameter TensorImpls in place and the conv spec, BN and consumer with them") {
    auto model = make_model("resnet20", 10);
    auto& conv1 = dynamic_cast<Conv2d&>(module_named(*model, "layer2.1.conv1"));
    auto& bn1 = dynamic_cast<BatchNorm2d&>(module_named(*model, "layer2.1.bn1"));
    auto& conv2 = dynamic_cast<Conv2d&>(module_named(*model, "layer2.1.conv2"));
    const Tensor held = conv1.weight;  // e.g. an optimizer's handle
    const std::vector<float> row5 = conv1.weight.select(0, 5).to_vector<float>();
    const std::vector<float> in5 = conv2.weight.select(1, 5).to_vector<float>();
    keep_filters(*model, "layer2.1.conv1", as_index({1, 5, 30}));
    CHECK(held.sizes() == Shape{3, 32, 3, 3});
    CHECK(held.select(0, 1).to_vector<float>() == row5);
    CHECK(conv1.spec.out_channels == 3);
    CHECK(bn1.running_mean.numel() == 3);
    CHECK(bn1.weight.numel() == 3);
    CHECK(conv2.weight.sizes() == Shape{32, 3, 3, 3});
    CHECK(conv2.spec.in_channels == 3);
    CHECK(conv2.weight.select(1, 1).to_vector<float>() == in5);
    const ModelSummary summary = summarize(*model, {3, 32, 32});
    const auto row = std::find_if(summary.layers.begin(), summary.layers.end(),
                                  [](const LayerStats& s) { return s.name == "layer2.1.conv2"; });
    REQUIRE(row != summary.layers.end());
    CHECK(row->in_channels == 3);
    CHECK(row->params == 32 * 3 * 9);
  }

  TEST_CASE("keep_filters: a pruned model trains (gradients have the new shapes)") {
    auto model = make_model("resnet20", 10);
    keep_filters(*model, "layer1.0.conv1", as_index({0, 2, 4}));
    const Tensor loss = ops::mean((*model)(randn({2, 3, 32, 32})));
    loss.backward();
    auto& conv1 = dynamic_cast<Conv2d&>(module_named(*model, "layer1.0.conv1"));
    REQUIRE(conv1.weight.grad().defined());
    CHECK(conv1.weight.grad().sizes() == Shape{3, 16, 3, 3});
  }

  TEST_CASE("apply_widths: a fresh model narrowed to a pruned model's widths loads its state dict") {
    auto pruned = make_model("resnet20", 10);
    randomize_batch_norms(*pruned, 5);
    keep_filters(*pruned, zero_half_of_prunable(*pruned, 13));
    std::map<std::string, Tensor> state;
    for (const auto& [name, t] : pruned->state_dict()) state.emplace(name, t);

    auto fresh = make_model("resnet20", 10);
    CHECK_THROWS_WITH(
        fresh->load_state_dict(state),
        "load_state_dict: 'layer1.0.conv1.weight' has shape [7, 16, 3, 3] but the model expects [16, 16, 3, 3]");
    apply_widths(*fresh, layer_widths(*pruned));
    CHECK(layer_widths(*fresh) == layer_widths(*pruned));
    fresh->load_state_dict(state);
    pruned->eval();
    fresh->eval();
    NoGradGuard no_grad;
    const Tensor x = randn({2, 3, 32, 32});
    CHECK(max_abs_diff((*pruned)(x), (*fresh)(x)) == 0);
  }

  TEST_CASE("keep_filters: refuses layers whose output feeds a residual sum or the model output, naming them") {
    auto model = make_model("resnet20", 10);
    const auto before = layer_widths(*model);
    CHECK_THROWS_WITH(
        keep_filters(*model, "layer1.0.conv2", as_index({0, 1})),
        "keep_filters: cannot remove filters of 'layer1.0.conv2': its output feeds a residual sum ('add')");
    CHECK_THROWS_WITH(keep_filters(*model, "conv1", as_index({0, 1})),
                      "keep_filters: cannot remove filters of 'conv1': its output feeds a residual sum ('add')");
    CHECK_THROWS_WITH(keep_filters(*model, "fc", as_index({0, 1})),
                      "keep_filters: cannot remove filters of 'fc': its output channels are the model's outputs");
    // One refused layer stops the whole batch before anything changes.
    CHECK_THROWS(keep_filters(*model, {{"layer1.0.conv1", as_index({0, 1})}, {"layer1.0.conv2", as_index({0, 1})}}));
    CHECK(layer_widths(*model) == before);
    // Keeping every filter is no removal, and allowed anywhere.
    keep_filters(*model, "fc", arange(10));
    CHECK(layer_widths(*model) == before);
  }

  TEST_CASE("keep_filters: refuses a layer whose output goes through an op that mixes channels") {
    ChannelSoftmaxNet model;
    CHECK_THROWS_WITH(keep_filters(model, "a", as_index({0})),
                      "keep_filters: cannot remove filters of 'a': its output reaches op 'softmax', which mixes or "
                      "reorders channels");
  }

  TEST_CASE("keep_filters: bad layer names and kept indices are one-line errors") {
    auto model = make_model("resnet20", 10);
    CHECK_THROWS_WITH(keep_filters(*model, "layer1.0.bn1", as_index({0})),
                      "keep_filters: no conv or linear layer named 'layer1.0.bn1'");
    CHECK_THROWS_WITH(keep_filters(*model, "layer1.0.conv1", as_index({3, 1})),
                      "keep_filters: the kept indices of 'layer1.0.conv1' must be sorted and distinct (1 follows 3)");
    CHECK_THROWS_WITH(keep_filters(*model, "layer1.0.conv1", as_index({0, 16})),
                      "keep_filters: kept index 16 of 'layer1.0.conv1' is out of range for its 16 filters");
    CHECK_THROWS_WITH(keep_filters(*model, "layer1.0.conv1", from_vector<int64_t>(std::vector<int64_t>{}, {0})),
                      "keep_filters: 'layer1.0.conv1' must keep at least one of its 16 filters");
    CHECK_THROWS_WITH(
        keep_filters(*model, "layer1.0.conv1", from_vector<float>({0, 1}, {2})),
        "keep_filters: the kept indices of 'layer1.0.conv1' must be a 1-d i64 tensor, got f32 of shape [2]");
    CHECK_THROWS_WITH(apply_widths(*model, {{"layer1.0.conv1", 17}}),
                      "apply_widths: 'layer1.0.conv1' has 16 filters; cannot make it 17 wide");
    CHECK_THROWS_WITH(apply_widths(*model, {{"nope", 1}}), "apply_widths: no conv or linear layer named 'nope'");
  }

}  // TEST_SUITE
