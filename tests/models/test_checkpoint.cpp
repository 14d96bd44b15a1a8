// Checkpoints: what save_checkpoint writes, what read_checkpoint and
// build_model make of it, and one exact error for each kind of bad file.
#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "engine/build_info.h"
#include "engine/philox.h"
#include "engine/safetensors.h"
#include "models/checkpoint.h"
#include "models/surgery.h"
#include "models/zoo.h"
#include "ops/elementwise.h"
#include "tests/data/data_test_util.h"

using namespace tpp;
using namespace tpp::models;
using tpp::testing::TempDir;

namespace {

// A zoo model with random weights and BN statistics that are not the defaults,
// so a load that skipped any tensor would show.
std::shared_ptr<Module> random_model(const std::string& arch, int64_t classes, int64_t channels, uint64_t seed) {
  manual_seed(seed);
  auto model = make_model(arch, classes, channels);
  const NoGradGuard no_grad;
  for (auto& [key, t] : model->named_buffers()) {
    Tensor b = t;
    if (key.ends_with("running_mean")) b.copy_(randn(b.sizes()) * 0.1);
    if (key.ends_with("running_var")) b.copy_(rand(b.sizes()) + 0.5);
    if (key.ends_with("num_batches_tracked")) b.fill_(7);
  }
  return model;
}

CheckpointInfo info_for(const std::string& arch, const std::string& dataset, int64_t classes, int64_t channels) {
  return {.arch = arch, .dataset = dataset, .num_classes = classes, .in_channels = channels};
}

Tensor eval_output(Module& model, const Tensor& x) {
  const NoGradGuard no_grad;
  model.eval();
  return model(x);
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  const auto va = a.contiguous().to_vector<float>(), vb = b.contiguous().to_vector<float>();
  double worst = 0;
  for (size_t i = 0; i < va.size(); ++i) worst = std::max(worst, std::abs(double(va[i]) - double(vb[i])));
  return worst;
}

bool same_values(const Tensor& a, const Tensor& b) {
  if (a.sizes() != b.sizes() || a.dtype() != b.dtype()) return false;
  if (a.dtype() == DType::i64) return a.to_vector<int64_t>() == b.to_vector<int64_t>();
  return a.contiguous().to_vector<float>() == b.contiguous().to_vector<float>();
}

std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_text(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

nlohmann::json header_of(const std::filesystem::path& path) {
  const std::string bytes = read_bytes(path);
  uint64_t length = 0;
  std::memcpy(&length, bytes.data(), 8);
  return nlohmann::json::parse(bytes.substr(8, length));
}

// A resnet20 checkpoint for CIFAR-10, re-saved with `edit` applied to its
// tensors and metadata: the way the bad-file cases below are made.
template <class Edit>
std::filesystem::path edited_checkpoint(const TempDir& dir, Edit edit) {
  const auto path = dir / "edited.safetensors";
  save_checkpoint(path, *random_model("resnet20", 10, 3, 1), info_for("resnet20", "cifar10", 10, 3));
  SafetensorsFile file = load_safetensors(path);
  edit(file.tensors, file.metadata);
  save_safetensors(path, file.tensors, file.metadata);
  return path;
}

std::string build_error(const std::filesystem::path& path, const std::string& arch = "") {
  try {
    build_model(read_checkpoint(path), arch);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_SUITE("checkpoint") {

TEST_CASE("a checkpoint round-trips the state_dict, the metadata and the extra tensors") {
  const TempDir dir;
  const auto path = dir / "resnet20.safetensors";
  const auto model = random_model("resnet20", 10, 3, 1);
  CheckpointInfo info = info_for("resnet20", "cifar10", 10, 3);
  info.extra = {{"phase", "finetune"}, {"epoch", "12"}};
  const Tensor momentum = randn({16, 3, 3, 3});
  save_checkpoint(path, *model, info, {{"optimizer.momentum.conv1.weight", momentum}});

  const Checkpoint ckpt = read_checkpoint(path);
  CHECK(ckpt.file == path);
  CHECK(ckpt.has_metadata);
  CHECK(ckpt.info.arch == "resnet20");
  CHECK(ckpt.info.dataset == "cifar10");
  CHECK(ckpt.info.num_classes == 10);
  CHECK(ckpt.info.in_channels == 3);
  CHECK(ckpt.info.extra.at("phase") == "finetune");
  CHECK(ckpt.info.extra.at("epoch") == "12");
  CHECK(ckpt.info.extra.at("engine_version") == TPP_VERSION);
  CHECK(ckpt.info.extra.size() == 3);
  REQUIRE(ckpt.extra_tensors.size() == 1);
  CHECK(same_values(ckpt.extra_tensors.at("optimizer.momentum.conv1.weight"), momentum));
  const NamedTensors state = model->state_dict();
  REQUIRE(ckpt.model_tensors.size() == state.size());
  for (const auto& entry : state) {
    const auto& key = entry.first;
    const auto& t = entry.second;
    INFO(key);
    REQUIRE(ckpt.model_tensors.count(key));
    CHECK(same_values(ckpt.model_tensors.at(key), t));
  }
}

TEST_CASE("the metadata holds arch, dataset, sizes, per-layer widths as JSON and the engine version") {
  const TempDir dir;
  const auto path = dir / "resnet20.safetensors";
  save_checkpoint(path, *random_model("resnet20", 10, 3, 1), info_for("resnet20", "cifar10", 10, 3));
  const auto metadata = load_safetensors(path).metadata;
  CHECK(metadata.at("arch") == "resnet20");
  CHECK(metadata.at("dataset") == "cifar10");
  CHECK(metadata.at("num_classes") == "10");
  CHECK(metadata.at("in_channels") == "3");
  CHECK(metadata.at("engine_version") == TPP_VERSION);
  CHECK(metadata.at("extra_tensors") == "[]");
  const auto widths = nlohmann::json::parse(metadata.at("widths"));
  CHECK(widths.size() == 20);  // 19 convs and the classifier
  CHECK(widths["conv1"] == 16);
  CHECK(widths["layer2.0.conv2"] == 32);
  CHECK(widths["layer3.2.conv1"] == 64);
  CHECK(widths["fc"] == 10);
  const CheckpointInfo info = read_checkpoint(path).info;
  CHECK(info.widths.size() == 20);
  CHECK(info.widths.at("layer3.2.conv1") == 64);
}

TEST_CASE("num_batches_tracked is stored as I64 and read back as i64") {
  const TempDir dir;
  const auto path = dir / "resnet20.safetensors";
  save_checkpoint(path, *random_model("resnet20", 10, 3, 1), info_for("resnet20", "cifar10", 10, 3));
  CHECK(header_of(path)["bn1.num_batches_tracked"]["dtype"] == "I64");
  const Tensor tracked = read_checkpoint(path).model_tensors.at("layer1.0.bn2.num_batches_tracked");
  CHECK(tracked.dtype() == DType::i64);
  CHECK(tracked.item() == 7);
}

TEST_CASE("build_model from a checkpoint gives the saved model's outputs exactly") {
  struct Case {
    std::string arch, dataset;
    int64_t classes, channels;
    Shape input;
  };
  for (const Case& c : {Case{"resnet20", "cifar10", 10, 3, {2, 3, 32, 32}}, Case{"vgg11", "cifar100", 100, 3, {2, 3, 32, 32}},
                        Case{"mlp7_linear", "mnist", 10, 1, {3, 1, 32, 32}}}) {
    INFO(c.arch);
    const TempDir dir;
    const auto path = dir / "model.safetensors";
    const auto original = random_model(c.arch, c.classes, c.channels, 5);
    save_checkpoint(path, *original, info_for(c.arch, c.dataset, c.classes, c.channels));
    const auto rebuilt = build_model(read_checkpoint(path));
    CHECK(rebuilt->is_training());
    const Tensor x = randn(c.input);
    CHECK(max_abs_diff(eval_output(*rebuilt, x), eval_output(*original, x)) == 0.0);
  }
}

TEST_CASE("a bare state_dict loads with the arch given, classes and channels come from its tensors") {
  const TempDir dir;
  const auto path = dir / "bare.safetensors";
  const auto original = random_model("resnet20", 7, 1, 3);
  const NamedTensors state = original->state_dict();
  save_safetensors(path, {state.begin(), state.end()});

  const Checkpoint ckpt = read_checkpoint(path);
  CHECK_FALSE(ckpt.has_metadata);
  CHECK(ckpt.info.arch.empty());
  CHECK(ckpt.info.num_classes == 0);
  CHECK(ckpt.info.widths.at("fc") == 7);
  const auto rebuilt = build_model(ckpt, "resnet20");
  const Tensor x = randn({2, 1, 16, 16});
  CHECK(max_abs_diff(eval_output(*rebuilt, x), eval_output(*original, x)) == 0.0);
}

TEST_CASE("bad files: a missing file") {
  const TempDir dir;
  const auto path = dir / "absent.safetensors";
  CHECK_THROWS_WITH(read_checkpoint(path),
                    ("load_safetensors: cannot open " + path.string() + ": No such file or directory").c_str());
}

TEST_CASE("bad files: a truncated file names the tensor that no longer fits") {
  const TempDir dir;
  const auto path = dir / "mlp.safetensors";
  save_checkpoint(path, *random_model("mlp7_linear", 10, 1, 1), info_for("mlp7_linear", "mnist", 10, 1));
  const std::string bytes = read_bytes(path);
  write_text(path, bytes.substr(0, bytes.size() - 4));
  // All tensors are f32, stored by name: "net.8.weight" comes last.
  const auto offsets = header_of(path)["net.8.weight"]["data_offsets"];
  const uint64_t begin = offsets[0], end = offsets[1];
  CHECK_THROWS_WITH(read_checkpoint(path), fmt::format("load_safetensors: {}: tensor 'net.8.weight': data_offsets "
                                                       "[{}, {}] lie beyond the {}-byte data section",
                                                       path.string(), begin, end, end - 4)
                                               .c_str());
}

TEST_CASE("bad files: a file cut inside its header") {
  const TempDir dir;
  const auto path = dir / "mlp.safetensors";
  save_checkpoint(path, *random_model("mlp7_linear", 10, 1, 1), info_for("mlp7_linear", "mnist", 10, 1));
  const std::string bytes = read_bytes(path);
  uint64_t header = 0;
  std::memcpy(&header, bytes.data(), 8);
  write_text(path, bytes.substr(0, 100));
  CHECK_THROWS_WITH(read_checkpoint(path),
                    fmt::format("load_safetensors: {}: header length {} exceeds the 92 bytes that follow it",
                                path.string(), header)
                        .c_str());
}

TEST_CASE("bad files: a corrupt header") {
  const TempDir dir;
  const auto path = dir / "mlp.safetensors";
  save_checkpoint(path, *random_model("mlp7_linear", 10, 1, 1), info_for("mlp7_linear", "mnist", 10, 1));
  std::string bytes = read_bytes(path);
  bytes[8 + 20] = '\x01';
  write_text(path, bytes);
  CHECK_THROWS_WITH(read_checkpoint(path),
                    ("load_safetensors: " + path.string() + ": header is not valid JSON (error at byte 21)").c_str());
}

TEST_CASE("bad files: a missing tensor") {
  const TempDir dir;
  const auto path = edited_checkpoint(dir, [](auto& tensors, auto&) { tensors.erase("layer1.0.bn1.running_var"); });
  CHECK(build_error(path) ==
        "build_model: " + path.string() + ": no tensor 'layer1.0.bn1.running_var', which resnet20 needs");
}

TEST_CASE("bad files: an unexpected tensor") {
  const TempDir dir;
  const auto path = edited_checkpoint(dir, [](auto& tensors, auto&) { tensors.emplace("layer4.0.conv1.weight", zeros({3})); });
  CHECK(build_error(path) == "build_model: " + path.string() +
                                 ": unexpected tensor 'layer4.0.conv1.weight' (shape [3]), which resnet20 does not have");
}

TEST_CASE("bad files: a tensor of the wrong shape names both shapes") {
  const TempDir dir;
  const auto path = edited_checkpoint(dir, [](auto& tensors, auto&) { tensors["conv1.weight"] = zeros({16, 3, 5, 5}); });
  CHECK(build_error(path) == "build_model: " + path.string() +
                                 ": 'conv1.weight' has shape [16, 3, 5, 5] but resnet20 expects [16, 3, 3, 3]");
}

TEST_CASE("bad files: a tensor of the wrong dtype") {
  const TempDir dir;
  SUBCASE("f64 weights") {
    const auto path =
        edited_checkpoint(dir, [](auto& tensors, auto&) { tensors["fc.weight"] = tensors["fc.weight"].to(DType::f64); });
    CHECK(build_error(path) == "build_model: " + path.string() + ": 'fc.weight' is f64 but resnet20 expects f32");
  }
  SUBCASE("an f32 num_batches_tracked") {
    const auto path = edited_checkpoint(
        dir, [](auto& tensors, auto&) { tensors["bn1.num_batches_tracked"] = zeros({}, {.dtype = DType::f32}); });
    CHECK(build_error(path) ==
          "build_model: " + path.string() + ": 'bn1.num_batches_tracked' is f32 but resnet20 expects i64");
  }
}

TEST_CASE("bad files: a checkpoint of another architecture says which it is") {
  const TempDir dir;
  const auto path = dir / "resnet20.safetensors";
  const auto model = random_model("resnet20", 10, 3, 1);
  save_checkpoint(path, *model, info_for("resnet20", "cifar10", 10, 3));
  CHECK(build_error(path, "resnet56") ==
        "build_model: " + path.string() + " holds a resnet20 checkpoint, but resnet56 was asked for");

  const auto bare = dir / "bare.safetensors";
  const NamedTensors state = model->state_dict();
  save_safetensors(bare, {state.begin(), state.end()});
  CHECK(build_error(bare, "resnet32") == "build_model: " + bare.string() +
                                             ": no tensor 'layer1.3.conv1.weight', which resnet32 needs; its keys are "
                                             "those of resnet20");
}

TEST_CASE("bad files: a bare state_dict without an arch, and an unknown arch") {
  const TempDir dir;
  const auto path = dir / "bare.safetensors";
  const NamedTensors state = random_model("resnet20", 10, 3, 1)->state_dict();
  save_safetensors(path, {state.begin(), state.end()});
  CHECK(build_error(path) == "build_model: " + path.string() +
                                 " has no metadata naming its architecture; give the arch (`arch`)");
  CHECK(build_error(path, "resnet21").starts_with("unknown arch 'resnet21'; known archs: mlp7_linear, resnet20"));
}

TEST_CASE("bad files: malformed metadata") {
  const TempDir dir;
  SUBCASE("num_classes") {
    const auto path = edited_checkpoint(dir, [](auto&, auto& metadata) { metadata["num_classes"] = "ten"; });
    CHECK_THROWS_WITH(read_checkpoint(path),
                      ("read_checkpoint: " + path.string() + ": metadata 'num_classes' is 'ten', not a positive integer")
                          .c_str());
  }
  SUBCASE("widths") {
    const auto path = edited_checkpoint(dir, [](auto&, auto& metadata) { metadata["widths"] = "{\"conv1\": 16"; });
    CHECK_THROWS_WITH(read_checkpoint(path),
                      ("read_checkpoint: " + path.string() +
                       ": metadata 'widths' is not valid JSON (expected an object of positive integers)")
                          .c_str());
  }
  SUBCASE("a width for a layer the model lacks") {
    const auto path = edited_checkpoint(dir, [](auto&, auto& metadata) {
      auto widths = nlohmann::json::parse(metadata["widths"]);
      widths["layer4.0.conv1"] = 8;
      metadata["widths"] = widths.dump();
    });
    CHECK(build_error(path) ==
          "build_model: " + path.string() + ": its widths name layer 'layer4.0.conv1', which resnet20 does not have");
  }
  SUBCASE("an extra tensor listed but absent") {
    const auto path =
        edited_checkpoint(dir, [](auto&, auto& metadata) { metadata["extra_tensors"] = "[\"train.step\"]"; });
    CHECK_THROWS_WITH(read_checkpoint(path), ("read_checkpoint: " + path.string() +
                                              ": metadata lists extra tensor 'train.step', which is missing")
                                                 .c_str());
  }
}

// Keeps every other filter of each layer in `layers`.
void prune_every_other(Module& model, const std::vector<std::string>& layers) {
  const auto widths = layer_widths(model);
  for (const std::string& layer : layers) {
    std::vector<int64_t> kept;
    for (int64_t i = 0; i < widths.at(layer); i += 2) kept.push_back(i);
    keep_filters(model, layer, from_vector<int64_t>(kept, {static_cast<int64_t>(kept.size())}));
  }
}

TEST_CASE("a pruned model reloads from its checkpoint alone: the widths come from the metadata") {
  struct Case {
    std::string arch, dataset;
    int64_t classes, channels;
    std::vector<std::string> pruned;
    Shape input;
  };
  for (const Case& c : {Case{"resnet20", "cifar10", 10, 3, {"layer1.0.conv1", "layer3.2.conv1"}, {2, 3, 32, 32}},
                        Case{"vgg11", "cifar10", 10, 3, {"features.0", "features.25"}, {2, 3, 32, 32}},
                        Case{"mlp7_linear", "mnist", 10, 1, {"net.0", "net.6"}, {2, 1, 32, 32}}}) {
    INFO(c.arch);
    const TempDir dir;
    const auto path = dir / "pruned.safetensors";
    const auto pruned = random_model(c.arch, c.classes, c.channels, 4);
    prune_every_other(*pruned, c.pruned);
    save_checkpoint(path, *pruned, info_for(c.arch, c.dataset, c.classes, c.channels));

    const Checkpoint ckpt = read_checkpoint(path);
    CHECK(ckpt.info.widths == layer_widths(*pruned));
    const auto rebuilt = build_model(ckpt);
    CHECK(layer_widths(*rebuilt) == layer_widths(*pruned));
    const Tensor x = randn(c.input);
    CHECK(max_abs_diff(eval_output(*rebuilt, x), eval_output(*pruned, x)) == 0.0);
  }
}

TEST_CASE("a pruned bare state_dict loads with the arch given: the widths come from its tensors") {
  const TempDir dir;
  const auto path = dir / "bare_pruned.safetensors";
  const auto pruned = random_model("resnet20", 10, 3, 4);
  prune_every_other(*pruned, {"layer2.1.conv1"});
  const NamedTensors state = pruned->state_dict();
  save_safetensors(path, {state.begin(), state.end()});
  const auto rebuilt = build_model(read_checkpoint(path), "resnet20");
  CHECK(layer_widths(*rebuilt).at("layer2.1.conv1") == 16);
  const Tensor x = randn({2, 3, 32, 32});
  CHECK(max_abs_diff(eval_output(*rebuilt, x), eval_output(*pruned, x)) == 0.0);
}

TEST_CASE("bad files: widths the architecture cannot take") {
  const TempDir dir;
  auto with_width = [&](const std::string& layer, int64_t width) {
    return edited_checkpoint(dir, [&](auto&, auto& metadata) {
      auto widths = nlohmann::json::parse(metadata["widths"]);
      widths[layer] = width;
      metadata["widths"] = widths.dump();
    });
  };
  SUBCASE("wider than the architecture") {
    const auto path = with_width("layer1.0.conv1", 20);
    CHECK(build_error(path) ==
          "build_model: " + path.string() + ": layer 'layer1.0.conv1' has width 20 but resnet20 has only 16");
  }
  SUBCASE("narrower where the output feeds a residual sum") {
    const auto path = with_width("layer1.0.conv2", 8);
    CHECK(build_error(path).starts_with("build_model: " + path.string() + ": keep_filters: "));
    CHECK(build_error(path).find("layer1.0.conv2") != std::string::npos);
  }
  SUBCASE("narrower than the tensors") {
    const auto path = with_width("layer1.0.conv1", 8);
    CHECK(build_error(path) == "build_model: " + path.string() +
                                   ": 'layer1.0.conv1.weight' has shape [16, 16, 3, 3] but resnet20 expects [8, 16, 3, 3]");
  }
}

TEST_CASE("save_checkpoint refuses clashing names and leaves an existing file as it was") {
  const TempDir dir;
  const auto path = dir / "resnet20.safetensors";
  const auto model = random_model("resnet20", 10, 3, 1);
  save_checkpoint(path, *model, info_for("resnet20", "cifar10", 10, 3));
  const std::string before = read_bytes(path);

  CHECK_THROWS_WITH(save_checkpoint(path, *model, info_for("resnet20", "cifar10", 10, 3), {{"fc.bias", zeros({10})}}),
                    ("save_checkpoint: " + path.string() + ": extra tensor 'fc.bias' clashes with a model tensor").c_str());
  CheckpointInfo reserved = info_for("resnet20", "cifar10", 10, 3);
  reserved.extra["widths"] = "{}";
  CHECK_THROWS_WITH(save_checkpoint(path, *model, reserved),
                    ("save_checkpoint: " + path.string() + ": extra metadata 'widths' is a reserved key").c_str());
  CHECK_THROWS_WITH(save_checkpoint(path, *model, info_for("resnet21", "cifar10", 10, 3)),
                    doctest::Contains(("save_checkpoint: " + path.string() + ": unknown arch 'resnet21'").c_str()));
  CHECK(read_bytes(path) == before);
}

}  // TEST_SUITE
