// The training loop that `tpp train` runs and that the pruning pipeline
// reuses (regularised training, retraining): SGD on cross-entropy over a
// DataLoader, one epoch at a time, with evaluation after each epoch, hooks
// around the optimizer step, and the whole training state as tensors so a
// run resumes bit-for-bit from a checkpoint.
//
// Exact resumption rests on three facts: the data order and augmentation of
// epoch e depend only on (seed, e) (data/loader.h); the LR depends only on
// the epoch (LrSchedule); and everything else that changes during training
// (weights, BN statistics, momentum buffers, counters, the default RNG) is
// saved at each epoch's end.
//
// Data parallelism (TrainerOptions::distributed with world_size > 1): every
// rank runs a Trainer over the same model on its shard of each global batch
// (the loaders' rank/world_size, data/loader.h). The trainer
//   - packs the model's parameters into one arena (models/arena.h) and plans
//     the gradient buckets once: build a new Trainer after anything that
//     changes parameter shapes (pruning surgery);
//   - broadcasts rank 0's weights and buffers when it is built;
//   - each step: forward and backward on the shard; the gradient buckets are
//     all-reduced (mean over ranks) after backward, in plan order; then
//     hooks.after_backward, SGD and hooks.after_step. So a hook that adds to
//     .grad (TPP's L2 terms) adds once, after the average, and extra_loss
//     terms (TPP's gram penalty, a function of the weights, the same on every
//     rank) keep their gradient through the average. On the CPU the
//     all-reduces run after backward, not overlapped with it (MPI progresses
//     only inside MPI calls): overlap is the CUDA path's job;
//   - sums the loss and accuracy counts over ranks at every step (one small
//     non-blocking all-reduce), so a loss that turns NaN on any rank stops
//     every rank at the same step, and the statistics (and the state that a
//     checkpoint keeps) are the global batch's;
//   - averages the BN running statistics over ranks at the end of each epoch
//     (per-rank batch statistics drift apart), then evaluates: each rank its
//     shard of the test loader, the sums all-reduced;
//   - prints on rank 0 only. Writing files is the caller's job (rank 0).
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <array>
#include <functional>
#include <limits>
#include <map>
#include <string>

#include "data/loader.h"
#include "engine/interrupt.h"
#include "engine/lr_schedule.h"
#include "engine/optim.h"
#include "models/arena.h"
#include "models/data_parallel.h"
#include "models/module.h"

namespace tpp::train {

struct EpochStats {
  int64_t epoch = 0;  // 1-based
  double train_loss = 0, train_acc = 0;  // cross-entropy and % over the epoch, as trained
  double test_loss = 0, test_acc = 0;    // after the epoch, in eval mode
  double lr = 0;                         // at the epoch's start
  double images_per_second = 0;          // training images
  double seconds = 0;                    // training and evaluation
  int64_t skipped_steps = 0;             // with --on-nan skip: steps whose loss or gradients were not finite
  // False when run_epoch() stopped before the epoch's end (a step limit): the
  // counts so far wait in the state and the epoch is not evaluated yet.
  bool complete = true;
};

// One log.jsonl line: {"epoch", "train_loss", "train_acc", "test_loss",
// "test_acc", "lr", "images_per_s", "seconds", "skipped_steps"}.
nlohmann::ordered_json epoch_json(const EpochStats& stats);
// The inverse; a missing or mistyped key throws tpp::Error naming it
// ("skipped_steps" may be missing: logs from before it existed).
EpochStats epoch_from_json(const nlohmann::ordered_json& line);

// The loss turned NaN or infinite. With several ranks every rank throws it
// at the same step (the loss checked is the global batch's).
struct TrainingDiverged : Error {
  using Error::Error;
};

// Runs `work` and returns what it returns. A tpp::Error from it is first
// recorded with `record` (so the run's summary.json says why it failed).
// After a TrainingDiverged, which every rank throws at the same step, the
// ranks meet at a barrier so that none leaves before rank 0's files are
// written; any other error may be on one rank alone and is rethrown at once.
template <class Work>
auto recording_failure(Work&& work, const std::function<void(const std::string&)>& record,
                       const models::DistributedContext& dist) -> decltype(work()) {
  try {
    return work();
  } catch (const Interrupted&) {
    throw;  // not a failure: whoever stopped the run recorded it as interrupted
  } catch (const TrainingDiverged& e) {
    record(e.what());
    if (dist.distributed()) dist.comm->barrier();
    throw;
  } catch (const Error& e) {
    record(e.what());
    throw;
  }
}

struct EvalResult {
  double loss = 0, accuracy = 0;  // mean cross-entropy, %
  int64_t samples = 0;
};

// How many rows of `logits` [N, C] have their maximum at `labels` [N].
int64_t count_correct(const Tensor& logits, const Tensor& labels);

// Accuracy and loss of `model` over one pass of `loader` in eval mode; the
// model's mode is restored. With `comm`, each rank passes over its shard
// (the loader's rank/world_size) and the sums are all-reduced: every rank
// gets the result of the whole data set.
EvalResult evaluate_model(models::Module& model, data::DataLoader& loader, dist::Communicator* comm = nullptr);

// What a step whose loss or gradients hold a NaN or infinity does.
enum class OnNan {
  stop,  // throw tpp::Error naming the phase, the step and what was not finite (the model as before the step)
  skip,  // no update (weights, momentum and BN statistics stay), counted in EpochStats::skipped_steps
};
// "stop" or "skip"; anything else throws tpp::Error.
OnNan parse_on_nan(const std::string& text);
const char* on_nan_name(OnNan on_nan);

// Images per second of eval-mode forward passes over `images`: the best of
// three after a warm-up (the model's mode is restored).
double inference_images_per_second(models::Module& model, const Tensor& images);

struct TrainerOptions {
  LrSchedule schedule;
  double momentum = 0.9, weight_decay = 0;
  bool nesterov = false;
  int64_t epochs = 1;          // the run's last epoch, for labels and the ETA
  // A phase counted in iterations, not epochs (the pruning pipeline's
  // regularised training): its total, shown as "regularize 1,234/110,001";
  // 0: the progress counts epochs.
  int64_t phase_iterations = 0;
  int64_t steps_after_phase = 0;  // steps of the phases still to come, for the run's ETA
  bool live_progress = false;  // the rewritten terminal line (train/progress.h)
  std::string phase = "train";  // names the phase in messages ("regularize", "retrain", ...)
  OnNan on_nan = OnNan::stop;
  int64_t max_skips_in_a_row = 100;  // skip mode stops anyway after this many consecutive skipped steps
  // Data-parallel when world_size > 1 (comm set); the loaders must be sharded
  // with the same rank and world size.
  models::DistributedContext distributed{};
  int64_t bucket_bytes = models::kDefaultBucketBytes;
};

// Where a step is, for hooks.
struct StepContext {
  int64_t epoch = 0;        // 0-based
  int64_t step = 0;         // within the epoch, 0-based
  int64_t global_step = 0;  // steps finished before this one, over the whole run
  double lr = 0;
  // This step's cross-entropy, set once the forward pass is done: this
  // rank's in extra_loss, the global batch's in after_backward and after_step.
  double loss = 0;
};

// Ways in for callers that train differently (the pruning phases). Each may
// be empty.
struct TrainHooks {
  // A scalar added to the cross-entropy before backward (a regulariser);
  // return an undefined tensor to add nothing. Logged losses stay the
  // cross-entropy alone.
  std::function<Tensor(const StepContext&)> extra_loss;
  // Gradients are in .grad (averaged over ranks when data-parallel); the SGD
  // step comes next (extra gradient terms).
  std::function<void(const StepContext&)> after_backward;
  // Weights are updated (masks, hard zeroing).
  std::function<void(const StepContext&)> after_step;
};

struct TrainState {
  int64_t epochs_done = 0, global_step = 0;
  double best_test_acc = -1;  // -1: no epoch evaluated yet
  int64_t best_epoch = 0;
  // The epoch in progress when a step limit stopped it: steps done, and the
  // sums its closing line needs (all 0 at an epoch boundary).
  int64_t step_in_epoch = 0, seen_in_epoch = 0, trained_in_epoch = 0, correct_in_epoch = 0, skipped_in_epoch = 0;
  double loss_sum_in_epoch = 0, seconds_in_epoch = 0;
};

class Trainer {
 public:
  // The model must outlive the trainer; the loaders too. The optimizer is
  // built over model.named_parameters().
  Trainer(models::Module& model, data::DataLoader& train_loader, data::DataLoader& test_loader,
          TrainerOptions options, TrainHooks hooks = {});

  // Trains epoch state().epochs_done + 1 (from where a previous call stopped
  // in it), evaluates, and updates the state. With a step limit it returns
  // early, incomplete, once state().global_step reaches `stop_at_global_step`
  // (the regularised phase ends in mid-epoch; checkpoints between epochs),
  // or after the step in progress when a stop was requested
  // (engine/interrupt.h; see stop_signal()).
  // After each backward (and the after_backward hook) the loss and every
  // gradient are checked for NaN and infinity; what follows is
  // options.on_nan. With TPP_SYNC_DEBUG on (engine/finite.h) the op that
  // produced the first such value is named as well.
  // Throws TrainingDiverged when stopping; with several ranks all ranks decide alike.
  EpochStats run_epoch(int64_t stop_at_global_step = std::numeric_limits<int64_t>::max());
  // Accuracy and loss on the test loader in eval mode; the mode is restored.
  EvalResult evaluate();
  // Whether the last run_epoch() set a new best test accuracy.
  bool improved() const { return improved_; }

  const TrainState& state() const { return state_; }
  Sgd& optimizer() { return sgd_; }
  bool data_parallel() const { return options_.distributed.distributed(); }
  // The stop request (engine/interrupt.h) the last run_epoch() stopped for, 0
  // when none. With several ranks it is agreed at every step (riding on the
  // step's all-reduce of its loss), so a request to any one rank stops all of
  // them after the same step: SIGTERM if any rank got one, else the signal of
  // the others (Ctrl-C under a launcher reaches the ranks as one or the other).
  int stop_signal() const { return stop_signal_; }
  // Collective (every rank calls it before a checkpoint): without synchronised
  // BN the ranks' running statistics differ until an epoch's end averages
  // them, so a checkpoint saved inside an epoch keeps every rank's own; rank
  // 0's state_tensors() then include them and a resume gives each rank its own.
  void gather_rank_buffers();
  // The gradient buckets all-reduced each step (empty in one process).
  const std::vector<models::GradBucket>& grad_buckets() const { return buckets_; }

  // What a resume needs beyond the model's state_dict, as checkpoint extras:
  // "optimizer.momentum.<param>" (those that exist), "train.epochs_done",
  // "train.global_step", "train.best_epoch" (i64), "train.best_test_acc"
  // (f64), "train.rng" (the default generator's seed and offset, i64 [2]) and
  // the epoch in progress, "train.epoch_progress" (i64 [5]: steps, images,
  // images trained on, correct, skipped steps) and "train.epoch_sums" (f64
  // [2]: loss sum, seconds); inside an epoch of a data-parallel run also
  // "train.rank_buffers.<rank>.<buffer>" for ranks 1.. (gather_rank_buffers()).
  std::map<std::string, Tensor> state_tensors() const;
  // Restores them (and the default generator); a missing or foreign key
  // throws tpp::Error naming it.
  void load_state_tensors(const std::map<std::string, Tensor>& tensors);

 private:
  struct StepResult {
    bool skipped = false;
    double loss_sum = 0;  // cross-entropy × samples, over all ranks, when not skipped
    int64_t correct = 0;  // over all ranks
    double samples = 0;   // over all ranks
    int stop_signal = 0;  // with several ranks: the stop they agreed on at this step
  };
  StepResult step(const data::Batch& loaded, StepContext context);  // any device: moved to the model's
  // "" when the loss and every gradient are finite, else what was not.
  std::string non_finite_part(const Tensor& loss) const;
  void snapshot_buffers();
  void handle_non_finite(const std::string& what, const std::string& detail, const StepContext& context);
  bool speaks() const { return options_.distributed.is_root(); }

  models::Module& model_;
  data::DataLoader& train_loader_;
  data::DataLoader& test_loader_;
  TrainerOptions options_;
  TrainHooks hooks_;
  std::vector<std::string> param_names_;  // in the optimizer's order
  models::ParameterArena arena_;           // data-parallel only
  std::vector<models::GradBucket> buckets_;
  Sgd sgd_;
  TrainState state_;
  bool improved_ = false;
  int64_t skips_in_a_row_ = 0;  // not checkpointed: a resume starts counting afresh
  int stop_signal_ = 0;
  std::map<std::string, Tensor> rank_buffers_;  // gather_rank_buffers(); rank 0 only
  // The model's buffers (BN statistics) before the step in progress, put back
  // if the step turns out non-finite; the same tensors from step to step.
  std::vector<Tensor> buffer_snapshot_;
};

}  // namespace tpp::train
