// Data-parallel `tpp train --device cuda` under `mpirun -np 2`: one process
// per GPU (rank r on cuda:r, its local rank), gradients and synchronised BN
// statistics all-reduced by the NCCL communicator. Two ranks with batch B
// must give the run of one GPU process with batch 2B. Needs two GPUs (the
// emulated device shows two) and a build with MPI, whose launcher starts the
// ranks and passes rank 0's NCCL id; skipped, saying so, otherwise.
#include <doctest/doctest.h>

#include <string>

#include "engine/cuda_info.h"
#include "tests/apps/run_tpp.h"
#include "tests/gpu/gpu_available.h"

#ifdef TPP_MPIEXEC
#include "tests/dist/mpi_launch.h"

namespace mpi = tpp::testing::mpi;

namespace {

bool skip_without_two_gpus() {
  if (skip_without_gpu()) return true;
  if (tpp::cuda_device_count() >= 2) return false;
  MESSAGE("skipped: data-parallel training on CUDA needs 2 GPUs (", tpp::cuda_device_count(), " usable)");
  return true;
}

// Two ranks with `batch` each, then one process with twice the batch; both
// must finish. Returns max |two - one| / (1 + |one|) over every floating
// tensor of the final checkpoints (weights, BN statistics, momentum).
double two_ranks_against_one(const mpi::Scratch& scratch, const std::string& args, int64_t batch,
                             const std::string& two_rank_flags = "") {
  const mpi::Shell two = mpi::shell(mpi::mpirun(2, args + " --batch-size " + std::to_string(batch) + " --out " +
                                                       (scratch / "two") + " " + two_rank_flags));
  REQUIRE_MESSAGE(two.status == 0, two.output);
  CHECK(two.output.find("data-parallel over 2 ranks (OpenMPI, nccl backend)") != std::string::npos);
  const auto one = tpp::testing::run_tpp(args + " --batch-size " + std::to_string(2 * batch) + " --out " +
                                         (scratch / "one"));
  REQUIRE_MESSAGE(one.status == 0, one.output);
  std::string where;
  const double diff = mpi::max_difference(scratch.dir / "two/last.safetensors", scratch.dir / "one/last.safetensors",
                                          &where);
  MESSAGE("max |two ranks - one process| / (1 + |one process|): " << diff << " at " << where);
  return diff;
}

}  // namespace

TEST_SUITE("gpu") {
  TEST_CASE("mpirun -np 2 tpp train --device cuda with batch 25 gives the weights of one GPU process with batch 50") {
    if (skip_without_two_gpus()) return;
    REQUIRE_FASHION_MNIST();
    const mpi::Scratch scratch("cuda_equal");
    // mlp7_linear on 200 Fashion-MNIST images, momentum and weight decay, 2 epochs (16 steps).
    const std::string args =
        "--math fp32 train --arch mlp7_linear --dataset fashion-mnist --limit 200 --test-limit 100 --workers 0 "
        "--seed 3 --momentum 0.9 --weight-decay 5e-4 --lr-schedule 0:0.05,1:0.01 --epochs 2 --device cuda";
    // The MPI suite's bound: the all-reduced mean of two half-batch
    // gradients differs from the full batch's by rounding alone.
    CHECK(two_ranks_against_one(scratch, args, 25) <= 1e-5);
    const auto log_two = mpi::read_jsonl(scratch.dir / "two/log.jsonl");
    const auto log_one = mpi::read_jsonl(scratch.dir / "one/log.jsonl");
    REQUIRE(log_two.size() == 2);
    REQUIRE(log_one.size() == 2);
    for (size_t e = 0; e < 2; ++e) {
      CHECK(log_two[e]["test_acc"] == log_one[e]["test_acc"]);
      CHECK(log_two[e]["train_loss"].get<double>() ==
            doctest::Approx(log_one[e]["train_loss"].get<double>()).epsilon(1e-5));
    }
    const auto summary = mpi::read_json(scratch.dir / "two/summary.json");
    CHECK(summary["world_size"] == 2);
    CHECK(summary["global_batch_size"] == 50);
  }

  TEST_CASE("mpirun -np 2 tpp train --device cuda --sync-bn: ResNet-20's weights and BN statistics are one GPU's") {
    if (skip_without_two_gpus()) return;
    REQUIRE_FASHION_MNIST();
    const mpi::Scratch scratch("cuda_sync_bn");
    // Two steps of ResNet-20 (cuDNN convolutions, batch norm whose
    // statistics the ranks all-reduce on the device).
    const std::string args =
        "--math fp32 train --arch resnet20 --dataset fashion-mnist --limit 32 --test-limit 16 --workers 0 --seed 5 "
        "--epochs 1 --lr-schedule 0:0.05 --device cuda";
    // The MPI suite's bound for the same run on the CPU (f32 through 19
    // batch-statistics backward passes); per-rank BN differs by 0.3.
    CHECK(two_ranks_against_one(scratch, args, 8, "--sync-bn") <= 1e-3);
  }

  TEST_CASE("a rank killed mid-training on CUDA: the other's NCCL collective times out, aborts and ends the job") {
    if (skip_without_two_gpus()) return;
    REQUIRE_FASHION_MNIST();
    const mpi::Scratch scratch("cuda_killed");
    const std::string out = scratch / "run";
    const std::string args =
        "train --arch mlp7_linear --dataset fashion-mnist --limit 200 --test-limit 100 --workers 0 --seed 3 "
        "--lr-schedule 0:0.05 --batch-size 25 --epochs 100 --device cuda --out " + out;
    // Rank 1 is a shell that starts tpp, kills it once rank 0 has logged an
    // epoch, and lives on: only the NCCL timeout (ncclCommAbort) frees rank 0.
    const std::string rank1 = "bash -c '" + mpi::kTpp + " " + args + " & pid=$!; while [ ! -s " + out +
                              "/log.jsonl ]; do sleep 0.05; done; kill -9 $pid; sleep 120'";
    const mpi::Shell job = mpi::shell("env TPP_COLLECTIVE_TIMEOUT=5 " + std::string(TPP_MPIEXEC) + " -n 1 " +
                                          mpi::kTpp + " " + args + " : -n 1 " + rank1,
                                      90);
    MESSAGE(job.output);
    CHECK(job.status != 0);
    CHECK(job.seconds < 60);  // ended by the timeout, long before the guard's 90 s
    CHECK(job.output.find("tpp: rank 0 of 2: NCCL ") != std::string::npos);
    CHECK(job.output.find("did not complete within 5 s (TPP_COLLECTIVE_TIMEOUT)") != std::string::npos);
  }
}

#else

TEST_SUITE("gpu") {
  TEST_CASE("mpirun -np 2 tpp train --device cuda") { MESSAGE("skipped: built without MPI (no launcher to start ranks)"); }
}

#endif
