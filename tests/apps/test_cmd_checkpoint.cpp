// `tpp forward` and `tpp eval` end to end: the built program on checkpoints
// written here, and one clear error line with a non-zero exit for bad input.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "engine/philox.h"
#include "engine/safetensors.h"
#include "models/checkpoint.h"
#include "models/zoo.h"
#include "tests/apps/run_tpp.h"
#include "tests/data/data_test_util.h"

using namespace tpp;
using tpp::testing::run_tpp;
using tpp::testing::TempDir;
using tpp::testing::TppRun;

namespace {

std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::filesystem::path save_resnet20(const TempDir& dir, std::shared_ptr<models::Module>* model = nullptr) {
  manual_seed(11);
  auto net = models::make_model("resnet20", 10, 3);
  const auto path = dir / "resnet20.safetensors";
  models::save_checkpoint(path, *net, {.arch = "resnet20", .dataset = "cifar10", .num_classes = 10, .in_channels = 3});
  if (model) *model = net;
  return path;
}

std::filesystem::path save_input(const TempDir& dir, const std::string& name, const Tensor& x) {
  const auto path = dir / (name + ".safetensors");
  save_safetensors(path, {{name == "no_input" ? "x" : "input", x}});
  return path;
}

std::string forward_args(const std::filesystem::path& ckpt, const std::filesystem::path& input,
                         const std::filesystem::path& output) {
  return "forward --checkpoint " + ckpt.string() + " --input " + input.string() + " --output " + output.string();
}

// Ten-class MNIST files of `labels.size()` test images (and a few training
// images, which eval does not read) under <root>/mnist.
void write_tiny_mnist(const std::filesystem::path& root, const std::vector<uint8_t>& labels) {
  const auto n = static_cast<uint32_t>(labels.size());
  tpp::testing::write_bytes(root / "mnist" / "train-images-idx3-ubyte", tpp::testing::idx_images(2, 28, 28));
  tpp::testing::write_bytes(root / "mnist" / "train-labels-idx1-ubyte", tpp::testing::idx_labels({0, 1}));
  tpp::testing::write_bytes(root / "mnist" / "t10k-images-idx3-ubyte", tpp::testing::idx_images(n, 28, 28));
  tpp::testing::write_bytes(root / "mnist" / "t10k-labels-idx1-ubyte", tpp::testing::idx_labels(labels));
}

// mlp7_linear whose logits are `bias` whatever the image: every weight is 0.
std::filesystem::path save_constant_mlp(const TempDir& dir, const std::vector<float>& bias, int64_t channels = 1,
                                        const std::string& dataset = "mnist") {
  const auto classes = static_cast<int64_t>(bias.size());
  auto net = models::make_model("mlp7_linear", classes, channels);
  {
    const NoGradGuard no_grad;
    for (auto& [key, p] : net->named_parameters()) p.fill_(0);
    Tensor last = net->named_parameters().back().second;
    last.copy_(from_vector<float>(bias, {classes}));
  }
  const auto path = dir / "mlp.safetensors";
  models::save_checkpoint(path, *net,
                          {.arch = "mlp7_linear", .dataset = dataset, .num_classes = classes, .in_channels = channels});
  return path;
}

}  // namespace

TEST_SUITE("apps") {

TEST_CASE("tpp forward writes the model's eval-mode output for the given input") {
  const TempDir dir;
  std::shared_ptr<models::Module> model;
  const auto ckpt = save_resnet20(dir, &model);
  const Tensor x = randn({2, 3, 32, 32});
  const auto input = save_input(dir, "input", x);
  const auto output = dir / "out.safetensors";
  const TppRun run = run_tpp(forward_args(ckpt, input, output));
  REQUIRE_MESSAGE(run.status == 0, run.output);
  const Tensor y = load_safetensors(output).tensors.at("output");
  model->eval();
  const NoGradGuard no_grad;
  const Tensor expected = (*model)(x);
  REQUIRE(y.sizes() == Shape{2, 10});
  const auto got = y.to_vector<float>(), want = expected.to_vector<float>();
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-6));
}

TEST_CASE("tpp forward: bad input gives one error line, a non-zero exit and no output file") {
  const TempDir dir;
  const auto ckpt = save_resnet20(dir);
  const auto good_input = save_input(dir, "input", randn({1, 3, 32, 32}));
  const auto output = dir / "out.safetensors";
  auto expect_error = [&](const std::string& args, const std::string& message) {
    const TppRun run = run_tpp(args);
    CHECK(run.status == 1);
    CHECK(run.output == "tpp: error: " + message + "\n");
    CHECK_FALSE(std::filesystem::exists(output));
  };

  SUBCASE("a missing checkpoint") {
    const auto absent = dir / "absent.safetensors";
    expect_error(forward_args(absent, good_input, output),
                 "load_safetensors: cannot open " + absent.string() + ": No such file or directory");
  }
  SUBCASE("a truncated checkpoint") {
    const std::string bytes = read_bytes(ckpt);
    std::ofstream(ckpt, std::ios::binary | std::ios::trunc).write(bytes.data(), 6);
    expect_error(forward_args(ckpt, good_input, output),
                 "load_safetensors: " + ckpt.string() + ": file has 6 bytes, too short for the 8-byte header length");
  }
  SUBCASE("a checkpoint of another architecture") {
    expect_error(forward_args(ckpt, good_input, output) + " --arch resnet56",
                 "build_model: " + ckpt.string() + " holds a resnet20 checkpoint, but resnet56 was asked for");
  }
  SUBCASE("an unknown arch") {
    const TppRun run = run_tpp(forward_args(ckpt, good_input, output) + " --arch resnet21");
    CHECK(run.status == 1);
    CHECK(run.output.starts_with("tpp: error: unknown arch 'resnet21'; known archs: mlp7_linear, resnet20,"));
  }
  SUBCASE("an input file without 'input'") {
    const auto input = save_input(dir, "no_input", randn({1, 3, 32, 32}));
    expect_error(forward_args(ckpt, input, output),
                 "forward: " + input.string() + " holds no tensor named 'input' (it has: x)");
  }
  SUBCASE("an input of the wrong rank") {
    const auto input = save_input(dir, "input", randn({3, 32, 32}));
    expect_error(forward_args(ckpt, input, output),
                 "forward: " + input.string() + ": 'input' has shape [3, 32, 32], not [N, C, H, W]");
  }
  SUBCASE("an input with the wrong channels") {
    const auto input = save_input(dir, "input", randn({1, 1, 32, 32}));
    expect_error(forward_args(ckpt, input, output),
                 "forward: " + input.string() + ": 'input' has shape [1, 1, 32, 32] but resnet20 takes 3 input channels");
  }
  SUBCASE("an input of the wrong dtype") {
    const auto input = save_input(dir, "input", randn({1, 3, 32, 32}).to(DType::f64));
    expect_error(forward_args(ckpt, input, output), "forward: " + input.string() + ": 'input' is f64, not f32");
  }
  SUBCASE("an mlp7_linear input that is not 32x32") {
    const auto mlp = save_constant_mlp(dir, std::vector<float>(10, 0.f));
    const auto input = save_input(dir, "input", randn({1, 1, 28, 28}));
    expect_error(forward_args(mlp, input, output),
                 "forward: " + input.string() + ": 'input' has shape [1, 1, 28, 28] but mlp7_linear takes 32x32 images");
  }
}

TEST_CASE("tpp forward: an error leaves an existing output file as it was") {
  const TempDir dir;
  const auto ckpt = save_resnet20(dir);
  const auto input = save_input(dir, "input", randn({1, 1, 32, 32}));
  const auto output = dir / "out.safetensors";
  std::ofstream(output) << "previous result";
  const TppRun run = run_tpp(forward_args(ckpt, input, output));
  CHECK(run.status == 1);
  CHECK(read_bytes(output) == "previous result");
}

TEST_CASE("tpp forward: --device names a GPU that this build or machine lacks, before reading any file") {
  const TppRun run = run_tpp("forward --checkpoint a --input b --output c --device cuda:99");
  CHECK(run.status == 1);
#if TPP_WITH_CUDA
  CHECK(run.output.starts_with("tpp: error: forward: --device cuda:99: no such GPU ("));
#else
  CHECK(run.output.starts_with("tpp: error: forward: --device cuda:99: this build has no CUDA backend ("));
#endif
  CHECK(run.output.ends_with("; use --device cpu\n"));
}

TEST_CASE("tpp forward: an unknown option is refused with a non-zero exit") {
  const TempDir dir;
  const TppRun run = run_tpp("forward --checkpoint a --input b --output c --colour red");
  CHECK(run.status != 0);
  CHECK(run.output.find("--colour") != std::string::npos);
}

TEST_CASE("tpp eval: loss, top-1 and top-5 on the test split of the checkpoint's dataset") {
  const TempDir dir;
  std::vector<uint8_t> labels;
  for (int i = 0; i < 20; ++i) labels.push_back(static_cast<uint8_t>(i % 10));
  write_tiny_mnist(dir.path(), labels);
  std::vector<float> bias;  // class k scores k/2: the top-5 classes are 5..9
  for (int k = 0; k < 10; ++k) bias.push_back(0.5f * static_cast<float>(k));
  const auto ckpt = save_constant_mlp(dir, bias);

  const TppRun run = run_tpp("eval --checkpoint " + ckpt.string() + " --data-dir " + dir.path().string() + " --json");
  REQUIRE_MESSAGE(run.status == 0, run.output);
  const auto out = nlohmann::json::parse(run.output);
  CHECK(out["arch"] == "mlp7_linear");
  CHECK(out["dataset"] == "mnist");
  CHECK(out["split"] == "test");
  CHECK(out["images"] == 20);
  CHECK(out["top1"].get<double>() == doctest::Approx(10.0));  // label 9 only
  CHECK(out["top5"].get<double>() == doctest::Approx(50.0));  // labels 5..9
  double log_sum_exp = 0;
  for (const float b : bias) log_sum_exp += std::exp(static_cast<double>(b));
  log_sum_exp = std::log(log_sum_exp);
  CHECK(out["loss"].get<double>() == doctest::Approx(log_sum_exp - 2.25).epsilon(1e-6));  // mean label score 4.5/2

  const TppRun text = run_tpp("eval --checkpoint " + ckpt.string() + " --data-dir " + dir.path().string());
  REQUIRE(text.status == 0);
  CHECK(text.output.find("top-1 10.00%  top-5 50.00%") != std::string::npos);
}

TEST_CASE("tpp eval: bad input gives one error line and a non-zero exit") {
  const TempDir dir;
  write_tiny_mnist(dir.path(), {0, 1, 2});
  const std::string data = " --data-dir " + dir.path().string();
  auto expect_error = [&](const std::string& args, const std::string& message, int status = 1) {
    const TppRun run = run_tpp(args);
    CHECK(run.status == status);
    CHECK(run.output == "tpp: error: " + message + "\n");
  };

  SUBCASE("an unknown dataset (a usage error)") {
    const auto ckpt = save_constant_mlp(dir, std::vector<float>(10, 0.f));
    expect_error("eval --checkpoint " + ckpt.string() + data + " --dataset svhn",
                 "data: unknown dataset 'svhn' (known: mnist, fashion-mnist, cifar10, cifar100, imagenet, "
                 "imagefolder:<path>)",
                 2);
  }
  SUBCASE("a checkpoint that names no dataset") {
    const auto ckpt = save_constant_mlp(dir, std::vector<float>(10, 0.f), 1, "");
    expect_error("eval --checkpoint " + ckpt.string() + data,
                 "eval: " + ckpt.string() + " names no dataset; pass --dataset");
  }
  SUBCASE("a dataset with another number of classes") {
    const auto ckpt = save_constant_mlp(dir, std::vector<float>(100, 0.f));
    expect_error("eval --checkpoint " + ckpt.string() + data,
                 "eval: mnist has 10 classes but " + ckpt.string() + " was trained for 100");
  }
  SUBCASE("a dataset with another number of channels") {
    const auto ckpt = save_constant_mlp(dir, std::vector<float>(10, 0.f), 3);
    expect_error("eval --checkpoint " + ckpt.string() + data,
                 "eval: mnist has 1-channel images but mlp7_linear in " + ckpt.string() + " takes 3 channels");
  }
  SUBCASE("a corrupt checkpoint") {
    const auto ckpt = dir / "corrupt.safetensors";
    std::ofstream(ckpt, std::ios::binary) << std::string("\x04\0\0\0\0\0\0\0{{{{", 12);
    expect_error("eval --checkpoint " + ckpt.string() + data,
                 "load_safetensors: " + ckpt.string() + ": header is not valid JSON (error at byte 2)");
  }
  SUBCASE("an unknown option") {
    const TppRun run = run_tpp("eval --checkpoint x --top-k 3");
    CHECK(run.status != 0);
    CHECK(run.output.find("--top-k") != std::string::npos);
  }
}

}  // TEST_SUITE
