// `tpp prune` under `mpirun -np 2` (built with MPI only; ctest labels unit
// and mpi): TPP's whole pipeline on two ranks with batch B is the pipeline of
// one process with batch 2B (penalties, hard zeroing, the filters removed,
// retraining); a two-rank run resumes; a diverging run or rank 0's refusal
// stops both ranks.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/philox.h"
#include "models/checkpoint.h"
#include "models/zoo.h"
#include "tests/apps/run_tpp.h"
#include "tests/dist/mpi_launch.h"

namespace fs = std::filesystem;
using Json = nlohmann::json;
using Run = tpp::testing::TppRun;
using namespace tpp::testing::mpi;

namespace {

// A freshly initialised mlp7_linear for Fashion-MNIST, saved as the base to prune.
fs::path save_base(const Scratch& scratch) {
  tpp::manual_seed(11);
  const auto net = tpp::models::make_model("mlp7_linear", 10, 1);
  const fs::path path = scratch.dir / "base.safetensors";
  const tpp::models::CheckpointInfo info{
      .arch = "mlp7_linear", .dataset = "fashion-mnist", .num_classes = 10, .in_channels = 1};
  tpp::models::save_checkpoint(path, *net, info);
  return path;
}

// TPP on mlp7_linear's hidden layers at PR 0.5 over 400 images: λ grows 0.25
// every 2 iterations to 1, then 14 iterations zero one layer every 2 (23
// iterations, checkpoints every 5), removal, `epochs` of retraining. B is per rank.
std::string tpp_prune(const fs::path& base, int64_t batch, int epochs, const std::string& out,
                      const std::string& reg_lr = "0.05") {
  return fmt::format(
      "prune --method tpp --base {} --stage-pr 'net.*:0.5' --skip-layers net.12 --limit 400 --test-limit 200 "
      "--workers 0 --seed 3 --batch-size {} --reg-granularity 0.25 --reg-interval 2 --stabilize-iters 14 "
      "--zero-out-interval 2 --log-interval 1 --checkpoint-interval 5 --reg-lr {} --lr-schedule 0:0.1,1:0.02 "
      "--epochs {} --out {}",
      base.string(), batch, reg_lr, epochs, out);
}

void check_close(const Json& two, const Json& one, const char* key, double tolerance = 1e-5) {
  INFO(key, ": ", two.dump(), " vs ", one.dump());
  REQUIRE(two.contains(key));
  CHECK(two[key].get<double>() == doctest::Approx(one[key].get<double>()).epsilon(tolerance));
}

}  // namespace

TEST_SUITE("mpi") {

TEST_CASE("mpirun -np 2 tpp prune --method tpp with batch 50 gives the pipeline of one process with batch 100") {
  REQUIRE_DATA();
  const Scratch scratch("prune_equal");
  const fs::path base = save_base(scratch);
  const Shell two = shell(mpirun(2, tpp_prune(base, 50, 2, scratch / "two")));
  REQUIRE_MESSAGE(two.status == 0, two.output);
  const Run one = tpp::testing::run_tpp(tpp_prune(base, 100, 2, scratch / "one"));
  REQUIRE_MESSAGE(one.status == 0, one.output);

  std::string where;
  const double pruned = max_difference(scratch.dir / "two/pruned.safetensors", scratch.dir / "one/pruned.safetensors");
  const double last =
      max_difference(scratch.dir / "two/last.safetensors", scratch.dir / "one/last.safetensors", &where);
  MESSAGE("max |two ranks - one process|: " << pruned << " after removal, " << last << " after retraining (at "
                                            << where << ")");
  CHECK(pruned <= 1e-5);  // the same filters cut (else the shapes or values differ)
  CHECK(last <= 1e-5);

  // Rank 0 speaks and writes for the job.
  CHECK(two.output.find("prune: data-parallel over 2 ranks (OpenMPI, mpi backend): batch 50 per rank, global batch "
                        "100") != std::string::npos);
  CHECK(count(two.output, "prune: removed filters of 6 layers") == 1);
  CHECK(count(two.output, "epoch 2/2  train loss") == 1);

  const auto log_two = read_jsonl(scratch.dir / "two/log.jsonl"), log_one = read_jsonl(scratch.dir / "one/log.jsonl");
  REQUIRE(log_two.size() == log_one.size());
  size_t penalties = 0, epochs = 0, removals = 0;
  for (size_t i = 0; i < log_two.size(); ++i) {
    const Json &a = log_two[i], &b = log_one[i];
    REQUIRE(a["phase"] == b["phase"]);
    if (a.contains("iteration")) {  // the penalty terms, on the same weights
      ++penalties;
      CHECK(a["iteration"] == b["iteration"]);
      CHECK(a["lambda"] == b["lambda"]);
      for (const char* key : {"ce", "gram", "l2", "bn", "kept_norm"}) check_close(a, b, key);
      CHECK(a["pruned_norm"].get<double>() == doctest::Approx(b["pruned_norm"].get<double>()).epsilon(1e-4));
    } else if (a["phase"] == "remove") {
      ++removals;
      CHECK(a["test_acc_before"] == b["test_acc_before"]);
      CHECK(a["test_acc"] == b["test_acc"]);
      CHECK(a["layers"] == b["layers"]);
      CHECK(a["pruned"] == b["pruned"]);
      for (const char* key : {"test_loss_before", "test_loss"}) check_close(a, b, key);
      check_close(a["jsv"], b["jsv"], "mean", 1e-4);
    } else {  // an epoch of regularisation or retraining
      ++epochs;
      CHECK(a["test_acc"] == b["test_acc"]);
      CHECK(a["train_acc"] == b["train_acc"]);
      for (const char* key : {"train_loss", "test_loss"}) check_close(a, b, key);
      if (a["phase"] == "retrain") check_close(a["jsv"], b["jsv"], "mean", 1e-4);
    }
  }
  CHECK(penalties == 23);
  CHECK(removals == 1);
  CHECK(epochs == 5 + 2);  // 23 iterations of 4 global batches: 5 whole passes; 2 of retraining

  const Json summary = read_json(scratch.dir / "two/summary.json");
  CHECK(summary["status"] == "finished");
  CHECK(summary["world_size"] == 2);
  CHECK(summary["global_batch_size"] == 100);
}

TEST_CASE("mpirun -np 2 tpp prune --resume continues the two-rank run exactly") {
  REQUIRE_DATA();
  const Scratch scratch("prune_resume");
  const fs::path base = save_base(scratch);
  const Shell straight = shell(mpirun(2, tpp_prune(base, 50, 2, scratch / "straight")));
  REQUIRE_MESSAGE(straight.status == 0, straight.output);
  // Stopped after one epoch of retraining; both ranks read last.safetensors (the pruned model, momentum,
  // data position).
  const Shell first = shell(mpirun(2, tpp_prune(base, 50, 1, scratch / "resumed")));
  REQUIRE_MESSAGE(first.status == 0, first.output);
  const Shell second = shell(mpirun(2, "prune --resume " + (scratch / "resumed") + " --epochs 2"));
  REQUIRE_MESSAGE(second.status == 0, second.output);
  CHECK(second.output.find("(resuming in phase retrain)") != std::string::npos);
  CHECK(max_difference(scratch.dir / "straight/last.safetensors", scratch.dir / "resumed/last.safetensors") == 0);
  CHECK(read_jsonl(scratch.dir / "straight/log.jsonl").size() == read_jsonl(scratch.dir / "resumed/log.jsonl").size());
}

TEST_CASE("a tpp prune run that diverges stops both ranks at the same step, and rank 0's summary.json says so") {
  REQUIRE_DATA();
  const Scratch scratch("prune_diverge");
  const fs::path base = save_base(scratch);
  const Shell job = shell(mpirun(2, tpp_prune(base, 50, 2, scratch / "run", "1e6")), 90);
  MESSAGE(job.output);
  CHECK(job.status != 0);
  CHECK(job.seconds < 60);
  CHECK(job.output.find("did not complete") == std::string::npos);  // no rank was left waiting
  CHECK(count(job.output, "; stopping (--on-nan stop): lower the learning rate") >= 1);
  const Json summary = read_json(scratch.dir / "run/summary.json");
  CHECK(summary["status"] == "failed");
  CHECK(summary["error"].get<std::string>().starts_with("train: non-finite"));
  CHECK(summary["error"].get<std::string>().find("at phase regularize") != std::string::npos);
}

TEST_CASE("tpp prune: rank 0's refusal of an existing --out stops both ranks with its message") {
  REQUIRE_DATA();
  const Scratch scratch("prune_refused");
  const fs::path base = save_base(scratch);
  fs::create_directories(scratch.dir / "taken");
  {
    std::ofstream(scratch.dir / "taken/config.toml") << "# another run\n";
  }
  const Shell job = shell(mpirun(2, tpp_prune(base, 50, 2, scratch / "taken")), 60);
  MESSAGE(job.output);
  CHECK(job.status != 0);
  CHECK(job.seconds < 30);
  CHECK(job.output.find("did not complete") == std::string::npos);
  CHECK(job.output.find("already exists; pass --overwrite to replace its run") != std::string::npos);
}

}  // TEST_SUITE
