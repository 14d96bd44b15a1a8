// `tpp prune --base CKPT ...`: the whole pruning pipeline of one method
// (prune/method.h) in a run directory (apps/run_dir.h), resumable after a
// kill at any point:
//
//   orth-regularize  (kernorth+l1, orthconv+l1) dense training with 0.1·orth loss
//   regularize       (tpp) CE + α·λ·gram, λ·(pruned rows, biases, BN γ, β); λ grows,
//                    then holds at its ceiling while the pruned layers are hard-zeroed
//                    one by one ("stabilize"); iteration-based, LR constant
//   remove           filters chosen by L1 (on the base weights for tpp), removed
//                    physically; OrthP for l1+orthp; fresh weights for scratch;
//                    accuracy, mean JSV and measured inference speed logged;
//                    pruned.safetensors written
//   retrain          the configured recipe (--epochs, --lr-schedule, ...); the mean
//                    JSV after every epoch; best.safetensors
//
// last.safetensors holds the model as it is (its widths in the metadata) and
// the pipeline's state as extra tensors: the phase ("pipeline.phase"), the
// number of log lines it accounts for ("pipeline.log_lines"), the default
// generator ("pipeline.rng"), the pruned filters ("plan.pruned.<layer>") and,
// inside a phase, the trainer's state (iteration, momentum, data position).
// It is written every --checkpoint-interval iterations and at every phase
// and epoch end; --resume truncates the log to the checkpoint's lines and
// goes on from exactly there.
//
// Under a multi-process launcher (mpirun, srun, torchrun on GPUs) every phase
// is data-parallel, as `tpp train` is (apps/trainer.h, models/data_parallel.h):
// --batch-size is per rank; each rank trains and evaluates on its shard;
// which filters go is decided on rank 0 and broadcast (before regularisation
// for tpp, at removal for the baselines), and scratch's fresh weights are
// rank 0's; the JSV and the inference speed are measured on rank 0 alone.
// Rank 0 alone writes the run directory; every rank reads --base and, with
// --resume, last.safetensors (a shared file system across nodes).
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

namespace tpp::apps {

struct PipelineConfig {
  std::string base, arch, dataset, data_dir;
  std::string method = "tpp", stage_pr, skip_layers;
  // The retraining recipe (TPP-METHOD §6.2, CIFAR).
  int64_t epochs = 120, batch_size = 128, limit = 0, test_limit = 0;
  std::string lr_schedule = "0:0.01,60:0.001,90:0.0001";
  double momentum = 0.9, weight_decay = 5e-4;
  bool nesterov = false;
  uint64_t seed = 0;
  std::string device = "cpu";
  int workers = 2;
  std::string on_nan = "stop";  // or "skip": what a step with a NaN/Inf loss or gradient does
  bool sync_bn = false;  // data-parallel: batch-norm statistics over the global batch
  // TPP (§3, §4): Δ, τ, K_u, S, zero-out spacing, the phase's LR, α.
  double reg_granularity = 1e-4, reg_ceiling = 1.0;
  int64_t reg_interval = 10, stabilize_iters = 10000, zero_out_interval = 100;
  double reg_lr = 1e-3, gram_weight = 1000;
  std::string reg_target = "decorrelate";  // or "diagonal" (ablation)
  bool no_bn_reg = false, no_gram = false;  // ablations
  // Baselines (§7): orthogonality weight and iterations, OrthP gain (0: by arch).
  double orth_weight = 0.1;
  int64_t orth_reg_iters = 50000;
  double orthp_gain = 0;
  // Bookkeeping.
  int64_t log_interval = 100, checkpoint_interval = 2000, jsv_batches = 1;
  // Where and how the run goes; not part of config.toml.
  std::string out, resume;
  bool overwrite = false;
  std::string distributed = "auto";  // or "off" (models::DistributedMode)
};

// Runs (or resumes) the pipeline; `command` writes the resolved config.toml.
int run_prune_pipeline(const PipelineConfig& config, const CLI::App& command);

}  // namespace tpp::apps
