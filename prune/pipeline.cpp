#include "prune/pipeline.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>

#include "train/model_input.h"
#include "train/progress.h"
#include "prune/pipeline_report.h"
#include "train/run_data.h"
#include "train/run_dir.h"
#include "train/trainer.h"
#include "engine/autograd.h"
#include "engine/build_info.h"
#include "engine/device.h"
#include "engine/error.h"
#include "engine/interrupt.h"
#include "engine/philox.h"
#include "ops/elementwise.h"
#include "models/checkpoint.h"
#include "models/data_parallel.h"
#include "models/layers.h"
#include "models/summary.h"
#include "models/surgery.h"
#include "models/zoo.h"
#include "prune/analysis.h"
#include "prune/jsv.h"
#include "prune/method.h"
#include "prune/orth.h"
#include "prune/plan.h"
#include "engine/text.h"
#include "prune/tpp_regularizer.h"

namespace tpp::prune {

namespace {

using train::EpochStats;
using train::EvalResult;
using train::LoaderSpec;
using train::RunData;
using train::RunDir;
using train::StepContext;
using train::Trainer;
using train::TrainerOptions;
using train::TrainHooks;

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

enum class Phase : int64_t { orth_regularize = 0, regularize = 1, remove = 2, retrain = 3, done = 4 };

const char* phase_name(Phase p) {
  switch (p) {
    case Phase::orth_regularize: return "orth-regularize";
    case Phase::regularize: return "regularize";
    case Phase::remove: return "remove";
    case Phase::retrain: return "retrain";
    case Phase::done: return "done";
  }
  return "?";
}

Phase first_phase(const prune::Method& m) {
  if (m.before != prune::OrthReg::none) return Phase::orth_regularize;
  return m.tpp ? Phase::regularize : Phase::remove;
}

prune::OrthRegMethod orth_method(prune::OrthReg r) {
  return r == prune::OrthReg::kernorth ? prune::OrthRegMethod::kernorth : prune::OrthRegMethod::orthconv;
}

constexpr const char* kPlanPrefix = "plan.pruned.";

Tensor scalar_i64(int64_t v) { return from_vector<int64_t>({v}, {}); }

int64_t read_i64(const std::map<std::string, Tensor>& extras, const std::string& name, const fs::path& file) {
  const auto it = extras.find(name);
  TPP_CHECK(it != extras.end() && it->second.dtype() == DType::i64 && it->second.numel() == 1,
            "`resume`: {} has no i64 '{}' (not written by the pruning pipeline?)", file.string(), name);
  return it->second.to_vector<int64_t>()[0];
}

// `layer` loses the filters `pruned` (sorted) and keeps the others.
void set_pruned(prune::LayerPlan& layer, std::vector<int64_t> pruned) {
  layer.pruned = std::move(pruned);
  layer.kept.clear();
  for (int64_t i = 0, p = 0; i < layer.total; ++i) {
    if (p < static_cast<int64_t>(layer.pruned.size()) && layer.pruned[static_cast<size_t>(p)] == i) {
      ++p;
      continue;
    }
    layer.kept.push_back(i);
  }
}

// The plan's layer structure for `model` at full width, with the pruned
// filters given (those chosen when the run began, read back on resume).
prune::PrunePlan plan_with_pruned(models::Module& model, const prune::PlanSpec& spec,
                                  const std::map<std::string, std::vector<int64_t>>& pruned) {
  prune::PrunePlan plan = prune::make_plan(model, spec);
  for (prune::LayerPlan& l : plan.layers) {
    const auto it = pruned.find(l.name);
    set_pruned(l, it == pruned.end() ? std::vector<int64_t>{} : it->second);
  }
  return plan;
}

// Rank 0's choice of filters on every rank: all ranks then regularise and
// cut the same ones, whatever their weights' last bits say. Every rank's plan
// has the same layers (the same model and plan).
void broadcast_plan(const models::DistributedContext& dist, prune::PrunePlan& plan) {
  if (!dist.distributed()) return;
  for (prune::LayerPlan& l : plan.layers) {
    std::vector<int64_t> pruned = l.pruned;
    dist::broadcast_indices(*dist.comm, pruned);
    set_pruned(l, std::move(pruned));
  }
}

Json jsv_or_null(const std::optional<prune::JsvStats>& s) { return s ? prune::jsv_json(*s) : Json(); }

class Pipeline {
 public:
  explicit Pipeline(const PipelineConfig& c) : c_(c), method_(prune::find_method(c.method)) {}

  void run();

 private:
  bool root() const { return dist_.is_root(); }
  // Rank 0 speaks for the job.
  template <class... Args>
  void say(fmt::format_string<Args...> format, Args&&... args) const {
    if (!root()) return;
    fmt::print(format, std::forward<Args>(args)...);
    std::fflush(stdout);
  }
  // Batches of batch_size per rank, each rank its shard.
  LoaderSpec loader_spec() const {
    return {.batch_size = c_.batch_size,
            .workers = c_.workers,
            .seed = c_.seed,
            .rank = dist_.rank,
            .world_size = dist_.world_size};
  }
  // Every rank's model_ synchronises its BN statistics when asked to.
  void adopt_sync_batch_norm();

  // Set-up (everything that can be wrong with the input is found before the
  // run directory is touched).
  void open_base();
  void open_resumed();
  void check_plan(const prune::PrunePlan& plan) const;
  prune::PlanSpec plan_spec() const { return {.stage_pr = c_.stage_pr, .skip_layers = c_.skip_layers}; }
  prune::PenaltySchedule penalty_schedule() const {
    return {.step = c_.reg_granularity,
            .ceiling = c_.reg_ceiling,
            .interval = c_.reg_interval,
            .stabilize = c_.stabilize_iters,
            .zero_out_interval = c_.zero_out_interval};
  }

  // Phases.
  void orth_regularize();
  void regularize();
  void remove();
  void retrain();

  // `phase_iterations` > 0: a phase of that many iterations (progress by
  // iteration, the retraining's steps counted in its ETA).
  std::unique_ptr<Trainer> make_trainer(const char* phase, const LrSchedule& schedule, int64_t epochs,
                                        TrainHooks hooks, data::DataLoader& train_loader,
                                        int64_t phase_iterations = 0);
  LrSchedule regularized_phase_lr() const { return LrSchedule::parse_milestones(fmt::format("0:{}", c_.reg_lr)); }
  // Runs `trainer` to `total` iterations with a checkpoint every interval;
  // `after_epoch` sees each completed pass.
  void run_iterations(Trainer& trainer, int64_t total, const std::function<void(const EpochStats&)>& after_epoch);
  std::optional<prune::JsvStats> mean_jsv();

  void log(Json line);
  void save_state(Trainer* trainer);  // collective: every rank calls it
  void write_outcome(const std::string& error = "", const std::string& status = "");
  // After a stop request: the state is saved; summary.json says so.
  [[noreturn]] void stop_interrupted(int signal, int64_t iteration, int64_t total);

  const PipelineConfig& c_;
  const prune::Method& method_;
  models::DistributedContext dist_;
  Device device_ = Device::cpu();  // where the model lives and every phase runs (this rank's GPU under NCCL)
  fs::path dir_;
  std::optional<RunDir> run_;  // rank 0 only: the other ranks write nothing
  RunData data_;
  std::unique_ptr<data::DataLoader> test_loader_, jsv_loader_;
  std::shared_ptr<models::Module> model_;
  models::CheckpointInfo info_;
  std::optional<prune::PrunePlan> plan_;
  // The pruned filters of each layer once chosen: kept in every checkpoint,
  // also after removal (when the plan no longer fits the model).
  std::map<std::string, std::vector<int64_t>> chosen_;
  Phase phase_ = Phase::remove;
  int64_t log_lines_ = 0;
  std::map<std::string, Tensor> resumed_trainer_state_;  // for the phase in progress at the checkpoint
  std::string config_toml_;
};

void Pipeline::check_plan(const prune::PrunePlan& plan) const {
  if (plan.pruned_layers() == 0)
    setting_fail("prune: `stage_pr` '{}'{} prunes no layer", c_.stage_pr,
                 c_.skip_layers.empty() ? "" : fmt::format(" with `skip_layers` '{}'", c_.skip_layers));
  if (method_.tpp) penalty_schedule().check(plan);
}

// The numbers of the config that no phase could run with, found before
// anything is read or written (the front end's checks may not have seen a
// config built in code).
void check_settings(const PipelineConfig& c) {
  const auto positive = [](const char* name, auto value) {
    if (!(value > 0)) setting_fail("prune: `{}` must be positive (got {})", name, value);
  };
  const auto not_negative = [](const char* name, auto value) {
    if (!(value >= 0)) setting_fail("prune: `{}` must not be negative (got {})", name, value);
  };
  positive("batch_size", c.batch_size);
  positive("reg_lr", c.reg_lr);
  positive("orth_reg_iters", c.orth_reg_iters);
  positive("log_interval", c.log_interval);
  positive("checkpoint_interval", c.checkpoint_interval);
  not_negative("epochs", c.epochs);
  not_negative("limit", c.limit);
  not_negative("test_limit", c.test_limit);
  not_negative("momentum", c.momentum);
  not_negative("weight_decay", c.weight_decay);
  not_negative("gram_weight", c.gram_weight);
  not_negative("orth_weight", c.orth_weight);
  not_negative("orthp_gain", c.orthp_gain);
  not_negative("jsv_batches", c.jsv_batches);
  not_negative("workers", c.workers);
}

void Pipeline::open_base() {
  TPP_CHECK(!c_.base.empty(), "prune: `method` {} needs `base` CKPT (the trained model to prune)", method_.name);
  const models::Checkpoint base = models::read_checkpoint(c_.base);
  TPP_CHECK(c_.arch.empty() || !base.has_metadata || base.info.arch == c_.arch,
            "prune: `base` {} holds {}, not `arch` {}", c_.base, base.info.arch, c_.arch);
  model_ = models::build_model(base, c_.arch);
  info_ = base.info;
  if (!c_.arch.empty()) info_.arch = c_.arch;
  TPP_CHECK(!info_.arch.empty(), "prune: `base` {} names no architecture; pass `arch`", c_.base);
  info_.dataset = !c_.dataset.empty() ? c_.dataset : base.info.dataset;
  TPP_CHECK(!info_.dataset.empty(), "prune: `base` {} names no dataset; pass `dataset`", c_.base);
  info_.extra = {};
  // What a bare state_dict leaves out, read off the model.
  const prune::PrunePlan layers = prune::make_plan(*model_, {});
  info_.num_classes = layers.layers.back().total;
  info_.in_channels = train::model_input(*model_, info_.arch).channels;
  const auto dense = [&] {
    const models::SkipInit widths_only;
    return models::make_model(info_.arch, info_.num_classes, info_.in_channels);
  }();
  TPP_CHECK(models::layer_widths(*dense) == models::layer_widths(*model_),
            "prune: `base` {} is already pruned (its widths differ from a dense {}); prune a dense model", c_.base,
            info_.arch);
}

void Pipeline::open_resumed() {
  const fs::path file = dir_ / "last.safetensors";
  const models::Checkpoint last = models::read_checkpoint(file);
  TPP_CHECK(last.info.extra.count("prune.method") && last.info.extra.at("prune.method") == method_.name,
            "`resume` {}: the checkpoint was written by method '{}', the config asks for '{}'", dir_.string(),
            last.info.extra.count("prune.method") ? last.info.extra.at("prune.method") : "none", method_.name);
  model_ = models::build_model(last);
  info_ = last.info;
  info_.extra = {};
  phase_ = static_cast<Phase>(read_i64(last.extra_tensors, "pipeline.phase", file));
  TPP_CHECK(phase_ >= Phase::orth_regularize && phase_ <= Phase::done, "`resume`: {} names an unknown phase",
            file.string());
  log_lines_ = read_i64(last.extra_tensors, "pipeline.log_lines", file);
  const auto rng = last.extra_tensors.find("pipeline.rng");
  TPP_CHECK(rng != last.extra_tensors.end() && rng->second.numel() == 2, "`resume`: {} has no 'pipeline.rng'",
            file.string());
  const std::vector<int64_t> state = rng->second.to_vector<int64_t>();
  default_generator().set_state(std::bit_cast<uint64_t>(state[0]), std::bit_cast<uint64_t>(state[1]));
  std::map<std::string, std::vector<int64_t>> pruned;
  for (const auto& [name, t] : last.extra_tensors) {
    if (name.starts_with(kPlanPrefix)) pruned[name.substr(std::string(kPlanPrefix).size())] = t.to_vector<int64_t>();
    if (name.starts_with("train.") || name.starts_with("optimizer.")) resumed_trainer_state_.emplace(name, t);
  }
  // A finished run asked for more retraining epochs goes back to retraining.
  const auto epochs_done = resumed_trainer_state_.find("train.epochs_done");
  if (phase_ == Phase::done && epochs_done != resumed_trainer_state_.end() &&
      epochs_done->second.to_vector<int64_t>()[0] < c_.epochs)
    phase_ = Phase::retrain;
  // Before removal the model is at full width and the plan's structure is
  // rebuilt around the filters chosen when the run began.
  chosen_ = pruned;
  if (!pruned.empty() && phase_ < Phase::retrain) plan_ = plan_with_pruned(*model_, plan_spec(), pruned);
}

std::unique_ptr<Trainer> Pipeline::make_trainer(const char* phase, const LrSchedule& schedule, int64_t epochs,
                                                TrainHooks hooks, data::DataLoader& train_loader,
                                                int64_t phase_iterations) {
  // The retraining still to come after a regularised phase, for the run's ETA.
  const int64_t steps_after = phase_iterations > 0 ? c_.epochs * train_loader.num_batches() : 0;
  auto trainer = std::make_unique<Trainer>(*model_, train_loader, *test_loader_,
                                           TrainerOptions{.schedule = schedule,
                                                          .momentum = c_.momentum,
                                                          .weight_decay = c_.weight_decay,
                                                          .nesterov = c_.nesterov,
                                                          .epochs = epochs,
                                                          .phase_iterations = phase_iterations,
                                                          .steps_after_phase = steps_after,
                                                          // One plain line per epoch under a launcher (train/training_run.cpp).
                                                          .live_progress = c_.live_progress &&
                                                                           train::stdout_is_terminal() &&
                                                                           !dist_.distributed(),
                                                          .phase = phase,
                                                          .on_nan = c_.on_nan,
                                                          .distributed = dist_},
                                           std::move(hooks));
  if (!resumed_trainer_state_.empty()) {
    trainer->load_state_tensors(resumed_trainer_state_);
    resumed_trainer_state_.clear();
  }
  return trainer;
}

void Pipeline::run_iterations(Trainer& trainer, int64_t total,
                              const std::function<void(const EpochStats&)>& after_epoch) {
  while (trainer.state().global_step < total) {
    const int64_t next_checkpoint = (trainer.state().global_step / c_.checkpoint_interval + 1) * c_.checkpoint_interval;
    const EpochStats stats = trainer.run_epoch(std::min(total, next_checkpoint));
    if (stats.complete) after_epoch(stats);
    if (trainer.state().global_step < total) save_state(&trainer);
    if (const int signal = trainer.stop_signal(); signal != 0 && trainer.state().global_step < total)
      stop_interrupted(signal, trainer.state().global_step, total);
  }
}

void Pipeline::stop_interrupted(int signal, int64_t iteration, int64_t total) {
  if (run_) write_outcome("", "interrupted");
  // The others leave once rank 0's files are complete (a launcher may end the
  // job as soon as one rank exits).
  if (dist_.distributed()) dist_.comm->barrier();
  throw Interrupted(signal, dir_.string(),
                    fmt::format("prune: saved in phase {} after iteration {} of {}", phase_name(phase_), iteration,
                                with_commas(total)));
}

Json epoch_line(const char* phase, const EpochStats& stats) {
  Json line = {{"phase", phase}};
  const Json epoch = train::epoch_json(stats);
  for (const auto& [key, value] : epoch.items()) line[key] = value;
  return line;
}

void Pipeline::orth_regularize() {
  const auto train_loader = train::make_train_loader(data_, loader_spec());
  const prune::OrthRegMethod which = orth_method(method_.before);
  TrainHooks hooks;
  hooks.extra_loss = [&](const StepContext&) { return prune::orth_regularization(*model_, which) * c_.orth_weight; };
  const int64_t per_epoch = train_loader->num_batches();
  const auto trainer = make_trainer("orth-regularize", regularized_phase_lr(),
                                    (c_.orth_reg_iters + per_epoch - 1) / per_epoch, std::move(hooks), *train_loader,
                                    c_.orth_reg_iters);
  say("prune: orthogonality-regularised training of the dense model, {} iterations at LR {:g}\n", c_.orth_reg_iters,
      c_.reg_lr);
  run_iterations(*trainer, c_.orth_reg_iters, [&](const EpochStats& s) { log(epoch_line("orth-regularize", s)); });
  phase_ = Phase::remove;
  save_state(nullptr);
}

void Pipeline::regularize() {
  const auto train_loader = train::make_train_loader(data_, loader_spec());
  const prune::TppRegularizer reg(*model_, *plan_,
                                  {.schedule = penalty_schedule(),
                                   .gram_weight = c_.gram_weight,
                                   .target = c_.reg_target,
                                   .gram = !c_.no_gram,
                                   .bn = !c_.no_bn_reg});
  std::optional<prune::PenaltyTerms> pending;  // measured before the step of a logged iteration
  TrainHooks hooks{
      .extra_loss =
          [&](const StepContext& s) {
            if (s.global_step % c_.log_interval == 0) pending = reg.terms(s.global_step);
            return reg.loss_term(s.global_step);
          },
      .after_backward = [&](const StepContext& s) { reg.add_gradients(s.global_step); },
      .after_step =
          [&](const StepContext& s) {
            reg.after_step(s.global_step);
            if (!pending) return;
            const prune::PenaltyTerms& p = *pending;
            log({{"phase", reg.phase_at(s.global_step)},
                 {"iteration", s.global_step},
                 {"lambda", p.lambda},
                 {"ce", s.loss},
                 {"gram", p.gram},
                 {"gram_term", c_.no_gram ? 0.0 : c_.gram_weight * p.lambda * p.gram},
                 {"l2", p.l2},
                 {"bn", p.bn},
                 {"kept_norm", p.kept_norm},
                 {"pruned_norm", p.pruned_norm},
                 {"norm_ratio", p.pruned_norm > 0 ? Json(p.kept_norm / p.pruned_norm) : Json()}});
            pending.reset();
          }};
  const int64_t total = reg.iterations(), per_epoch = train_loader->num_batches();
  const auto trainer = make_trainer("regularize", regularized_phase_lr(),
                                    (total + per_epoch - 1) / per_epoch, std::move(hooks), *train_loader, total);
  say("prune: TPP regularisation, {} iterations (lambda reaches {:g} at {}, then {} to stabilise) at LR {:g}\n", total,
      c_.reg_ceiling, c_.reg_interval * static_cast<int64_t>(std::ceil(c_.reg_ceiling / c_.reg_granularity)),
      c_.stabilize_iters, c_.reg_lr);
  run_iterations(*trainer, total, [&](const EpochStats& s) { log(epoch_line("regularize", s)); });
  phase_ = Phase::remove;
  save_state(nullptr);
}

// The training images without augmentation (the reference takes shuffled
// training batches in train mode, which also moves BN's running statistics).
std::optional<prune::JsvStats> Pipeline::mean_jsv() {
  if (c_.jsv_batches <= 0) return std::nullopt;
  return prune::model_jsv(*model_, train::epoch_images(*jsv_loader_), c_.jsv_batches);
}

void Pipeline::remove() {
  if (!plan_) plan_ = prune::make_plan(*model_, plan_spec());
  broadcast_plan(dist_, *plan_);
  check_plan(*plan_);
  // Collectives (evaluation, broadcasts) run on every rank; the speed and the
  // JSV are rank 0's alone: they touch neither the default generator nor the
  // model's state (eval mode, no BN updates), so the ranks stay alike.
  dist::Communicator* comm = dist_.comm.get();
  Tensor speed_batch;
  if (root()) {
    test_loader_->start_epoch(0);
    speed_batch = test_loader_->next()->images;
  }
  const EvalResult before = train::evaluate_model(*model_, *test_loader_, comm);
  const double dense_speed = root() ? train::inference_images_per_second(*model_, speed_batch) : 0.0;
  const models::ModelSummary dense = models::summarize(*model_, data_.input);

  if (method_.scratch) {
    model_ = models::make_model_with_widths(info_.arch, data_.num_classes, data_.in_channels, plan_->widths());
    model_->to(device_);  // built on the CPU
    adopt_sync_batch_norm();
  } else {
    models::keep_filters(*model_, plan_->kept_indices());  // BN layers keep their sync setting
    model_->to(device_);  // the narrowed tensors already are; cheap to make sure of
  }
  const double gain = c_.orthp_gain > 0 ? c_.orthp_gain : prune::orthp_gain(info_.arch);
  if (method_.orthp) prune::orthogonalize_weights(*model_, gain);
  // Scratch's fresh weights are rank 0's; OrthP's are the same everywhere, but
  // cheap to make sure of.
  if (dist_.distributed() && (method_.scratch || method_.orthp)) models::broadcast_model(*dist_.comm, *model_);
  const EvalResult after = train::evaluate_model(*model_, *test_loader_, comm);
  const std::optional<prune::JsvStats> jsv = root() ? mean_jsv() : std::nullopt;
  const double pruned_speed = root() ? train::inference_images_per_second(*model_, speed_batch) : 0.0;
  const prune::PruneAnalysis counts =
      prune::compare_counts(prune::counts_of(dense), prune::counts_of(models::summarize(*model_, data_.input)));

  Json layers = Json::array();
  for (const prune::LayerPlan& l : plan_->layers)
    if (!l.pruned.empty()) layers.push_back({{"name", l.name}, {"total", l.total}, {"kept", l.width()}});
  log({{"phase", "remove"},
       {"test_acc_before", before.accuracy},
       {"test_loss_before", before.loss},
       {"test_acc", after.accuracy},
       {"test_loss", after.loss},
       {"jsv", jsv_or_null(jsv)},
       {"orthp_gain", method_.orthp ? Json(gain) : Json()},
       {"dense", prune::counts_json(counts.dense)},
       {"pruned", prune::counts_json(counts.pruned)},
       {"sparsity", counts.sparsity},
       {"sparsity_with_bn", counts.sparsity_with_bn},
       {"speedup", counts.speedup},
       {"inference_images_per_s",
        {{"dense", dense_speed}, {"pruned", pruned_speed}, {"batch", root() ? speed_batch.size(0) : 0}}},
       {"layers", layers}});
  say("prune: removed filters of {}: params {} -> {} (sparsity {:.2f}%), FLOPs {:.2f}x fewer; test accuracy "
      "{:.2f}% before, {:.2f}% after{}\n",
      counted(plan_->pruned_layers(), "layer"), with_commas(counts.dense.params), with_commas(counts.pruned.params), 100 * counts.sparsity, counts.speedup,
      before.accuracy, after.accuracy, jsv ? fmt::format(", mean JSV {}", prune::jsv_text(jsv->mean)) : "");
  if (run_) {
    models::CheckpointInfo pruned_info = info_;
    pruned_info.extra = {{"phase", "remove"}, {"prune.method", method_.name}, {"prune.base", c_.base}};
    models::save_checkpoint(run_->path() / "pruned.safetensors", *model_, pruned_info);
  }
  phase_ = Phase::retrain;
  save_state(nullptr);
}

void Pipeline::retrain() {
  const auto train_loader = train::make_train_loader(data_, loader_spec());
  TrainHooks hooks;
  if (method_.retrain != prune::OrthReg::none) {
    const prune::OrthRegMethod which = orth_method(method_.retrain);
    hooks.extra_loss = [this, which](const StepContext&) {
      return prune::orth_regularization(*model_, which) * c_.orth_weight;
    };
  }
  const auto trainer = make_trainer("retrain", c_.lr_schedule, c_.epochs, std::move(hooks), *train_loader);
  const int64_t total = c_.epochs * train_loader->num_batches();
  run_iterations(*trainer, total, [&](const EpochStats& s) {
    Json line = epoch_line("retrain", s);
    line["jsv"] = root() ? jsv_or_null(mean_jsv()) : Json();
    log(std::move(line));
    if (trainer->improved() && run_) {
      models::CheckpointInfo best = info_;
      best.extra = {{"phase", "retrain"},
                    {"epoch", std::to_string(s.epoch)},
                    {"test_acc", fmt::format("{}", s.test_acc)},
                    {"prune.method", method_.name}};
      models::save_checkpoint(run_->best_checkpoint(), *model_, best);
    }
    save_state(trainer.get());
    write_outcome();
  });
  phase_ = Phase::done;
  save_state(trainer.get());  // a later resume with more epochs goes on from here
}

void Pipeline::log(Json line) {
  if (run_) run_->append_log(line);
  ++log_lines_;
}

void Pipeline::save_state(Trainer* trainer) {
  if (trainer) trainer->gather_rank_buffers();
  if (!run_) return;
  std::map<std::string, Tensor> extras = trainer ? trainer->state_tensors() : std::map<std::string, Tensor>{};
  extras.emplace("pipeline.phase", scalar_i64(static_cast<int64_t>(phase_)));
  extras.emplace("pipeline.log_lines", scalar_i64(log_lines_));
  const Generator& rng = default_generator();
  extras.emplace("pipeline.rng", from_vector<int64_t>({std::bit_cast<int64_t>(rng.seed()),
                                                       std::bit_cast<int64_t>(rng.offset())},
                                                      {2}));
  if (plan_)
    for (const prune::LayerPlan& l : plan_->layers)
      if (!l.pruned.empty()) chosen_[l.name] = l.pruned;
  for (const auto& [layer, pruned] : chosen_)
    extras.emplace(kPlanPrefix + layer, from_vector<int64_t>(pruned, {static_cast<int64_t>(pruned.size())}));
  models::CheckpointInfo info = info_;
  info.extra = {{"phase", phase_name(phase_)}, {"prune.method", method_.name}, {"prune.base", c_.base}};
  if (trainer) info.extra["epoch"] = std::to_string(trainer->state().epochs_done);
  models::save_checkpoint(run_->last_checkpoint(), *model_, info, extras);
}

void Pipeline::write_outcome(const std::string& error, const std::string& status) {
  if (!run_) return;
  const std::vector<Json> lines = run_->read_log();
  Json summary = prune_summary_json(lines, {.method = method_.name,
                                            .arch = info_.arch,
                                            .dataset = info_.dataset,
                                            .base = c_.base,
                                            .stage_pr = c_.stage_pr,
                                            .skip_layers = c_.skip_layers,
                                            .phase = phase_name(phase_),
                                            .epochs = c_.epochs,
                                            .input = data_.input,
                                            .run_dir = run_->path().string()});
  summary["world_size"] = dist_.world_size;
  summary["global_batch_size"] = c_.batch_size * dist_.world_size;
  summary["sync_bn"] = c_.sync_bn && dist_.distributed();
  summary["pid"] = static_cast<int64_t>(getpid());  // `tpp compare` tells a running run from a killed one
  if (!error.empty()) summary["status"] = "failed", summary["error"] = error;
  if (!status.empty()) summary["status"] = status;
  run_->write_summary(summary);
  run_->write_report(prune_report_html(summary, lines, config_toml_));
}

void Pipeline::adopt_sync_batch_norm() {
  if (c_.sync_bn && dist_.distributed()) models::set_sync_batch_norm(*model_, dist_.comm);
}

// The ranks' story on rank 0's terminal: the global batch.
void print_distributed(const models::DistributedContext& dist, const PipelineConfig& c) {
  if (!dist.distributed()) return;
  fmt::print("prune: data-parallel over {} ranks ({}, {} backend): batch {} per rank, global batch {}{}\n",
             dist.world_size, dist.launcher, dist.comm->backend(), c.batch_size, c.batch_size * dist.world_size,
             c.sync_bn ? "; synchronised BN" : "");
}

void Pipeline::run() {
  const bool resuming = !c_.resume.empty();
  const RunDir::Mode mode = resuming ? RunDir::Mode::resume
                            : c_.overwrite ? RunDir::Mode::overwrite
                                           : RunDir::Mode::create;
  check_settings(c_);
  train::check_training_device(c_.device, "prune");
  // Early, so that any later error on one rank ends every rank (apps/main.cpp).
  dist_ = models::init_distributed(c_.distributed, c_.device);
  device_ = train::training_device(c_.device, dist_.local_rank, dist_.distributed());
  // Several ranks must agree on the default run directory's time stamp.
  std::string dir_text = resuming ? c_.resume
                         : !c_.out.empty()
                             ? c_.out
                             : (fs::path("runs") / fmt::format("prune-{}-{}", method_.name, std::time(nullptr))).string();
  dist::broadcast_text(*dist_.comm, dir_text);
  dir_ = dir_text;
  dist::run_on_root(*dist_.comm, [&] { RunDir::check_usable(dir_, mode); });
  manual_seed(c_.seed);
  // Every rank reads the same checkpoint (base or last): the same weights,
  // phase, plan, trainer state and RNG.
  if (resuming) {
    open_resumed();
  } else {
    open_base();
    phase_ = first_phase(method_);
    // Filters are chosen once, on the base weights, for TPP; the baselines
    // choose at removal (after their own regularised training, if any).
    if (method_.tpp) {
      plan_ = prune::make_plan(*model_, plan_spec());
      broadcast_plan(dist_, *plan_);  // the penalties and the zeroing act on rank 0's filters everywhere
      check_plan(*plan_);
    } else {
      check_plan(prune::make_plan(*model_, plan_spec()));
    }
  }
  // The base or resumed checkpoint is read onto the CPU and the plan made
  // there; every phase from here on runs on the device (the trainer moves its
  // batches, the optimizer state it resumes follows the parameters).
  model_->to(device_);
  adopt_sync_batch_norm();
  data_ = train::open_run_data({.arch = info_.arch, .limit = c_.limit, .test_limit = c_.test_limit},
                        data::locate_dataset(info_.dataset, data::resolve_data_root(c_.data_dir)), "prune");
  TPP_CHECK(data_.num_classes == info_.num_classes,
            "prune: the model has {} classes but {} has {}; pass the `dataset` it was trained on", info_.num_classes,
            data_.where.name, data_.num_classes);
  test_loader_ = train::make_test_loader(data_, loader_spec());
  if (root())  // the mean JSV is rank 0's
    jsv_loader_ = std::make_unique<data::DataLoader>(
        data_.train, train::transforms_for(data_, false),
        data::DataLoaderOptions{.batch_size = c_.batch_size, .num_workers = c_.workers, .seed = c_.seed});

  // Rank 0 alone owns the run directory; other ranks only compute.
  config_toml_ = c_.config_toml;
  dist::run_on_root(*dist_.comm, [&] {
    run_.emplace(dir_, mode);
    if (resuming) {
      std::vector<Json> lines = run_->read_log();
      TPP_CHECK(static_cast<int64_t>(lines.size()) >= log_lines_, "`resume`: {} has {} log lines, the checkpoint {}",
                run_->log_file().string(), lines.size(), log_lines_);
      lines.resize(static_cast<size_t>(log_lines_));
      run_->rewrite_log(lines);
    }
    run_->write_config(config_toml_);
    fmt::print("prune: {} of {} on {} ({} train / {} test images), stage-pr '{}'\n", method_.name, info_.arch,
               data_.where.name, data_.train->size(), data_.test->size(), c_.stage_pr);
    print_distributed(dist_, c_);
    fmt::print("prune: run directory {}{}\n", run_->path().string(),
               resuming ? fmt::format(" (resuming in phase {})", phase_name(phase_)) : "");
    std::fflush(stdout);
    if (!resuming) save_state(nullptr);
  });
  if (resuming && !c_.resume_changes.empty())
    log({{"phase", "resume"}, {"resumed_in", phase_name(phase_)}, {"changes", c_.resume_changes}});

  train::recording_failure(
      [&] {
        if (phase_ == Phase::orth_regularize) orth_regularize();
        if (phase_ == Phase::regularize) regularize();
        if (phase_ == Phase::remove) remove();
        write_outcome();
        if (phase_ == Phase::retrain) retrain();
      },
      [this](const std::string& error) { write_outcome(error); }, dist_);
  write_outcome();
  // The others leave when rank 0's files are complete: a launcher may stop
  // the job as soon as one rank exits.
  if (dist_.distributed()) dist_.comm->barrier();
  if (root()) print_prune_outcome(run_->read_log(), run_->path().string());
}

}  // namespace

void run_pipeline(const PipelineConfig& config) { Pipeline(config).run(); }

}  // namespace tpp::prune
