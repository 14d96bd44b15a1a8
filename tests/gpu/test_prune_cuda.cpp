// `tpp prune --device cuda` end to end against the same run on the CPU, in
// full fp32: the TPP pipeline (regularise, remove, retrain) on a small CNN,
// and its --resume on the GPU (skipped, saying so, without a GPU or without
// Fashion-MNIST).
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/philox.h"
#include "models/checkpoint.h"
#include "models/zoo.h"
#include "tests/apps/run_tpp.h"
#include "tests/data/data_test_util.h"
#include "tests/gpu/gpu_available.h"

namespace fs = std::filesystem;
using tpp::testing::run_tpp;
using tpp::testing::TempDir;
using Json = nlohmann::json;

namespace {

// A freshly initialised resnet20 for Fashion-MNIST, the base to prune: the
// filters are chosen on these weights, on the host, for both devices.
fs::path save_base(const TempDir& dir) {
  tpp::manual_seed(11);
  const auto net = tpp::models::make_model("resnet20", 10, 1);
  const fs::path path = dir / "resnet20.safetensors";
  tpp::models::save_checkpoint(path, *net,
                               {.arch = "resnet20", .dataset = "fashion-mnist", .num_classes = 10, .in_channels = 1});
  return path;
}

// resnet20's first convs of each block at PR 0.5; λ reaches 1 in 2
// iterations, then 20 stabilising iterations (the ninth pruned layer is
// zeroed at the 18th); JSV on one batch. Small enough for the emulated
// device (about 25 images/s there).
const std::string kPrune =
    "--math fp32 prune --method tpp --stage-pr '*layer*.conv1:0.5' --reg-granularity 0.5 --reg-interval 1 "
    "--stabilize-iters 20 --zero-out-interval 1 --log-interval 1 --lr-schedule 0:0.01 --jsv-batches 1 "
    "--limit 128 --test-limit 128 --batch-size 16 --workers 0 --seed 5";

Json run_prune(const fs::path& base, const fs::path& out, const std::string& device, int epochs) {
  const auto run = run_tpp(fmt::format("{} --base {} --out {} --device {} --epochs {}", kPrune, base.string(),
                                       out.string(), device, epochs));
  REQUIRE_MESSAGE(run.status == 0, run.output);
  std::ifstream in(out / "summary.json");
  return Json::parse(in);
}

std::vector<Json> read_log(const fs::path& file) {
  std::vector<Json> lines;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) lines.push_back(Json::parse(line));
  return lines;
}

// The first logged regularisation iteration: the penalties of the base
// weights on the first batch, before any step.
Json first_penalty(const fs::path& run) {
  for (const Json& line : read_log(run / "log.jsonl"))
    if (line.contains("gram")) return line;
  FAIL("no regularisation line in ", (run / "log.jsonl").string());
  return {};
}

double relative_gap(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-12); }

}  // namespace

TEST_SUITE("gpu") {
  TEST_CASE("tpp prune --device cuda runs the TPP pipeline on resnet20 as the CPU does") {
    if (skip_without_gpu()) return;
    REQUIRE_FASHION_MNIST();
    const TempDir dir;
    const fs::path base = save_base(dir);
    const Json cpu = run_prune(base, dir / "cpu", "cpu", 1);
    const Json gpu = run_prune(base, dir / "gpu", "cuda", 1);
    CHECK(gpu["status"] == "finished");
    CHECK(fs::exists(dir / "gpu" / "last.safetensors"));
    CHECK(fs::exists(dir / "gpu" / "pruned.safetensors"));

    // The same base weights and data: the penalties of the first iteration
    // agree to rounding.
    const Json p_cpu = first_penalty(dir / "cpu"), p_gpu = first_penalty(dir / "gpu");
    for (const char* term : {"gram", "l2", "bn", "kept_norm", "pruned_norm"})
      CHECK_MESSAGE(relative_gap(p_gpu[term].get<double>(), p_cpu[term].get<double>()) < 1e-3, term);

    // The same filters are cut (chosen on the host from the base): the same
    // parameter and FLOP counts.
    CHECK(gpu["removal"]["pruned"] == cpu["removal"]["pruned"]);
    CHECK(gpu["removal"]["speedup"] == cpu["removal"]["speedup"]);
    // TPP zeroed the pruned filters: removing them costs (up to a rounding
    // flip) no prediction on the GPU either; 128 test images, 1 = 0.78 points.
    CHECK(std::abs(gpu["removal"]["test_acc_after"].get<double>() - gpu["removal"]["test_acc_before"].get<double>()) <=
          0.8);
    CHECK(gpu["removal"]["jsv_after_pruning"]["mean"].get<double>() > 0);
    // After 22 regularised iterations and one retraining epoch the devices
    // may differ by a few flipped predictions.
    CHECK(std::abs(gpu["retrain"]["final_test_acc"].get<double>() - cpu["retrain"]["final_test_acc"].get<double>()) <=
          3.0);
    CHECK(relative_gap(gpu["removal"]["jsv_after_pruning"]["mean"].get<double>(),
                       cpu["removal"]["jsv_after_pruning"]["mean"].get<double>()) < 0.05);
  }

  TEST_CASE("tpp prune --device cuda: --resume of a finished run with more --epochs retrains on the GPU") {
    if (skip_without_gpu()) return;
    REQUIRE_FASHION_MNIST();
    const TempDir dir;
    const fs::path base = save_base(dir);
    const Json straight = run_prune(base, dir / "straight", "cuda", 2);
    run_prune(base, dir / "split", "cuda", 1);
    const auto resumed = run_tpp(fmt::format("--math fp32 prune --resume {} --device cuda --epochs 2", (dir / "split").string()));
    REQUIRE_MESSAGE(resumed.status == 0, resumed.output);
    std::ifstream in(dir / "split" / "summary.json");
    const Json split = Json::parse(in);
    CHECK(split["status"] == "finished");
    CHECK(split["retrain"]["epochs_done"] == 2);
    // The checkpoint's weights and momentum go back onto the GPU: the resumed
    // run follows the straight one up to GPU rounding.
    CHECK(std::abs(split["retrain"]["final_test_acc"].get<double>() -
                   straight["retrain"]["final_test_acc"].get<double>()) <= 3.0);
  }
}
