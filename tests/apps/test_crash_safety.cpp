// Crash safety of `tpp train` and `tpp prune`: SIGKILL at random moments and in the middle of
// checkpoint writes never leaves a run directory that does not resume, and
// the resumed run ends with the weights of an uninterrupted one, bit for bit.
// mlp7_linear on the first 2000 MNIST images: a few seconds per run.
#include <doctest/doctest.h>
#include <unistd.h>

#include "data/catalog.h"
#include "engine/error.h"
#include "engine/philox.h"
#include "models/checkpoint.h"
#include "models/zoo.h"
#include "tests/apps/crash_harness.h"

namespace fs = std::filesystem;
using tpp::testing::check_crash_safety;
using tpp::testing::CrashCommand;
using tpp::testing::CrashReport;

namespace {

bool have_mnist() {
  try {
    tpp::data::locate_dataset("mnist", tpp::data::resolve_data_root(""));
    return true;
  } catch (const tpp::Error&) {
    return false;
  }
}

struct Scratch {
  fs::path dir = fs::temp_directory_path() / ("tpp_test_crash_" + std::to_string(::getpid()));
  Scratch() {
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~Scratch() { fs::remove_all(dir); }
};

}  // namespace

TEST_SUITE("apps") {
  TEST_CASE("tpp train: killed with SIGKILL anywhere (checkpoint writes too), it resumes to the same bits") {
    if (!have_mnist()) {
      MESSAGE("skipped: no MNIST (set TPP_DATA to a folder with mnist/)");
      return;
    }
    const Scratch scratch;
    // 8 epochs of 20 steps; the LR drops after the fourth; momentum and
    // weight decay make the optimizer state matter.
    const std::vector<std::string> recipe = {
        "train",        "--arch",         "mlp7_linear", "--dataset",  "mnist",         "--limit",
        "2000",         "--test-limit",   "500",         "--batch-size", "100",         "--epochs",
        "8",            "--lr-schedule",  "0:0.05,4:0.01", "--momentum", "0.9",         "--weight-decay",
        "5e-4",         "--seed",         "3",           "--workers",  "1"};
    CrashCommand train;
    train.start = [&](const fs::path& dir) {
      std::vector<std::string> args = recipe;
      args.insert(args.end(), {"--out", dir.string(), "--overwrite"});
      return args;
    };
    train.resume = [](const fs::path& dir) { return std::vector<std::string>{"train", "--resume", dir.string()}; };

    const CrashReport report =
        check_crash_safety(train, scratch.dir, {.seed = 20261121, .random_kills = 16, .kills_in_save = {1, 2, 3, 4}});
    MESSAGE("reference run ", report.reference_seconds, " s; ", report.random_kills, " random kills, ",
            report.kills_in_save, " kills in a checkpoint write, ", report.kills_left_temp,
            " left a temporary file; ", report.starts, " starts, ", report.resumes, " resumes; checkpoint after each "
            "kill: ", report.trace);
    CHECK(report.kills_in_save >= 2);
    CHECK(report.kills_left_temp >= report.kills_in_save);
    CHECK(report.resumes >= 1);
  }

  TEST_CASE("tpp prune: killed with SIGKILL in any phase (checkpoint writes too), it resumes to the same bits") {
    if (!have_mnist()) {
      MESSAGE("skipped: no MNIST (set TPP_DATA to a folder with mnist/)");
      return;
    }
    const Scratch scratch;
    tpp::manual_seed(4);
    const auto base = scratch.dir / "base.safetensors";
    tpp::models::save_checkpoint(base, *tpp::models::make_model("mlp7_linear", 10, 1),
                                 {.arch = "mlp7_linear", .dataset = "mnist", .num_classes = 10, .in_channels = 1});
    // TPP with λ reaching 1 at iteration 100 and 700 iterations of
    // stabilisation (20 steps an epoch, checkpoints every 50 iterations), then
    // 4 epochs of retraining.
    const std::vector<std::string> recipe = {
        "prune", "--method", "tpp", "--base", base.string(), "--stage-pr", "net.*:0.5", "--skip-layers", "net.12",
        "--dataset", "mnist", "--limit", "2000", "--test-limit", "500", "--batch-size", "100", "--epochs", "4",
        "--lr-schedule", "0:0.01,2:0.001", "--reg-granularity", "0.01", "--reg-interval", "1", "--stabilize-iters",
        "700", "--checkpoint-interval", "50", "--log-interval", "25", "--workers", "1"};
    CrashCommand prune;
    prune.start = [&](const fs::path& dir) {
      std::vector<std::string> args = recipe;
      args.insert(args.end(), {"--out", dir.string(), "--overwrite"});
      return args;
    };
    prune.resume = [](const fs::path& dir) { return std::vector<std::string>{"prune", "--resume", dir.string()}; };
    prune.checkpoints = {"last.safetensors", "best.safetensors", "pruned.safetensors"};
    prune.log_keys_that_vary = {"seconds", "images_per_s", "inference_images_per_s"};

    const CrashReport report =
        check_crash_safety(prune, scratch.dir, {.seed = 7, .random_kills = 12, .kills_in_save = {2, 9, 17, 20}});
    MESSAGE("reference run ", report.reference_seconds, " s; ", report.random_kills, " random kills, ",
            report.kills_in_save, " kills in a checkpoint write; ", report.starts, " starts, ", report.resumes,
            " resumes; checkpoint after each kill: ", report.trace);
    CHECK(report.kills_in_save >= 2);
    CHECK(report.resumes >= 1);
  }
}
