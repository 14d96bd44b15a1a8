// A training run of a zoo model (`tpp train`; train/training_run.h): the
// run directory, the trainer, and after every epoch the log line, the
// checkpoints (last: everything a resume needs; best: the weights with the
// best test accuracy), summary.json and report.html.
#include "train/training_run.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "data/catalog.h"
#include "engine/build_info.h"
#include "engine/interrupt.h"
#include "engine/philox.h"
#include "engine/text.h"
#include "models/checkpoint.h"
#include "models/summary.h"
#include "models/zoo.h"
#include "train/progress.h"
#include "train/report.h"
#include "train/run_dir.h"
#include "train/trainer.h"

namespace tpp::train {

namespace {

namespace fs = std::filesystem;

void check_arch(const std::string& arch) {
  const auto& known = models::known_archs();
  if (std::find(known.begin(), known.end(), arch) == known.end())
    setting_fail("train: {}", models::unknown_arch_text(arch));
}

fs::path default_run_dir(const TrainingRunConfig& c, const std::string& dataset) {
  const std::time_t now = std::time(nullptr);
  return fs::path("runs") / fmt::format("{}-{}-{:%Y%m%d-%H%M%S}", c.arch, dataset, fmt::localtime(now));
}

nlohmann::ordered_json summary_json(const TrainingRunConfig& c, const RunData& d, const models::ModelSummary& model,
                                    const Trainer& trainer, const std::vector<EpochStats>& history,
                                    const RunDir& run, const models::DistributedContext& dist) {
  double seconds = 0, images_per_second = 0;
  for (const EpochStats& e : history) seconds += e.seconds, images_per_second += e.images_per_second;
  if (!history.empty()) images_per_second /= static_cast<double>(history.size());
  const TrainState& s = trainer.state();
  nlohmann::ordered_json out = {
      {"status", s.epochs_done >= c.epochs ? "finished" : trainer.stop_signal() != 0 ? "interrupted" : "running"},
      {"arch", c.arch},
      {"dataset", d.where.name},
      {"epochs", c.epochs},
      {"epochs_done", s.epochs_done},
      {"global_step", s.global_step},
      {"final_test_acc", history.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(history.back().test_acc)},
      {"final_test_loss", history.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(history.back().test_loss)},
      {"best_test_acc", s.best_epoch > 0 ? nlohmann::ordered_json(s.best_test_acc) : nlohmann::ordered_json()},
      {"best_epoch", s.best_epoch},
      {"train_samples", d.train->size()},
      {"test_samples", d.test->size()},
      {"input", model.input},
      {"num_classes", d.num_classes},
      {"params", model.params},
      {"params_with_bn", model.params_with_bn},
      {"flops", model.flops},
      {"seconds", seconds},
      {"images_per_s", images_per_second},
      {"device", c.device.str()},
      {"world_size", dist.world_size},
      {"global_batch_size", c.batch_size * dist.world_size},
      {"sync_bn", c.sync_bn && dist.distributed()},
      {"seed", c.seed},
      {"pid", static_cast<int64_t>(getpid())},  // `tpp compare` tells a running run from a killed one
      {"run_dir", run.path().string()},
      {"checkpoints", {{"last", run.last_checkpoint().filename().string()},
                       {"best", run.best_checkpoint().filename().string()}}},
      {"engine_version", TPP_VERSION}};
  return out;
}

TrainingReport report_of(const nlohmann::ordered_json& summary, const std::vector<EpochStats>& history,
                         const std::string& config, const std::vector<std::string>& changes) {
  const auto text = [&](const char* key) {
    const auto& v = summary.at(key);
    return v.is_string() ? v.get<std::string>() : v.dump();
  };
  const auto number = [&](const char* key) { return with_commas(summary.at(key).get<int64_t>()); };
  const auto percent = [&](const char* key) {
    const auto& v = summary.at(key);
    return v.is_number() ? fmt::format("{:.2f}%", v.get<double>()) : std::string("-");
  };
  TrainingReport r;
  r.title = fmt::format("{} on {}", text("arch"), text("dataset"));
  r.facts = {{"status", fmt::format("{} ({} of {})", text("status"), text("epochs_done"),
                                     counted(summary.at("epochs").get<int64_t>(), "epoch"))},
             {"final test accuracy", percent("final_test_acc")},
             {"best test accuracy", fmt::format("{} (epoch {})", percent("best_test_acc"), text("best_epoch"))},
             {"parameters", fmt::format("{} ({} with BN)", number("params"), number("params_with_bn"))},
             {"FLOPs per image", number("flops")},
             {"train / test images", fmt::format("{} / {}", number("train_samples"), number("test_samples"))},
             {"time", format_duration(summary.at("seconds").get<double>())},
             {"device", text("device")},
             {"engine", text("engine_version")}};
  if (summary.contains("error")) r.facts.insert(r.facts.begin() + 1, {"error", text("error")});
  for (const std::string& change : changes) r.facts.emplace_back("changed on resume", change);
  r.epochs = history;
  r.config_toml = config;
  return r;
}

// A log line that records settings changed on a resume (not an epoch).
bool is_change_line(const nlohmann::ordered_json& line) { return line.contains("resumed_with_changes"); }

// "after step 9: batch-size: 128 -> 64; lr-schedule: ..." for the report.
std::string change_text(const nlohmann::ordered_json& line) {
  std::string changes;
  for (const auto& c : line.at("resumed_with_changes")) changes += (changes.empty() ? "" : "; ") + c.get<std::string>();
  return fmt::format("after step {}: {}", line.at("global_step").get<int64_t>(), changes);
}

// The log lines a checkpoint accounts for: its epochs (a line written after
// the last checkpoint, a crash between the two, belongs to work being redone)
// and the changes of earlier resumes.
std::vector<nlohmann::ordered_json> log_until(const RunDir& run, int64_t epochs_done) {
  std::vector<nlohmann::ordered_json> kept;
  for (const auto& line : run.read_log())
    if (is_change_line(line) || epoch_from_json(line).epoch <= epochs_done) kept.push_back(line);
  return kept;
}

// Weights, BN statistics, momentum, counters and RNG as the last epoch left them.
void restore_last_checkpoint(const fs::path& dir, models::Module& model, Trainer& trainer, const std::string& arch,
                             const std::string& dataset) {
  const models::Checkpoint last = models::read_checkpoint(dir / "last.safetensors");
  TPP_CHECK(last.info.arch == arch && last.info.dataset == dataset,
            "`resume` {}: the checkpoint holds {} on {}, but the config asks for {} on {}", dir.string(),
            last.info.arch, last.info.dataset, arch, dataset);
  model.load_state_dict(last.model_tensors);
  trainer.load_state_tensors(last.extra_tensors);
}

// The ranks' story on rank 0's terminal: who trains, and the global batch.
void print_distributed(const models::DistributedContext& dist, const TrainingRunConfig& c, const Trainer& trainer) {
  if (!dist.distributed()) return;
  const auto& buckets = trainer.grad_buckets();
  int64_t elements = 0;
  for (const auto& b : buckets) elements += b.numel;
  fmt::print("train: data-parallel over {} ranks ({}, {} backend): batch {} per rank, global batch {}; gradients "
             "{:.2f} MB per step in {} bucket(s){}\n",
             dist.world_size, dist.launcher, dist.comm->backend(), c.batch_size, c.batch_size * dist.world_size,
             static_cast<double>(elements) * 4 / 1e6, buckets.size(), c.sync_bn ? "; synchronised BN" : "");
}

}  // namespace

void run_training(const TrainingRunConfig& c) {
  check_training_device(c.device, "train");
  // Early, so that any later error on one rank ends every rank (apps/main.cpp).
  const models::DistributedContext dist = models::init_distributed(c.distributed, c.device);
  // Everything that can be wrong with the input is checked before the run
  // directory is touched.
  const bool resuming = !c.resume.empty();
  const RunDir::Mode mode = resuming ? RunDir::Mode::resume
                            : c.overwrite ? RunDir::Mode::overwrite
                                          : RunDir::Mode::create;
  check_arch(c.arch);
  data::DatasetLocation where = data::locate_dataset(c.dataset, data::resolve_data_root(c.data_dir));
  // Several ranks must agree on the default run directory's time stamp.
  std::string dir_text = resuming ? c.resume : c.out.empty() ? default_run_dir(c, where.name).string() : c.out;
  dist::broadcast_text(*dist.comm, dir_text);
  const fs::path dir = dir_text;
  dist::run_on_root(*dist.comm, [&] { RunDir::check_usable(dir, mode); });
  const RunData d = open_run_data({.arch = c.arch, .limit = c.limit, .test_limit = c.test_limit}, std::move(where), "train");

  manual_seed(c.seed);
  const std::shared_ptr<models::Module> model = models::make_model(c.arch, d.num_classes, d.in_channels);
  const models::ModelSummary model_summary = models::summarize(*model, d.input);
  model->to(training_device(c.device, dist.local_rank, dist.distributed()));
  if (c.sync_bn && dist.distributed()) models::set_sync_batch_norm(*model, dist.comm);
  const LoaderSpec loaders{
      .batch_size = c.batch_size, .workers = c.workers, .seed = c.seed, .rank = dist.rank, .world_size = dist.world_size};
  const auto train_loader = make_train_loader(d, loaders);
  const auto test_loader = make_test_loader(d, loaders);
  Trainer trainer(*model, *train_loader, *test_loader,
                  {.schedule = c.lr_schedule,
                   .momentum = c.momentum,
                   .weight_decay = c.weight_decay,
                   .nesterov = c.nesterov,
                   .epochs = c.epochs,
                   // mpirun hands its ranks a pseudo-terminal even when its own output goes to a file:
                   // data-parallel runs print one plain line per epoch.
                   .live_progress = c.live_progress && stdout_is_terminal() && !dist.distributed(),
                   .phase = "train",
                   .on_nan = c.on_nan,
                   .distributed = dist});
  models::CheckpointInfo info{.arch = c.arch,
                              .dataset = d.where.name,
                              .num_classes = d.num_classes,
                              .in_channels = d.in_channels,
                              .widths = {},  // save_checkpoint() reads them off the model
                              .extra = {}};
  // Every rank reads the same checkpoint: the same weights, momentum, counters and RNG.
  if (resuming) restore_last_checkpoint(dir, *model, trainer, c.arch, d.where.name);
  // A finished run resumed with no more epochs has nothing left to train; its
  // summary and report are written again (a run killed after its last
  // checkpoint may have missed them).
  const bool nothing_to_train = resuming && trainer.state().epochs_done >= c.epochs;

  // Rank 0 alone owns the run directory; other ranks only train.
  std::optional<RunDir> run;
  std::vector<EpochStats> history;
  std::vector<std::string> changes;  // settings changed by resumes, for the report
  const std::string& config = c.config_toml;
  dist::run_on_root(*dist.comm, [&] {
    run.emplace(dir, mode);
    if (resuming) {
      std::vector<nlohmann::ordered_json> lines = log_until(*run, trainer.state().epochs_done);
      if (!c.resume_changes.empty())
        lines.push_back({{"resumed_with_changes", c.resume_changes},
                         {"global_step", trainer.state().global_step},
                         {"epochs_done", trainer.state().epochs_done}});
      for (const auto& line : lines) {
        if (is_change_line(line))
          changes.push_back(change_text(line));
        else
          history.push_back(epoch_from_json(line));
      }
      run->rewrite_log(lines);
    }
    run->write_config(config);

    fmt::print("train: {} on {} ({} train / {} test images, input {}), {} parameters, {}\n", c.arch, d.where.name,
               d.train->size(), d.test->size(), shape_str(d.input), with_commas(model_summary.params), c.device.str());
    print_distributed(dist, c, trainer);
    fmt::print("train: run directory {}{}\n", run->path().string(),
               !resuming                            ? std::string()
               : trainer.state().step_in_epoch > 0 ? fmt::format(" (resuming in epoch {} after step {})",
                                                                  trainer.state().epochs_done + 1,
                                                                  trainer.state().step_in_epoch)
                                                    : fmt::format(" (resuming after epoch {})", trainer.state().epochs_done));
    if (nothing_to_train)
      fmt::print("train: the run has finished its {}: nothing to train (resume with more epochs to train further)\n",
                 counted(trainer.state().epochs_done, "epoch"));
    std::fflush(stdout);
  });

  const auto write_outcome = [&](const std::string& error = "") {
    if (!run) return;
    nlohmann::ordered_json summary = summary_json(c, d, model_summary, trainer, history, *run, dist);
    if (!error.empty()) summary["status"] = "failed", summary["error"] = error;
    if (!changes.empty()) summary["resume_changes"] = changes;
    run->write_summary(summary);
    run->write_report(training_report_html(report_of(summary, history, config, changes)));
  };
  while (trainer.state().epochs_done < c.epochs) {
    const int64_t step = trainer.state().global_step;
    const int64_t next_checkpoint = (step / c.checkpoint_interval + 1) * c.checkpoint_interval;
    const EpochStats stats = recording_failure([&] { return trainer.run_epoch(next_checkpoint); }, write_outcome, dist);
    trainer.gather_rank_buffers();
    if (run) {
      if (stats.complete) {
        history.push_back(stats);
        run->append_log(epoch_json(stats));
        info.extra = {{"phase", "train"},
                      {"epoch", std::to_string(stats.epoch)},
                      {"test_acc", fmt::format("{}", stats.test_acc)}};
        if (trainer.improved()) models::save_checkpoint(run->best_checkpoint(), *model, info);
      } else {
        info.extra = {{"phase", "train"},
                      {"epoch", std::to_string(trainer.state().epochs_done)},
                      {"step", std::to_string(trainer.state().global_step)}};
      }
      models::save_checkpoint(run->last_checkpoint(), *model, info, trainer.state_tensors());
      write_outcome();
    }
    if (const int signal = trainer.stop_signal(); signal != 0 && trainer.state().epochs_done < c.epochs) {
      // The others leave once rank 0's checkpoint is complete (a launcher may
      // end the job as soon as one rank exits).
      if (dist.distributed()) dist.comm->barrier();
      const TrainState& s = trainer.state();
      throw Interrupted(signal, dir.string(), fmt::format("train: saved after step {} ({})", s.global_step,
                                            s.step_in_epoch > 0 ? fmt::format("epoch {}, step {} of {}",
                                                                              s.epochs_done + 1, s.step_in_epoch,
                                                                              train_loader->num_batches())
                                                                : fmt::format("end of epoch {}", s.epochs_done)));
    }
  }
  write_outcome();
  // The others leave when rank 0's files are complete: a launcher may stop
  // the job as soon as one rank exits.
  if (dist.distributed()) dist.comm->barrier();
  if (!run) return;

  const TrainState& s = trainer.state();
  if (!history.empty())
    fmt::print("train: final test accuracy {:.2f}%, best {:.2f}% (epoch {})\n", history.back().test_acc,
               s.best_test_acc, s.best_epoch);
  fmt::print("train: run directory {} (report.html, summary.json, log.jsonl, last/best.safetensors)\n",
             run->path().string());
}

}  // namespace tpp::train
