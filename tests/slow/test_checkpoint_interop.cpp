// Checkpoint interoperability with PyTorch, both ways, through the built
// `tpp` program and scripts/checkpoint_interop.py (run with /usr/bin/python3;
// skipped, saying so, where `import torch` fails):
//   - a torchvision ResNet-18 state_dict laid out as the reference safetensors
//     library writes it loads as is and `tpp forward --arch resnet18` gives
//     PyTorch's logits;
//   - checkpoints written by `tpp` load in PyTorch and give our outputs.
// The files go to <build>/checkpoint_interop/ (ResNet-18 alone is 46 MB).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "engine/autograd.h"
#include "engine/philox.h"
#include "engine/safetensors.h"
#include "models/checkpoint.h"
#include "models/surgery.h"
#include "models/zoo.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "tests/apps/run_tpp.h"

using namespace tpp;
namespace fs = std::filesystem;

namespace {

const char* const kPython = "/usr/bin/python3";

bool torch_available() {
  return std::system((std::string(kPython) + " -c 'import torch' >/dev/null 2>&1").c_str()) == 0;
}

fs::path work_dir() {
  const fs::path dir = fs::path(TPP_BINARY_DIR) / "checkpoint_interop";
  fs::create_directories(dir);
  return dir;
}

void run_script(const std::string& args) {
  const std::string command =
      std::string(kPython) + " " + (fs::path(TPP_SOURCE_DIR) / "scripts" / "checkpoint_interop.py").string() + " " + args;
  INFO(command);
  REQUIRE(std::system(command.c_str()) == 0);
}

Tensor read_tensor(const fs::path& file, const std::string& name) { return load_safetensors(file).tensors.at(name); }

// max |a - b| over max(1, max |b|), with the first values printed.
double relative_max_diff(const Tensor& a, const Tensor& b, const std::string& what) {
  REQUIRE(a.sizes() == b.sizes());
  const auto va = a.to_vector<float>(), vb = b.to_vector<float>();
  double diff = 0, largest = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    diff = std::max(diff, std::abs(static_cast<double>(va[i]) - vb[i]));
    largest = std::max(largest, std::abs(static_cast<double>(vb[i])));
  }
  MESSAGE(what, ": max |diff| ", diff, " (largest |value| ", largest, "); first values ", va[0], " vs ", vb[0]);
  return diff / std::max(1.0, largest);
}

}  // namespace

TEST_SUITE("checkpoint_interop") {

TEST_CASE("a torchvision resnet18 state_dict loads as is and tpp forward gives PyTorch's logits") {
  if (!torch_available()) {
    MESSAGE("skipped: `", kPython, " -c 'import torch'` failed");
    return;
  }
  const fs::path dir = work_dir();
  run_script("resnet18 " + dir.string());
  const fs::path ckpt = dir / "resnet18.safetensors", io = dir / "resnet18_io.safetensors",
                 out = dir / "resnet18_tpp_output.safetensors";
  CHECK_FALSE(models::read_checkpoint(ckpt).has_metadata);
  const auto run = tpp::testing::run_tpp("forward --arch resnet18 --checkpoint " + ckpt.string() + " --input " +
                                         io.string() + " --output " + out.string());
  REQUIRE_MESSAGE(run.status == 0, run.output);
  const Tensor ours = read_tensor(out, "output"), theirs = read_tensor(io, "logits");
  CHECK(relative_max_diff(ours, theirs, "resnet18 vs PyTorch (float64 reference)") < 1e-5);
  CHECK(ops::max(ours, 1).indices.to_vector<int64_t>() == ops::max(theirs, 1).indices.to_vector<int64_t>());
}

TEST_CASE("checkpoints written by tpp load in PyTorch and give the same outputs") {
  if (!torch_available()) {
    MESSAGE("skipped: `", kPython, " -c 'import torch'` failed");
    return;
  }
  struct Case {
    std::string name, arch, dataset;
    int64_t classes, channels;
    Shape input;
    std::string pruned_layer;  // keeps its first half of filters ("": none)
  };
  for (const Case& c : {Case{"resnet20", "resnet20", "cifar10", 10, 3, {4, 3, 32, 32}, ""},
                        Case{"mlp7_linear", "mlp7_linear", "mnist", 10, 1, {4, 1, 32, 32}, ""},
                        Case{"vgg11", "vgg11", "cifar100", 100, 3, {2, 3, 32, 32}, ""},
                        Case{"resnet20_pruned", "resnet20", "cifar10", 10, 3, {4, 3, 32, 32}, "layer2.0.conv1"}}) {
    INFO(c.name);
    const fs::path dir = work_dir();
    const fs::path ckpt = dir / (c.name + ".safetensors"), input = dir / (c.name + "_input.safetensors"),
                   ours = dir / (c.name + "_tpp_output.safetensors"), theirs = dir / (c.name + "_torch_output.safetensors");
    manual_seed(7);
    auto model = models::make_model(c.arch, c.classes, c.channels);
    if (!c.pruned_layer.empty()) {
      const int64_t half = models::layer_widths(*model).at(c.pruned_layer) / 2;
      models::keep_filters(*model, c.pruned_layer, arange(half));
    }
    {  // BN statistics away from their defaults
      const NoGradGuard no_grad;
      for (auto& [key, t] : model->named_buffers()) {
        Tensor b = t;
        if (key.ends_with("running_mean")) b.copy_(randn(b.sizes()) * 0.1);
        if (key.ends_with("running_var")) b.copy_(rand(b.sizes()) + 0.5);
      }
    }
    models::save_checkpoint(ckpt, *model,
                            {.arch = c.arch, .dataset = c.dataset, .num_classes = c.classes, .in_channels = c.channels},
                            {{"train.step", full({}, 5.0, {.dtype = DType::i64})}});
    save_safetensors(input, {{"input", randn(c.input)}});
    const auto run = tpp::testing::run_tpp("forward --checkpoint " + ckpt.string() + " --input " + input.string() +
                                           " --output " + ours.string());
    REQUIRE_MESSAGE(run.status == 0, run.output);
    run_script("forward --checkpoint " + ckpt.string() + " --input " + input.string() + " --output " + theirs.string());
    CHECK(relative_max_diff(read_tensor(ours, "output"), read_tensor(theirs, "output"), c.name + " vs PyTorch float32") <
          1e-5);
  }
}

}  // TEST_SUITE
