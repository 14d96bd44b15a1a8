// `tpp train` under `mpirun -np 2` (built with MPI only; ctest labels unit
// and mpi): two ranks with batch B give the run of one process with batch 2B;
// a rank that dies or fails ends the whole job, with an error, soon.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/apps/run_tpp.h"
#include "tests/dist/mpi_launch.h"

namespace fs = std::filesystem;
using Run = tpp::testing::TppRun;
using namespace tpp::testing::mpi;

namespace {

// mlp7_linear on 200 Fashion-MNIST images, momentum and weight decay; B is per rank.
std::string mlp_run(int64_t batch, int epochs, const std::string& out,
                    const std::string& lr_schedule = "0:0.05,1:0.01") {
  return "train --arch mlp7_linear --dataset fashion-mnist --limit 200 --test-limit 100 --workers 0 --seed 3 "
         "--momentum 0.9 --weight-decay 5e-4 --lr-schedule " +
         lr_schedule + " --batch-size " + std::to_string(batch) + " --epochs " + std::to_string(epochs) +
         " --out " + out;
}

}  // namespace

TEST_SUITE("mpi") {

TEST_CASE("mpirun -np 2 tpp train with batch 25 gives the weights of one process with batch 50") {
  REQUIRE_DATA();
  const Scratch scratch("equal");
  const Shell two = shell(mpirun(2, mlp_run(25, 2, scratch / "two")));
  REQUIRE_MESSAGE(two.status == 0, two.output);
  const Run one = tpp::testing::run_tpp(mlp_run(50, 2, scratch / "one"));
  REQUIRE_MESSAGE(one.status == 0, one.output);

  std::string where;
  const double diff = max_difference(scratch.dir / "two/last.safetensors", scratch.dir / "one/last.safetensors", &where);
  MESSAGE("max |two ranks - one process| over weights and momentum after 2 epochs: " << diff << " at " << where);
  CHECK(diff <= 1e-5);

  // Rank 0 speaks and writes for the job; the global numbers are one process's.
  CHECK(two.output.find("data-parallel over 2 ranks (OpenMPI, mpi backend): batch 25 per rank, global batch 50") !=
        std::string::npos);
  CHECK(count(two.output, "epoch 2/2  train loss") == 1);
  CHECK(count(two.output, "train: final test accuracy") == 1);
  const auto log_two = read_jsonl(scratch.dir / "two/log.jsonl"), log_one = read_jsonl(scratch.dir / "one/log.jsonl");
  REQUIRE(log_two.size() == 2);
  REQUIRE(log_one.size() == 2);
  for (size_t e = 0; e < 2; ++e) {
    CHECK(log_two[e]["test_acc"] == log_one[e]["test_acc"]);
    CHECK(log_two[e]["train_acc"] == log_one[e]["train_acc"]);
    CHECK(log_two[e]["train_loss"].get<double>() == doctest::Approx(log_one[e]["train_loss"].get<double>()).epsilon(1e-5));
    CHECK(log_two[e]["test_loss"].get<double>() == doctest::Approx(log_one[e]["test_loss"].get<double>()).epsilon(1e-5));
  }
  std::ifstream summary_file(scratch.dir / "two/summary.json");
  const auto summary = nlohmann::json::parse(summary_file);
  CHECK(summary["status"] == "finished");
  CHECK(summary["world_size"] == 2);
  CHECK(summary["global_batch_size"] == 50);
}

TEST_CASE("mpirun -np 2 tpp train --resume continues the two-rank run exactly") {
  REQUIRE_DATA();
  const Scratch scratch("resume");
  const Shell straight = shell(mpirun(2, mlp_run(25, 2, scratch / "straight")));
  REQUIRE_MESSAGE(straight.status == 0, straight.output);
  const Shell first = shell(mpirun(2, mlp_run(25, 1, scratch / "resumed")));
  REQUIRE_MESSAGE(first.status == 0, first.output);
  const Shell second = shell(mpirun(2, "train --resume " + (scratch / "resumed") + " --epochs 2"));
  REQUIRE_MESSAGE(second.status == 0, second.output);
  CHECK(second.output.find("resuming after epoch 1") != std::string::npos);
  CHECK(max_difference(scratch.dir / "straight/last.safetensors", scratch.dir / "resumed/last.safetensors") == 0);
}

TEST_CASE("Ctrl-C to one rank stops both after the same step, the resumed two-rank run has the same bits") {
  REQUIRE_DATA();
  const Scratch scratch("interrupt");
  // ResNet-20 without synchronised BN: inside an epoch each rank's BN
  // statistics are its own, and the checkpoint must keep both.
  const auto recipe = [&](const std::string& out) {
    return "train --arch resnet20 --dataset fashion-mnist --limit 400 --test-limit 40 --workers 0 --seed 6 "
           "--epochs 2 --momentum 0.9 --lr-schedule 0:0.05 --batch-size 10 --out " +
           out;
  };
  const Shell straight = shell(mpirun(2, recipe(scratch / "straight")));
  REQUIRE_MESSAGE(straight.status == 0, straight.output);

  // Rank 1 is a shell that starts tpp and sends it SIGINT once rank 0 has
  // written the run's config; rank 0 gets no signal.
  const std::string out = scratch / "run";
  const std::string rank1 = "bash -c '" + kTpp + " " + recipe(out) + " & pid=$!; while [ ! -s " + out +
                            "/config.toml ]; do sleep 0.01; done; kill -INT $pid; wait $pid'";
  const Shell job = shell(std::string(TPP_MPIEXEC) + " -n 1 " + kTpp + " " + recipe(out) + " : -n 1 " + rank1, 120);
  MESSAGE(job.output);
  CHECK(job.status != 0);
  CHECK(count(job.output, "tpp: interrupted (SIGINT): train: saved after step ") == 1);  // rank 0 speaks for both
  CHECK(job.output.find("; resume with: tpp train --resume " + out) != std::string::npos);
  CHECK(job.output.find("error") == std::string::npos);
  CHECK(read_json(scratch.dir / "run/summary.json")["status"] == "interrupted");

  const Shell resumed = shell(mpirun(2, "train --resume " + out));
  REQUIRE_MESSAGE(resumed.status == 0, resumed.output);
  CHECK(resumed.output.find("resuming in epoch ") != std::string::npos);  // it stopped inside an epoch
  CHECK(read_json(scratch.dir / "run/summary.json")["status"] == "finished");
  std::string where;
  CHECK_MESSAGE(max_difference(scratch.dir / "straight/last.safetensors", scratch.dir / "run/last.safetensors",
                               &where) == 0,
                where);
}

TEST_CASE("mpirun -np 2 tpp train --sync-bn: ResNet-20's weights and BN statistics are one process's") {
  REQUIRE_DATA();
  const Scratch scratch("sync_bn");
  const auto run = [&](int64_t batch, const std::string& out) {
    return "train --arch resnet20 --dataset fashion-mnist --limit 32 --test-limit 16 --workers 0 --seed 5 --epochs 1 "
           "--lr-schedule 0:0.05 --batch-size " +
           std::to_string(batch) + " --out " + out;
  };
  const Shell two = shell(mpirun(2, run(8, scratch / "two") + " --sync-bn"));
  REQUIRE_MESSAGE(two.status == 0, two.output);
  CHECK(two.output.find("synchronised BN") != std::string::npos);
  const Run one = tpp::testing::run_tpp(run(16, scratch / "one"));
  REQUIRE_MESSAGE(one.status == 0, one.output);
  std::string where;
  const double diff = max_difference(scratch.dir / "two/last.safetensors", scratch.dir / "one/last.safetensors", &where);
  MESSAGE("ResNet-20, sync BN, 2 steps: max |two ranks - one process| / (1 + |one process|) = " << diff << " at "
                                                                                              << where);
  // f32 through 19 batch-statistics backward passes: one process with two
  // BLAS threads instead of one differs from itself by 4e-4 here (measured);
  // per-rank BN differs by 0.3.
  CHECK(diff <= 1e-3);
}

TEST_CASE("a loss that turns NaN stops both ranks at the same step, and rank 0's summary.json says so") {
  REQUIRE_DATA();
  const Scratch scratch("diverge");
  const Shell job = shell(mpirun(2, mlp_run(25, 2, scratch / "run", "0:1000")), 90);
  CHECK(job.status != 0);
  CHECK(job.seconds < 60);
  CHECK(job.output.find("did not complete") == std::string::npos);  // no rank was left waiting
  CHECK(count(job.output, "; stopping (--on-nan stop): lower the learning rate") >= 1);
  std::ifstream summary_file(scratch.dir / "run/summary.json");
  REQUIRE(summary_file.good());
  const auto summary = nlohmann::json::parse(summary_file);
  CHECK(summary["status"] == "failed");
  CHECK(summary["error"].get<std::string>().starts_with("train: non-finite loss ("));
}

TEST_CASE("a rank killed mid-training: the other exits with an error within the collective timeout") {
  REQUIRE_DATA();
  const Scratch scratch("killed");
  const std::string out = scratch / "run";
  const std::string args = mlp_run(25, 100, out);
  // Rank 1 is a shell that starts tpp, kills it once rank 0 has logged an
  // epoch, and lives on: only the collective timeout can free rank 0.
  const std::string rank1 = "bash -c '" + kTpp + " " + args + " & pid=$!; while [ ! -s " + out +
                            "/log.jsonl ]; do sleep 0.05; done; kill -9 $pid; sleep 120'";
  const Shell job = shell("env TPP_COLLECTIVE_TIMEOUT=5 " + std::string(TPP_MPIEXEC) + " -n 1 " + kTpp + " " + args +
                              " : -n 1 " + rank1,
                          90);
  MESSAGE(job.output);
  CHECK(job.status != 0);
  CHECK(job.seconds < 60);  // the job ended by itself, long before the guard's 90 s
  CHECK(job.output.find("tpp: rank 0 of 2: ") != std::string::npos);
  CHECK(job.output.find("did not complete within 5 s (TPP_COLLECTIVE_TIMEOUT)") != std::string::npos);
}

TEST_CASE("a rank that fails with an error ends every rank at once, with its message") {
  REQUIRE_DATA();
  const Scratch scratch("throws");
  // Rank 1 alone gets an LR schedule it refuses (a usage error, found before
  // MPI starts); rank 0 must not wait for it.
  const Shell job = shell("env TPP_COLLECTIVE_TIMEOUT=120 " + std::string(TPP_MPIEXEC) + " -n 1 " + kTpp + " " +
                              mlp_run(25, 2, scratch / "run") + " : -n 1 " + kTpp + " " +
                              mlp_run(25, 2, scratch / "run", "0:-1"),
                          90);
  MESSAGE(job.output);
  CHECK(job.status != 0);
  CHECK(job.seconds < 60);  // far below the collective timeout
  CHECK(job.output.find("tpp: error on rank 1: --lr-schedule is not a valid schedule: epoch and lr must be >= 0 in "
                        "'0:-1'") != std::string::npos);
}

}  // TEST_SUITE
