// Ctrl-C and SIGTERM on `tpp train` and `tpp prune`: the run stops after the
// step in progress, saves a checkpoint there (mid-epoch), says "interrupted"
// in summary.json and one line on how to resume, exits 128 + the signal; the
// resumed run ends with the bits of an uninterrupted one.
#include <doctest/doctest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "engine/safetensors.h"
#include "models/checkpoint.h"
#include "models/zoo.h"
#include "tests/apps/crash_harness.h"
#include "tests/apps/run_tpp.h"
#include "tests/data/data_test_util.h"

namespace fs = std::filesystem;
using namespace tpp::testing::crash_detail;

namespace {

std::vector<std::string> with(std::vector<std::string> args, const std::vector<std::string>& more) {
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

// Runs to the end; the exit code (a run killed by a signal fails the test).
int run_to_end(const std::vector<std::string>& args, const fs::path& output) {
  const Exit exit = wait_to_end(spawn_tpp(args, output, {}), 600, output);
  REQUIRE_MESSAGE(exit.exited, "killed by signal ", exit.code, "; output: ", read_all(output));
  return exit.code;
}

// Starts the run and waits until its run directory has its config (the
// signal handlers are installed by then).
pid_t start_run(const std::vector<std::string>& args, const fs::path& dir, const fs::path& output) {
  const pid_t pid = spawn_tpp(args, output, {});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
  while (!fs::exists(dir / "config.toml") && std::chrono::steady_clock::now() < deadline && !wait_for(pid, 0.002)) {
  }
  REQUIRE_MESSAGE(fs::exists(dir / "config.toml"), "the run ended or hung before it began; output: ", read_all(output));
  return pid;
}

// Sends `signal` to a started run: it stops after the step in progress.
int interrupt(const std::vector<std::string>& args, const fs::path& dir, int signal, const fs::path& output) {
  const pid_t pid = start_run(args, dir, output);
  ::kill(pid, signal);
  const Exit exit = wait_to_end(pid, 600, output);
  REQUIRE_MESSAGE(exit.exited, "killed by signal ", exit.code, "; output: ", read_all(output));
  return exit.code;
}

// As interrupt(), but a second signal follows the first at once, while the
// step in progress (over a second long) still runs.
int interrupt_twice(const std::vector<std::string>& args, const fs::path& dir, int signal, const fs::path& output) {
  const pid_t pid = start_run(args, dir, output);
  ::kill(pid, signal);
  const std::optional<Exit> early = wait_for(pid, 0.01);
  REQUIRE_MESSAGE(!early, "the run ended before the second signal; output: ", read_all(output));
  ::kill(pid, signal);
  const Exit exit = wait_to_end(pid, 600, output);
  REQUIRE_MESSAGE(exit.exited, "killed by signal ", exit.code, "; output: ", read_all(output));
  return exit.code;
}

std::string last_line(const std::string& text) {
  const size_t end = text.find_last_not_of('\n');
  const size_t start = text.rfind('\n', end);
  return text.substr(start == std::string::npos ? 0 : start + 1, end - (start == std::string::npos ? 0 : start + 1) + 1);
}

std::string status_of(const fs::path& dir) {
  return nlohmann::json::parse(read_all(dir / "summary.json")).at("status").get<std::string>();
}

// The trainer's position in its epoch at the checkpoint (steps done).
int64_t step_in_epoch(const fs::path& checkpoint) {
  const tpp::models::Checkpoint c = tpp::models::read_checkpoint(checkpoint);
  return c.extra_tensors.at("train.epoch_progress").to_vector<int64_t>()[0];
}

}  // namespace

TEST_SUITE("apps") {
  TEST_CASE("tpp train: SIGINT saves mid-epoch, exits 130 with how to resume, and the resumed run has the same bits") {
    REQUIRE_FASHION_MNIST();
    const tpp::testing::TempDir scratch;
    // 2 epochs of 100 steps.
    const std::vector<std::string> recipe = {
        "train", "--arch", "mlp7_linear", "--dataset", "fashion-mnist", "--limit", "1000", "--test-limit", "100",
        "--batch-size", "10", "--epochs", "2", "--lr-schedule", "0:0.01", "--seed", "4", "--workers", "1"};
    const fs::path reference = scratch / "reference", run = scratch / "run";
    REQUIRE(run_to_end(with(recipe, {"--out", reference.string()}), scratch / "reference.out") == 0);

    const fs::path output = scratch / "run.out";
    CHECK(interrupt(with(recipe, {"--out", run.string()}), run, SIGINT, output) == 130);
    const std::string said = last_line(read_all(output));
    CHECK_MESSAGE(said.starts_with("tpp: interrupted (SIGINT): train: saved after step "), said);
    CHECK_MESSAGE(said.ends_with("; resume with: tpp train --resume " + run.string()), said);
    CHECK(status_of(run) == "interrupted");
    CHECK(step_in_epoch(run / "last.safetensors") > 0);

    REQUIRE(run_to_end({"train", "--resume", run.string()}, scratch / "resume.out") == 0);
    CHECK(status_of(run) == "finished");
    check_same_tensors(reference / "last.safetensors", run / "last.safetensors");
    check_same_tensors(reference / "best.safetensors", run / "best.safetensors");
  }

  TEST_CASE("tpp train: a second Ctrl-C ends the run at once, without finishing the step or saving") {
    REQUIRE_FASHION_MNIST();
    const tpp::testing::TempDir scratch;
    const fs::path run = scratch / "run", output = scratch / "run.out";
    // Steps of 1,000 images through ResNet-20: each takes seconds on a CPU.
    const std::vector<std::string> recipe = {
        "train", "--arch", "resnet20", "--dataset", "fashion-mnist", "--limit", "3000", "--test-limit", "100",
        "--batch-size", "1000", "--epochs", "1", "--seed", "4", "--workers", "0", "--out", run.string()};
    CHECK(interrupt_twice(recipe, run, SIGINT, output) == 130);
    const std::string said = read_all(output);
    CHECK_MESSAGE(said.find("tpp: interrupted") == std::string::npos, said);  // no clean stop: no checkpoint to name
    CHECK_FALSE(fs::exists(run / "last.safetensors"));
    CHECK(fs::exists(run / "config.toml"));  // what was written stays
  }

  TEST_CASE("tpp prune: SIGTERM in the regularised phase saves, exits 143, and the resumed run has the same bits") {
    REQUIRE_FASHION_MNIST();
    const tpp::testing::TempDir scratch;
    const fs::path base = scratch / "base.safetensors";
    tpp::models::save_checkpoint(base, *tpp::models::make_model("mlp7_linear", 10, 1),
                                 {.arch = "mlp7_linear", .dataset = "fashion-mnist", .num_classes = 10, .in_channels = 1});
    // 300 regularised iterations, then one retraining epoch.
    const std::vector<std::string> recipe = {
        "prune", "--method", "tpp", "--base", base.string(), "--stage-pr", "net.0:0.5,net.2:0.5", "--limit", "500",
        "--test-limit", "100", "--batch-size", "10", "--epochs", "1", "--lr-schedule", "0:0.01",
        "--reg-granularity", "0.01", "--reg-interval", "2", "--stabilize-iters", "100", "--zero-out-interval", "10",
        "--workers", "1"};
    const fs::path reference = scratch / "reference", run = scratch / "run";
    REQUIRE(run_to_end(with(recipe, {"--out", reference.string()}), scratch / "reference.out") == 0);

    const fs::path output = scratch / "run.out";
    CHECK(interrupt(with(recipe, {"--out", run.string()}), run, SIGTERM, output) == 143);
    const std::string said = last_line(read_all(output));
    CHECK_MESSAGE(said.starts_with("tpp: interrupted (SIGTERM): prune: saved in phase regularize after iteration "),
                  said);
    CHECK_MESSAGE(said.ends_with(" of 301; resume with: tpp prune --resume " + run.string()), said);
    CHECK(status_of(run) == "interrupted");

    REQUIRE(run_to_end({"prune", "--resume", run.string()}, scratch / "resume.out") == 0);
    CHECK(status_of(run) == "finished");
    for (const char* file : {"pruned.safetensors", "last.safetensors", "best.safetensors"})
      check_same_tensors(reference / file, run / file);
  }
}
