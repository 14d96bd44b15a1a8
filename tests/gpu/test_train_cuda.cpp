// `tpp train --device cuda` and `tpp forward --device cuda` end to end
// against the same runs on the CPU, in full fp32 (skipped, saying so, without
// a GPU or without Fashion-MNIST).
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/philox.h"
#include "engine/tensor.h"
#include "engine/safetensors.h"
#include "tests/apps/checkpoint_difference.h"
#include "tests/apps/run_tpp.h"
#include "tests/apps/saved_models.h"
#include "tests/gpu/gpu_available.h"

namespace fs = std::filesystem;
using tpp::testing::run_tpp;

namespace {

nlohmann::json train_summary(const std::string& device, const fs::path& dir) {
  const auto run = run_tpp("--math fp32 train --arch vgg_small --dataset fashion-mnist --batch-size 64 --limit 512 "
                           "--test-limit 256 --workers 0 --epochs 2 --lr-schedule 0:0.05 --seed 5 --device " +
                           device + " --out " + dir.string());
  REQUIRE_MESSAGE(run.status == 0, run.output);
  std::ifstream in(dir / "summary.json");
  return nlohmann::json::parse(in);
}

// A scratch folder of this process, removed at the end.
struct Scratch {
  fs::path dir = fs::temp_directory_path() / ("tpp_test_train_cuda_" + std::to_string(::getpid()));
  Scratch() { fs::remove_all(dir); }
  ~Scratch() { fs::remove_all(dir); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
};

}  // namespace

TEST_SUITE("gpu") {
  TEST_CASE("tpp train --device cuda trains vgg_small as the CPU does and checkpoints it") {
    if (skip_without_gpu()) return;
    REQUIRE_FASHION_MNIST();
    const Scratch scratch;
    const nlohmann::json cpu = train_summary("cpu", scratch.dir / "cpu");
    const nlohmann::json gpu = train_summary("cuda", scratch.dir / "gpu");
    CHECK(gpu["status"] == "finished");
    CHECK(fs::exists(scratch.dir / "gpu" / "last.safetensors"));
    // The same data order and weights: the accuracies agree up to a few
    // predictions flipped by rounding (256 test images: 1 image = 0.39 points).
    CHECK(std::abs(gpu["final_test_acc"].get<double>() - cpu["final_test_acc"].get<double>()) <= 2.0);
  }

  TEST_CASE("tpp train --device cuda: two SGD steps of resnet20 end at the CPU run's weights, statistics, momentum") {
    if (skip_without_gpu()) return;
    REQUIRE_FASHION_MNIST();
    const Scratch scratch;
    const std::string args =
        "--math fp32 train --arch resnet20 --dataset fashion-mnist --limit 32 --test-limit 16 --batch-size 16 "
        "--workers 0 --seed 7 --epochs 1 --momentum 0.9 --weight-decay 5e-4 --lr-schedule 0:0.05 --out ";
    for (const char* device : {"cpu", "cuda"}) {
      const auto run = run_tpp(args + (scratch.dir / device).string() + " --device " + device);
      REQUIRE_MESSAGE(run.status == 0, run.output);
    }
    std::string where;
    const double diff = tpp::testing::max_difference(scratch.dir / "cuda/last.safetensors",
                                                     scratch.dir / "cpu/last.safetensors", &where);
    MESSAGE("resnet20, 2 steps: max |cuda - cpu| / (1 + |cpu|) over weights, BN statistics and momentum: " << diff
                                                                                                      << " at " << where);
    // Both devices sum in their own order (cuDNN's or the emulator's
    // convolutions against oneDNN's) and BN's batch statistics carry the
    // rounding of 19 layers into every step: on the emulated device 1e-5
    // after one step, 1e-5 to 6e-5 after two, 3e-3 after four (measured with
    // other seeds; the early steps of training amplify rounding). A wrong
    // transpose, stride or reduction is off by 1e-2 and more.
    CHECK(diff <= 1e-3);
  }

  TEST_CASE("tpp forward --device cuda gives the CPU's logits for resnet20") {
    if (skip_without_gpu()) return;
    const Scratch scratch;
    fs::create_directories(scratch.dir);
    const fs::path checkpoint = tpp::testing::save_zoo_model(scratch.dir, "resnet20", 3, "cifar10", 13);
    tpp::manual_seed(14);
    const fs::path input = scratch.dir / "input.safetensors";
    tpp::save_safetensors(input, {{"input", tpp::randn({4, 3, 32, 32})}});
    std::vector<float> logits[2];
    for (const int d : {0, 1}) {
      const std::string device = d == 0 ? "cpu" : "cuda";
      const fs::path output = scratch.dir / (device + ".safetensors");
      const auto run = run_tpp("--math fp32 forward --checkpoint " + checkpoint.string() + " --input " +
                               input.string() + " --output " + output.string() + " --device " + device);
      REQUIRE_MESSAGE(run.status == 0, run.output);
      const tpp::Tensor y = tpp::load_safetensors(output).tensors.at("output");
      REQUIRE(y.sizes() == tpp::Shape{4, 10});
      CHECK(y.device().is_cpu());
      logits[d] = y.to_vector<float>();
    }
    double worst = 0;
    for (size_t i = 0; i < logits[0].size(); ++i)
      worst = std::max(worst, std::abs(double{logits[1][i]} - logits[0][i]) / (1 + std::abs(double{logits[0][i]})));
    MESSAGE("resnet20 eval forward: max |cuda - cpu| / (1 + |cpu|) over 40 logits: " << worst);
    // fp32 through 19 convolutions summed in another order, no training.
    CHECK(worst <= 1e-4);
  }
}
