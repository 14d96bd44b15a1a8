// The whole pruning pipeline of one method (prune/method.h) on a trained
// checkpoint, in a run directory (train/run_dir.h), resumable after a kill at
// any point (`tpp prune --base CKPT ...` runs it):
//
//   orth-regularize  (kernorth+l1, orthconv+l1) dense training with 0.1·orth loss
//   regularize       (tpp) CE + α·λ·gram, λ·(pruned rows, biases, BN γ, β); λ grows,
//                    then holds at its ceiling while the pruned layers are hard-zeroed
//                    one by one ("stabilize"); iteration-based, LR constant
//   remove           filters chosen by L1 (on the base weights for tpp), removed
//                    physically; OrthP for l1+orthp; fresh weights for scratch;
//                    accuracy, mean JSV and measured inference speed logged;
//                    pruned.safetensors written
//   retrain          the configured recipe (epochs, lr_schedule, ...); the mean
//                    JSV after every epoch; best.safetensors
//
// last.safetensors holds the model as it is (its widths in the metadata) and
// the pipeline's state as extra tensors: the phase ("pipeline.phase"), the
// number of log lines it accounts for ("pipeline.log_lines"), the default
// generator ("pipeline.rng"), the pruned filters ("plan.pruned.<layer>") and,
// inside a phase, the trainer's state (iteration, momentum, data position).
// It is written every checkpoint_interval iterations and at every phase and
// epoch end; a resumed run truncates the log to the checkpoint's lines and
// goes on from exactly there.
//
// Under a multi-process launcher (mpirun, srun, torchrun on GPUs) every phase
// is data-parallel, as `tpp train` is (train/trainer.h, models/data_parallel.h):
// batch_size is per rank; each rank trains and evaluates on its shard;
// which filters go is decided on rank 0 and broadcast (before regularisation
// for tpp, at removal for the baselines), and scratch's fresh weights are
// rank 0's; the JSV and the inference speed are measured on rank 0 alone.
// Rank 0 alone writes the run directory; every rank reads the base and, when
// resuming, last.safetensors (a shared file system across nodes).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/lr_schedule.h"
#include "models/data_parallel.h"
#include "prune/method.h"
#include "prune/tpp_regularizer.h"
#include "train/run_data.h"
#include "train/trainer.h"

namespace tpp::prune {

// Errors name these fields in backticks (`stage_pr`, engine/error.h).
struct PipelineConfig {
  std::string base;     // the trained dense checkpoint to prune
  std::string arch;     // empty: the base's own (needed for a bare state_dict)
  std::string dataset;  // empty: the base's own
  std::string data_dir;  // the data root (data/catalog.h); empty: the default places
  MethodId method = MethodId::tpp;
  std::string stage_pr, skip_layers;  // the plan (prune/plan.h)
  // The retraining recipe (TPP-METHOD §6.2, CIFAR).
  int64_t epochs = 120, batch_size = 128, limit = 0, test_limit = 0;
  LrSchedule lr_schedule = LrSchedule::parse_milestones("0:0.01,60:0.001,90:0.0001");
  double momentum = 0.9, weight_decay = 5e-4;
  bool nesterov = false;
  uint64_t seed = 0;
  Device device = Device::cpu();
  int workers = 2;
  train::OnNan on_nan = train::OnNan::stop;
  bool sync_bn = false;  // data-parallel: batch-norm statistics over the global batch
  // TPP (§3, §4): Δ, τ, K_u, S, zero-out spacing, the phase's LR, α.
  double reg_granularity = 1e-4, reg_ceiling = 1.0;
  int64_t reg_interval = 10, stabilize_iters = 10000, zero_out_interval = 100;
  double reg_lr = 1e-3, gram_weight = 1000;
  GramTarget reg_target = GramTarget::decorrelate;  // diagonal: the ablation
  bool no_bn_reg = false, no_gram = false;  // ablations
  // Baselines (§7): orthogonality weight and iterations, OrthP gain (0: by arch).
  double orth_weight = 0.1;
  int64_t orth_reg_iters = 50000;
  double orthp_gain = 0;
  // Bookkeeping.
  int64_t log_interval = 100, checkpoint_interval = 2000, jsv_batches = 1;
  // Where the run goes: `out` (empty: runs/prune-<method>-<time>), or the run
  // directory to continue (`resume`); `overwrite` replaces a finished run.
  std::string out, resume;
  bool overwrite = false;
  models::DistributedMode distributed = models::DistributedMode::automatic;
  // Written to the run's config.toml (the front end's own record of the run's
  // settings, what a resume reads back); the pipeline does not read it.
  std::string config_toml;
  // Settings that a resume changes, as the front end words them
  // ("batch-size: 128 -> 64"): logged in log.jsonl and shown in the report.
  std::vector<std::string> resume_changes;
  // Live progress lines on a terminal (train/progress.h).
  bool live_progress = true;
};

// Runs (or resumes) the pipeline.
void run_pipeline(const PipelineConfig& config);

}  // namespace tpp::prune
