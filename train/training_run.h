// A whole training run of a zoo model on a dataset, as `tpp train` runs it:
// SGD with a step LR schedule (train/trainer.h) in a run directory
// (train/run_dir.h), with after every epoch a log line, last.safetensors
// (everything a resume needs: weights, momentum, counters, data position,
// RNG), best.safetensors (the weights with the best test accuracy so far),
// summary.json and report.html. A resumed run continues exactly where its
// last checkpoint left off.
//
// Under a multi-process launcher (mpirun, srun, torchrun on GPUs) the run is
// data-parallel (models/data_parallel.h, train/trainer.h): batch_size is per
// rank, each rank trains on its shard of every global batch, and rank 0 alone
// writes the run directory. Every rank reads the data and, when resuming, the
// checkpoint: they must see the same files (a shared file system).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/lr_schedule.h"
#include "models/data_parallel.h"
#include "train/run_data.h"
#include "train/trainer.h"

namespace tpp::train {

// Errors name these fields in backticks (`batch_size`, engine/error.h).
struct TrainingRunConfig {
  std::string arch, dataset;  // a zoo architecture (models/zoo.h); a dataset name (data/catalog.h)
  std::string data_dir;       // the data root; empty: the default places
  int64_t epochs = 10, batch_size = 128, limit = 0, test_limit = 0;
  // Steps between checkpoints inside an epoch (last.safetensors is also
  // written at every epoch's end).
  int64_t checkpoint_interval = 2000;
  LrSchedule lr_schedule = LrSchedule::parse_milestones("0:0.1");
  double momentum = 0.9, weight_decay = 5e-4;
  bool nesterov = false;
  uint64_t seed = 0;  // the initial weights and the data order
  Device device = default_device();
  int workers = 2;
  OnNan on_nan = OnNan::stop;
  bool sync_bn = false;  // data-parallel: batch-norm statistics over the global batch
  // Where the run goes: `out` (empty: runs/<arch>-<dataset>-<time>), or the
  // run directory to continue (`resume`); `overwrite` replaces a run.
  std::string out, resume;
  bool overwrite = false;
  models::DistributedMode distributed = models::DistributedMode::automatic;
  // Written to the run's config.toml (the front end's record of the run's
  // settings, what a resume reads back); the run does not read it.
  std::string config_toml;
  // Settings that a resume changes, as the front end words them
  // ("batch-size: 128 -> 64"): logged in log.jsonl and shown in the report.
  std::vector<std::string> resume_changes;
  bool live_progress = true;  // the rewritten terminal line, when stdout is one
};

// A stop request (engine/interrupt.h) ends the run after the step in
// progress: last.safetensors is written there (mid-epoch too), summary.json
// says "interrupted", and tpp::Interrupted is thrown; `resume` goes on from
// that step, with the bits of an uninterrupted run.
void run_training(const TrainingRunConfig& config);

}  // namespace tpp::train
