// `tpp repro mlp7-mnist` end to end through the binary, on 500 MNIST images:
// every step finishes, TPP's regularisation is computed once and both
// retraining learning rates branch from it, and a second invocation finds
// everything done. (The ResNet study, slower: tests/slow/test_repro_resnet.cpp.)
#include <doctest/doctest.h>

#include "apps/repro.h"
#include "tests/apps/crash_harness.h"
#include "tests/apps/run_tpp.h"
#include "tests/data/data_test_util.h"

namespace fs = std::filesystem;
using tpp::apps::repro::Json;
using tpp::apps::repro::log_lines;
using tpp::apps::repro::read_json;

TEST_SUITE("apps") {
  TEST_CASE("tpp repro mlp7-mnist runs every step, TPP's branches share one regularisation, a rerun skips all") {
    const auto shared = tpp::testing::shared_data_dir();
    if (!shared) {
      MESSAGE("skipped: no ../shared/data/mnist (or $TPP_DATA/mnist)");
      return;
    }
    const tpp::testing::TempDir scratch;
    const fs::path out = scratch.path() / "repro";
    const std::string command = "repro mlp7-mnist --seeds 1 --dense-epochs 1 --epochs 2 --reg-granularity 0.1 "
                                "--reg-interval 1 --stabilize-iters 100 --zero-out-interval 10 --limit 500 "
                                "--test-limit 200 --workers 0 --data-dir " +
                                (*shared / "mnist").string() + " --out " + out.string();
    const auto first = tpp::testing::run_tpp(command);
    REQUIRE_MESSAGE(first.status == 0, first.output);
    CHECK(first.output.find("| Method | LR 1e-2 | LR 1e-3 | mean JSV after pruning |") != std::string::npos);

    const fs::path seed = out / "seed0";
    for (const char* step : {"dense", "l1-lr0.01", "l1-lr0.001", "l1+orthp-lr0.01", "l1+orthp-lr0.001", "tpp-removed",
                             "tpp-lr0.01", "tpp-lr0.001"})
      CHECK_MESSAGE(read_json(seed / step / "summary.json").at("status") == "finished", step);
    // Both TPP branches retrain the one pruned network: the same weights right after removal.
    tpp::testing::crash_detail::check_same_tensors(seed / "tpp-removed" / "pruned.safetensors",
                                                   seed / "tpp-lr0.001" / "pruned.safetensors");
    // The second branch changed the copied run's schedule, and its log says so.
    bool change_logged = false;
    for (const Json& line : log_lines(seed / "tpp-lr0.001"))
      if (line.value("phase", "") == "resume")
        change_logged = line.at("changes").dump().find("lr-schedule: 0:0.01,1:0.001 -> 0:0.001,1:0.0001") !=
                        std::string::npos;
    CHECK(change_logged);

    const Json summary = read_json(out / "summary.json");
    for (const char* method : {"l1", "l1+orthp", "tpp"})
      for (const char* column : {"best_acc_lr1e-2", "best_acc_lr1e-3", "jsv_after_pruning"}) {
        const Json& values = summary.at("methods").at(method).at(column);
        REQUIRE_MESSAGE(values.size() == 1, method, " ", column);
        CHECK_MESSAGE(values[0].is_number(), method, " ", column);
      }
    CHECK(fs::exists(out / "report.html"));
    CHECK(fs::exists(out / "repro.md"));

    const auto again = tpp::testing::run_tpp(command);
    REQUIRE_MESSAGE(again.status == 0, again.output);
    CHECK(again.output.find("is done, skipped") != std::string::npos);
    CHECK(again.output.find("epoch 1/") == std::string::npos);  // nothing trained again
  }
}
