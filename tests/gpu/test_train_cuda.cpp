// `tpp train --device cuda` end to end against the same run on the CPU, in
// full fp32 (skipped, saying so, without a GPU or without Fashion-MNIST).
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/apps/run_tpp.h"
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

}  // namespace

TEST_SUITE("gpu") {
  TEST_CASE("tpp train --device cuda trains vgg_small as the CPU does and checkpoints it") {
    if (skip_without_gpu()) return;
    REQUIRE_FASHION_MNIST();
    const fs::path scratch = fs::temp_directory_path() / ("tpp_test_train_cuda_" + std::to_string(::getpid()));
    fs::remove_all(scratch);
    const nlohmann::json cpu = train_summary("cpu", scratch / "cpu");
    const nlohmann::json gpu = train_summary("cuda", scratch / "gpu");
    CHECK(gpu["status"] == "finished");
    CHECK(fs::exists(scratch / "gpu" / "last.safetensors"));
    // The same data order and weights: the accuracies agree up to a few
    // predictions flipped by rounding (256 test images: 1 image = 0.39 points).
    CHECK(std::abs(gpu["final_test_acc"].get<double>() - cpu["final_test_acc"].get<double>()) <= 2.0);
    fs::remove_all(scratch);
  }
}
