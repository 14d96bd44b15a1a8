// `tpp repro resnet-fashion-mnist` end to end through the binary with tiny
// settings (256 Fashion-MNIST images, one epoch per training, 22 TPP
// iterations): every method at both learning rates and every ablation runs,
// and the table, JSON and report carry a number for each.
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/apps/crash_harness.h"
#include "tests/apps/run_tpp.h"
#include "tests/data/data_test_util.h"

namespace fs = std::filesystem;
using Json = nlohmann::json;

TEST_CASE("tpp repro resnet-fashion-mnist runs every method, learning rate and ablation to the end") {
  REQUIRE_FASHION_MNIST();
  const tpp::testing::TempDir scratch;
  const fs::path out = scratch / "repro";
  const auto run = tpp::testing::run_tpp(
      "repro resnet-fashion-mnist --recipe cpu --seeds 1 --dense-epochs 1 --epochs 1 --reg-granularity 0.5 "
      "--reg-interval 1 --stabilize-iters 20 --zero-out-interval 1 --limit 256 --test-limit 128 --workers 0 --out " +
      out.string());
  REQUIRE_MESSAGE(run.status == 0, run.output);
  for (const char* row : {"| L1 |", "| L1 + OrthP |", "| TPP |", "| Scratch |", "| TPP (gram ✓, BN ✓) |",
                          "| TPP without the BN term (gram ✓, BN ✗) |", "| TPP without the gram term (gram ✗, BN ✓) |",
                          "| TPP with the \"diagonal\" target |"})
    CHECK_MESSAGE(run.output.find(row) != std::string::npos, row);

  std::ifstream in(out / "summary.json");
  REQUIRE(in.good());
  const Json summary = Json::parse(in);
  for (const char* method : {"l1", "l1+orthp", "tpp", "scratch"})
    for (const char* column : {"acc_after_removal", "best_acc_lr1e-2", "best_acc_lr1e-3", "jsv_after_pruning"}) {
      const Json& values = summary.at("methods").at(method).at(column);
      REQUIRE_MESSAGE(values.size() == 1, method, " ", column);
      CHECK_MESSAGE(values[0].is_number(), method, " ", column);
    }
  for (const char* variant : {"l1", "tpp", "ablation-no-bn", "ablation-no-gram", "ablation-diagonal"})
    CHECK_MESSAGE(summary.at("ablations_after_removal").at(variant).at(0).is_number(), variant);
  // PR 0.9 on the nine block convs, each feeding its block's second conv:
  // about 90% of the parameters go, and the FLOPs more than tenfold.
  CHECK(summary.at("counts").at("sparsity").get<double>() == doctest::Approx(0.905).epsilon(0.01));
  CHECK(summary.at("counts").at("flops_speedup").get<double>() > 10);
  // TPP's two retraining runs start from one regularised, pruned network.
  tpp::testing::crash_detail::check_same_tensors(out / "seed0" / "tpp-lr0.01" / "pruned.safetensors",
                                                 out / "seed0" / "tpp-lr0.001" / "pruned.safetensors");
  CHECK(fs::exists(out / "report.html"));
}
