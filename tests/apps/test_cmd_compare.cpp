// `tpp compare` on run directories in every state a run can be left in.
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/philox.h"
#include "models/checkpoint.h"
#include "models/zoo.h"
#include "tests/apps/run_tpp.h"
#include "tests/data/data_test_util.h"

using namespace tpp;
using tpp::testing::run_tpp;
using tpp::testing::TempDir;
using tpp::testing::TppRun;

namespace {

// A `tpp train` run directory of mlp7_linear with `summary` and a best checkpoint.
void write_dense_run(const std::filesystem::path& dir, const nlohmann::json& summary, const std::string& arch) {
  std::filesystem::create_directories(dir);
  manual_seed(5);
  const auto net = models::make_model(arch, 10, 1);
  models::save_checkpoint(dir / "best.safetensors", *net,
                          {.arch = arch, .dataset = "mnist", .num_classes = 10, .in_channels = 1});
  std::ofstream(dir / "config.toml") << "arch=\"" << arch << "\"\ndataset=\"mnist\"\n";
  std::ofstream(dir / "summary.json") << summary.dump(2);
}

nlohmann::json dense_summary(const std::string& status) {
  return {{"status", status},       {"arch", "mlp7_linear"}, {"dataset", "mnist"}, {"best_test_acc", 91.5},
          {"final_test_acc", nullptr}, {"params", 1000},     {"flops", 2000},       {"input", {1, 32, 32}}};
}

}  // namespace

TEST_SUITE("apps") {
  TEST_CASE("tpp compare: failed, killed and still-running runs are rows with their status, never an exception") {
    const TempDir dir;
    write_dense_run(dir / "dense", dense_summary("finished"), "mlp7_linear");
    // Stopped on NaN: the accuracies are null in its summary.
    nlohmann::json failed = dense_summary("failed");
    failed["best_test_acc"] = nullptr;
    failed["error"] = "train: non-finite loss (nan) at phase train, epoch 1, step 3; pass `on_nan` skip to skip such steps";
    write_dense_run(dir / "nan", failed, "mlp7_linear");
    // "running", but its process is gone.
    nlohmann::json gone = dense_summary("running");
    gone["pid"] = 999999999;
    write_dense_run(dir / "gone", gone, "mlp7_linear");
    // A prune run killed before its first summary.json.
    std::filesystem::create_directories(dir / "pruning");
    std::ofstream(dir / "pruning" / "config.toml") << "method=\"tpp\"\nstage-pr=\"net.*:0.5\"\n";

    std::string runs;
    for (const char* name : {"dense", "nan", "gone", "pruning"}) runs.append(" ").append((dir / name).string());
    const TppRun run = run_tpp("compare --speed-rounds 3 --speed-batch 4 --json" + runs);
    REQUIRE_MESSAGE(run.status == 0, run.output);
    const nlohmann::json out = nlohmann::json::parse(run.output);
    REQUIRE(out.at("runs").size() == 4);
    CHECK(out.at("speed").at("rounds") == 3);
    CHECK(out.at("speed").at("batch") == 4);
    const nlohmann::json& rows = out.at("runs");
    CHECK(rows[0].at("status") == "finished");
    CHECK(rows[0].at("best_test_acc") == 91.5);
    CHECK(rows[0].at("inference_images_per_s").at("median").get<double>() > 0);
    CHECK(rows[0].at("inference_images_per_s").at("min").get<double>() <=
          rows[0].at("inference_images_per_s").at("max").get<double>());
    CHECK(rows[1].at("status") == "failed");
    CHECK(rows[1].at("best_test_acc").is_null());
    // The summary keeps the library's setting names; compare says them as the command's flags.
    CHECK(rows[1].at("notes")[0] ==
          "train: non-finite loss (nan) at phase train, epoch 1, step 3; pass --on-nan skip to skip such steps");
    CHECK(rows[2].at("status") == "killed");
    CHECK(rows[3].at("status") == "killed");
    CHECK(rows[3].at("method") == "tpp");
    CHECK(rows[3].at("inference_images_per_s").is_null());

    const TppRun text = run_tpp("compare --speed-rounds 2 --speed-batch 4" + runs + " --out " +
                                (dir / "compare.html").string());
    REQUIRE_MESSAGE(text.status == 0, text.output);
    CHECK(text.output.substr(0, text.output.find('\n')).starts_with("run      status    method  arch"));
    CHECK(text.output.find("pruning: no summary.json (stopped before its first checkpoint)") != std::string::npos);
    CHECK(std::filesystem::exists(dir / "compare.html"));
  }

  TEST_CASE("tpp compare: runs of different architectures are compared with a warning") {
    const TempDir dir;
    write_dense_run(dir / "mlp", dense_summary("finished"), "mlp7_linear");
    nlohmann::json vgg = dense_summary("finished");
    vgg["arch"] = "vgg_small";
    vgg["input"] = {1, 28, 28};
    write_dense_run(dir / "vgg", vgg, "vgg_small");
    const TppRun run = run_tpp("compare --speed-rounds 1 --speed-batch 2 --data-dir " + (dir / "none").string() + " " +
                               (dir / "mlp").string() + " " + (dir / "vgg").string());
    REQUIRE_MESSAGE(run.status == 0, run.output);
    CHECK(run.output.substr(0, run.output.find('\n')) ==
          "compare: warning: the runs are of different architectures (mlp7_linear, vgg_small): their speed and size "
          "do not compare");
  }
}
