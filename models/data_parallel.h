// Data-parallel training pieces over a packed model (models/arena.h): who
// we are in the job (DistributedContext), the bucket plan of the gradient
// arena, the broadcast of rank 0's weights and decisions, and the gradient
// average. Every rank derives the same plan from the same arena layout, so
// all ranks issue the same collectives in the same order.
//
// How a data-parallel phase runs (train/trainer.h does this when given a
// context with world_size > 1; the pruning pipeline reuses it):
//   1. init_distributed() once, first thing in the command (errors after it
//      end every rank: see dist::abort_job).
//   2. Every rank builds the same model; broadcast_model() makes rank 0's
//      weights and BN statistics everyone's.
//   3. Each step: forward and backward on this rank's shard; then
//      average_gradients() (the mean over ranks of equal-sized shards is the
//      gradient of the global batch); then anything added to .grad by hand
//      (TPP's L2 terms on pruned rows, identical on every rank); then SGD.
//      Loss terms added before backward (TPP's gram penalty) depend on the
//      weights only, so every rank adds the same gradient and the average
//      keeps it as is: it is not averaged down or counted twice.
//   4. Decisions (which filters go) are taken on rank 0 and broadcast with
//      broadcast_indices(), so every rank cuts the same filters. After the
//      surgery, build a new Trainer: it packs the new parameters, plans new
//      buckets and broadcasts rank 0's model again (BatchNorm2d modules
//      narrowed in place keep their set_sync_batch_norm() setting).
//   5. Rank 0 alone writes files (is_root()).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/distributed.h"
#include "models/arena.h"

namespace tpp::models {

// `auto`: data-parallel when the launcher started several processes
// (dist::detect_launch_env()), else one process. `off`: one process whatever
// the environment says (a command run directly inside a Slurm allocation
// inherits SLURM_NTASKS of the whole job).
enum class DistributedMode { automatic, off };
DistributedMode parse_distributed_mode(const std::string& text);  // "auto" or "off"

struct DistributedContext {
  int rank = 0, world_size = 1, local_rank = 0;
  std::string launcher = "none";
  std::shared_ptr<dist::Communicator> comm;  // the single-process one when world_size == 1

  bool is_root() const { return rank == 0; }
  bool distributed() const { return world_size > 1; }
};

// Reads the launch environment and creates the communicator for tensors on
// `device` (MPI on the CPU, NCCL on CUDA). Call it before any other work of
// the command, on every rank. Errors (a torchrun launch on the CPU, a build
// without MPI) name the fix.
DistributedContext init_distributed(DistributedMode mode, Device device = Device::cpu());
// One process, rank 0 of 1: for callers that take a context.
DistributedContext single_process_context(Device device = Device::cpu());

// A run of whole parameters of the gradient arena, reduced as one collective.
struct GradBucket {
  int64_t offset = 0;  // elements from the start of the arena
  int64_t numel = 0;   // including the alignment padding between its parameters
  std::vector<std::string> params;  // in the order backward produces their gradients
};

inline constexpr int64_t kDefaultBucketBytes = int64_t{16} << 20;  // 16 MiB

// Buckets in reverse arena order (backward produces the last layer's
// gradients first, so the first bucket is ready first). Each holds whole
// parameters up to `bucket_bytes`; a larger parameter is a bucket of its own.
std::vector<GradBucket> plan_grad_buckets(const ParameterArena& arena, int64_t bucket_bytes = kDefaultBucketBytes);

// Copies rank 0's parameters and buffers (batch-norm running statistics)
// into every rank's model.
void broadcast_model(dist::Communicator& comm, const Module& model);

// The floating buffers of `model` (BN running mean and variance) averaged
// over the ranks. With per-rank BN statistics the ranks' running estimates
// drift apart; this makes them one before evaluation and checkpoints.
void average_buffers(dist::Communicator& comm, const Module& model);

// Switches every BatchNorm2d of `model` to synchronised statistics over the
// ranks of `comm` (ops::sync_batch_norm2d) in training mode, or back to
// per-rank statistics when `comm` is null. Returns how many layers changed.
int set_sync_batch_norm(Module& model, const std::shared_ptr<dist::Communicator>& comm);

// Replaces every rank's gradient arena by the average over the ranks: one
// all-reduce per bucket, all issued in plan order, then all awaited.
void average_gradients(dist::Communicator& comm, const ParameterArena& arena, const std::vector<GradBucket>& buckets);

}  // namespace tpp::models
