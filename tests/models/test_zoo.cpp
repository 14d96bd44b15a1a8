// The model zoo against PyTorch twins of every architecture
// (scripts/make_model_fixtures.py): state_dict keys and shapes, parameter and
// FLOP counts (TPP-METHOD §2.8), and logits in eval and train mode with
// weights from a generator both sides share (the weights are too large to
// store), plus BN running statistics after a train-mode forward and the
// gradient norms of a cross-entropy loss through ResNet-20.
#include <doctest/doctest.h>

#include <cmath>
#include <set>

#include "models/layers.h"
#include "models/resnet_imagenet.h"
#include "models/summary.h"
#include "models/vgg_cifar.h"
#include "models/zoo.h"
#include "ops/loss.h"
#include "ops/norm.h"
#include "tests/golden/fixture.h"

using namespace tpp;
using namespace tpp::models;
using namespace tpp::testing;

namespace {

// ---- the synthetic weights of scripts/make_model_fixtures.py ----

uint64_t fnv1a64(const std::string& text) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (const unsigned char byte : text) h = (h ^ byte) * 0x100000001B3ull;
  return h;
}

// splitmix64 of (seed + (i + 1)·golden gamma), top 53 bits as a double in [0, 1).
double uniform01(uint64_t seed, uint64_t i) {
  uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1p-53;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Tensor synthetic_value(const std::string& key, const Shape& shape) {
  if (ends_with(key, "num_batches_tracked")) return zeros(shape, {.dtype = DType::i64});
  const int64_t n = numel_of(shape);
  const uint64_t seed = fnv1a64(key);
  const bool bn_scale = ends_with(key, "running_var") || (ends_with(key, ".weight") && shape.size() == 1);
  const bool weight = !bn_scale && ends_with(key, ".weight");
  const double he_bound = weight ? std::sqrt(6.0 / static_cast<double>(n / shape[0])) : 0;
  std::vector<float> values(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const double u = uniform01(seed, static_cast<uint64_t>(i));
    const double v = bn_scale ? 0.5 + u : weight ? (2 * u - 1) * he_bound : 0.2 * (2 * u - 1);
    values[static_cast<size_t>(i)] = static_cast<float>(v);
  }
  return from_vector<float>(values, shape);
}

std::map<std::string, Tensor> synthetic_state(const Module& model) {
  std::map<std::string, Tensor> state;
  for (const auto& [key, t] : model.state_dict()) state[key] = synthetic_value(key, t.sizes());
  return state;
}

// ---- fixture metadata ----

struct ArchCounts {
  Shape input;
  int64_t num_classes, params, params_with_bn, flops;
};

ArchCounts counts(const Fixture& fx, const std::string& arch) {
  const nlohmann::json o = fx.options(arch);
  return {o["input"].get<Shape>(), o["num_classes"].get<int64_t>(), o["params"].get<int64_t>(),
          o["params_with_bn"].get<int64_t>(), o["flops"].get<int64_t>()};
}

std::vector<std::pair<std::string, Shape>> pytorch_keys(const SafetensorsFile& file, const std::string& arch) {
  const auto it = file.metadata.find("keys." + arch);
  REQUIRE_MESSAGE(it != file.metadata.end(), "zoo_structure.safetensors has no keys for " << arch);
  std::vector<std::pair<std::string, Shape>> keys;
  for (const auto& entry : nlohmann::json::parse(it->second)) keys.emplace_back(entry[0], entry[1].get<Shape>());
  return keys;
}

std::vector<std::pair<std::string, Shape>> our_keys(const Module& model) {
  std::vector<std::pair<std::string, Shape>> keys;
  for (const auto& [key, t] : model.state_dict()) keys.emplace_back(key, t.sizes());
  return keys;
}

const std::filesystem::path kFixtures(TPP_FIXTURE_DIR);

// Logits and BN statistics, computed in f32 here and in f64 by PyTorch.
constexpr Tolerance kLogitTolerance{.rtol = 1e-4, .atol = 1e-4};
constexpr Tolerance kStatTolerance{.rtol = 1e-4, .atol = 1e-5};

}  // namespace

TEST_SUITE("models") {

TEST_CASE("zoo: the fixture covers exactly the known archs") {
  const SafetensorsFile file = load_safetensors(kFixtures / "zoo_structure.safetensors");
  std::set<std::string> fixture_archs;
  for (const auto& [key, value] : file.metadata)
    if (key.starts_with("keys.")) fixture_archs.insert(key.substr(5));
  const std::set<std::string> ours(known_archs().begin(), known_archs().end());
  CHECK(fixture_archs == ours);
  CHECK(known_archs().size() == 13);
}

TEST_CASE("zoo: state_dict keys, their order and shapes match PyTorch for every arch") {
  const SafetensorsFile file = load_safetensors(kFixtures / "zoo_structure.safetensors");
  const Fixture fx("zoo_structure.safetensors");
  const SkipInit values_unused;
  for (const std::string& arch : known_archs()) {
    CAPTURE(arch);
    const ArchCounts c = counts(fx, arch);
    const auto model = make_model(arch, c.num_classes, c.input[0]);
    const auto expected = pytorch_keys(file, arch);
    const auto actual = our_keys(*model);
    CHECK(actual.size() == expected.size());
    for (size_t i = 0; i < std::min(actual.size(), expected.size()); ++i) {
      CHECK_MESSAGE(actual[i].first == expected[i].first, "key " << i);
      CHECK_MESSAGE(actual[i].second == expected[i].second, expected[i].first);
    }
  }
}

TEST_CASE("zoo: resnet56 on CIFAR-10 has 0.849M params (0.853M with BN) and 0.251 GFLOPs") {
  const auto model = make_model("resnet56", 10);
  const ModelSummary s = summarize(*model, {3, 32, 32});
  CHECK(s.params == 848954);
  CHECK(s.params_with_bn == 853018);
  CHECK(s.flops == 250971392);
}

// The 224x224 archs are summarised at 64x64 here to keep the test fast (params
// do not depend on the resolution); `tpp info` shows the 224x224 numbers.
TEST_CASE("zoo: params and FLOPs match the PyTorch count for every arch (dataset resolution, 64x64 for ImageNet)") {
  const Fixture fx("zoo_structure.safetensors");
  const SkipInit values_unused;
  for (const std::string& arch : known_archs()) {
    CAPTURE(arch);
    const ArchCounts c = counts(fx, arch);
    const bool imagenet = c.input[1] > 64;
    const auto model = make_model(arch, c.num_classes, c.input[0]);
    const ModelSummary s = summarize(*model, imagenet ? Shape{c.input[0], 64, 64} : c.input);
    CHECK(s.params == c.params);
    CHECK(s.params_with_bn == c.params_with_bn);
    CHECK(s.flops == (imagenet ? fx.options(arch)["flops_at_64"].get<int64_t>() : c.flops));
  }
}

TEST_CASE("zoo: the known ImageNet counts (resnet18 11.69M, resnet50 25.557M params with BN, 8.18 GFLOPs)") {
  const Fixture fx("zoo_structure.safetensors");
  CHECK(counts(fx, "resnet18").params_with_bn == 11689512);
  CHECK(counts(fx, "resnet50").params_with_bn == 25557032);
  CHECK(counts(fx, "resnet50").flops == 8178368512);
}

TEST_CASE("zoo: under SkipInit every conv and linear parameter is zero") {
  const SkipInit skip;
  for (const std::string arch : {"mlp7_linear", "resnet20", "vgg11", "resnet18"}) {
    CAPTURE(arch);
    const auto model = make_model(arch, 10);
    for (const auto& entry : model->named_parameters()) {
      const auto& name = entry.first;
      const auto& p = entry.second;
      if (p.dim() > 1 || !name.ends_with(".weight")) CHECK_MESSAGE(ops::frobenius_norm(p).item() == 0, name);
    }
  }
}

TEST_CASE("zoo: each family is initialised as its reference (weight scale per layer)") {
  const auto rms = [](const Module& model, const std::string& key) {
    for (const auto& [name, p] : model.named_parameters())
      if (name == key) {
        double squares = 0;
        for (const double v : p.to_vector<double>()) squares += v * v;
        return std::sqrt(squares / static_cast<double>(p.numel()));
      }
    FAIL("no parameter " << key);
    return 0.0;
  };
  // CIFAR ResNet: PyTorch's default, U(±1/sqrt(fan_in)), std 1/sqrt(3·fan_in).
  const auto resnet20 = make_model("resnet20", 10);
  CHECK(rms(*resnet20, "layer3.1.conv1.weight") == doctest::Approx(1 / std::sqrt(3.0 * 576)).epsilon(0.03));
  // The other families' init code runs per layer; small instances exercise it at a fraction of the cost.
  // VGG: Kaiming-normal, fan_in, gain sqrt(2), on convs and the classifier; zero classifier bias.
  const CifarVgg vgg({64, CifarVgg::kMaxPool, 128, 128}, 100);
  CHECK(rms(vgg, "features.7.weight") == doctest::Approx(std::sqrt(2.0 / (128 * 9))).epsilon(0.03));
  CHECK(rms(vgg, "classifier.weight") == doctest::Approx(std::sqrt(2.0 / 128)).epsilon(0.05));
  CHECK(rms(vgg, "classifier.bias") == 0);
  // torchvision ResNet: Kaiming-normal, fan_out, on convs (layer2.0.conv1: fan_in 576, fan_out 1152); fc default.
  const ImageNetResNet resnet(BlockKind::basic, {1, 1, 1, 1}, 100);
  CHECK(rms(resnet, "layer2.0.conv1.weight") == doctest::Approx(std::sqrt(2.0 / 1152)).epsilon(0.03));
  CHECK(rms(resnet, "fc.weight") == doctest::Approx(1 / std::sqrt(3.0 * 512)).epsilon(0.03));
}

TEST_CASE("zoo: an unknown arch is an error listing the known ones") {
  CHECK_THROWS_WITH(make_model("resnet57", 10),
                    "unknown arch 'resnet57'; known archs: mlp7_linear, resnet20, resnet32, resnet56, resnet110, "
                    "vgg11, vgg13, vgg16, vgg19, vgg_small, resnet18, resnet34, resnet50; did you mean 'resnet56'?");
}

TEST_CASE("zoo: mlp7_linear is net.0 ... net.12 with Identity activations and takes 32x32 images") {
  const auto model = make_model("mlp7_linear", 10, 1);
  std::vector<std::string> types;
  for (auto& [name, m] : model->named_modules())
    if (name.starts_with("net.")) types.push_back(name + ":" + m->type_name());
  CHECK(types.size() == 13);
  CHECK(types.front() == "net.0:Linear");
  CHECK(types[1] == "net.1:Identity");
  CHECK(types.back() == "net.12:Linear");
  CHECK(model_input_shape("mlp7_linear", 1, 28) == Shape{1, 32, 32});
  CHECK(model_input_shape("resnet56", 1, 28) == Shape{1, 28, 28});
  CHECK((*model)(zeros({3, 1, 32, 32})).sizes() == Shape{3, 10});
}

TEST_CASE("zoo: the CNNs take single-channel 28x28 images (MNIST, Fashion-MNIST)") {
  const SkipInit shapes_only;
  for (const std::string arch : {"resnet20", "vgg11", "resnet18"}) {
    CAPTURE(arch);
    const auto model = make_model(arch, 10, 1);
    model->eval();
    CHECK((*model)(zeros({1, 1, 28, 28})).sizes() == Shape{1, 10});
  }
}

TEST_CASE("summary: resnet56 rows give shapes and counts per layer, and the model's mode is kept") {
  const auto model = make_model("resnet56", 10);
  model->train();
  const ModelSummary s = summarize(*model, {3, 32, 32});
  CHECK(model->is_training());
  REQUIRE(s.layers.size() == 1 + 1 + 27 * 4 + 1);  // stem conv and BN, 27 blocks of conv+BN twice, fc
  const LayerStats& stem = s.layers[0];
  CHECK(stem.name == "conv1");
  CHECK(stem.type == "Conv2d");
  CHECK(stem.output == Shape{16, 32, 32});
  CHECK(stem.params == 432);
  CHECK(stem.flops == 2 * 432 * 32 * 32);
  const auto find = [&](const std::string& name) {
    for (const LayerStats& row : s.layers)
      if (row.name == name) return row;
    FAIL("no row " << name);
    return LayerStats{};
  };
  const LayerStats down = find("layer3.0.conv1");
  CHECK(down.in_channels == 32);
  CHECK(down.out_channels == 64);
  CHECK(down.kernel == 3);
  CHECK(down.stride == 2);
  CHECK(down.output == Shape{64, 8, 8});
  CHECK(find("layer3.0.bn1").params == 128);
  CHECK(find("layer3.0.bn1").flops == 0);
  CHECK(find("fc").params == 650);
  CHECK(find("fc").flops == 1280);
  CHECK(summary_json(s)["flops"] == 250971392);
  CHECK(summary_json(s)["layers"].size() == s.layers.size());
}

TEST_CASE("summary: a layer that takes no part in the forward is an error") {
  struct Unused : Module {
    std::shared_ptr<Linear> used;
    std::shared_ptr<Conv2d> unused;
    Unused() {
      used = register_module("used", std::make_shared<Linear>(4, 2));
      unused = register_module("unused", std::make_shared<Conv2d>(Conv2dSpec{.in_channels = 1, .out_channels = 1,
                                                                               .kernel_size = 1}));
    }
    Tensor forward(const Tensor& x) override { return (*used)(x); }
    std::string type_name() const override { return "Unused"; }
  } model;
  CHECK_THROWS_WITH(summarize(model, {4}), "summarize: layer 'unused' (Conv2d) took no part in the forward of input [4]");
}

TEST_CASE("golden zoo: logits in eval and train mode and BN running statistics match PyTorch (resnet50: eval)") {
  const Fixture fx("zoo_forward.safetensors");
  for (const std::string case_name : {"mlp7_linear", "resnet20", "vgg11", "resnet18", "resnet50_gray"}) {
    CAPTURE(case_name);
    const nlohmann::json o = fx.options(case_name);
    const auto model = [&] {
      const SkipInit overwritten_below;
      return make_model(o["arch"], o["num_classes"], o["in_channels"]);
    }();
    const std::map<std::string, Tensor> state = synthetic_state(*model);
    for (const auto& [key, value] : state)
      if (fx.has("sample." + case_name + "." + key))
        check_close(value, fx["sample." + case_name + "." + key], "synthetic " + key, {.rtol = 0, .atol = 0});
    model->load_state_dict(state);

    const Tensor x = fx[case_name + ".input"];
    model->eval();
    check_close((*model)(x), fx[case_name + ".logits.eval"], case_name + ".logits.eval", kLogitTolerance);
    if (!o["train"].get<bool>()) continue;
    model->train();
    check_close((*model)(x), fx[case_name + ".logits.train"], case_name + ".logits.train", kLogitTolerance);
    for (const auto& [key, t] : model->state_dict()) {
      if (ends_with(key, "running_mean") || ends_with(key, "running_var"))
        check_close(t, fx[case_name + ".after_train." + key], case_name + " " + key, kStatTolerance);
      if (ends_with(key, "num_batches_tracked")) CHECK(t.item() == 1);
    }
  }
}

TEST_CASE("golden zoo: backward through resnet20 gives every parameter PyTorch's gradient norm") {
  const Fixture fx("zoo_forward.safetensors");
  const SafetensorsFile file = load_safetensors(kFixtures / "zoo_forward.safetensors");
  const auto model = make_model("resnet20", 10);
  model->load_state_dict(synthetic_state(*model));
  model->train();
  const Tensor loss = ops::cross_entropy((*model)(fx["resnet20.input"]), fx["resnet20.target"]);
  loss.backward();

  const auto keys = nlohmann::json::parse(file.metadata.at("resnet20.grad_norm_keys")).get<std::vector<std::string>>();
  const NamedTensors params = model->named_parameters();
  REQUIRE(params.size() == keys.size());
  std::vector<float> norms;
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& name = params[i].first;
    const auto& p = params[i].second;
    CHECK(name == keys[i]);
    REQUIRE_MESSAGE(p.grad().defined(), name << " has no gradient");
    CHECK(p.grad().sizes() == p.sizes());
    norms.push_back(static_cast<float>(ops::frobenius_norm(p.grad()).item()));
  }
  check_close(from_vector<float>(norms, {static_cast<int64_t>(norms.size())}), fx["resnet20.grad_norms"],
              "resnet20 gradient norms", {.rtol = 1e-4, .atol = 1e-6});
}

}  // TEST_SUITE
