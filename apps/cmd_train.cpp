// `tpp train`: trains a zoo model on a dataset with SGD and a step LR
// schedule, writing a run directory (train/training_run.h); `--resume
// RUN_DIR` continues one exactly where its last checkpoint left off. Options
// come from flags and/or a TOML file (`--config`); flags win. The resolved
// options land in the run's config.toml, which `--config` (and `--resume`)
// read back.
//
// Under a multi-process launcher (mpirun, srun, torchrun on GPUs) the run is
// data-parallel (models/data_parallel.h, train/trainer.h): --batch-size is
// per rank, each rank trains on its shard of every global batch, and rank 0
// alone writes the run directory. Every rank reads the data and, with
// --resume, the checkpoint: they must see the same files (a shared file
// system across nodes).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "apps/commands.h"
#include "apps/usage.h"
#include "data/catalog.h"
#include "engine/device.h"
#include "engine/lr_schedule.h"
#include "models/data_parallel.h"
#include "models/zoo.h"
#include "train/run_data.h"
#include "train/trainer.h"
#include "train/training_run.h"

namespace tpp::apps {

namespace {

// The run's settings as flags: the typed config, and the text of the
// settings that are not plain numbers or strings there.
struct TrainOptions {
  train::TrainingRunConfig config;
  std::string lr_schedule = "0:0.1", device = train::default_device().is_cuda() ? "cuda" : "cpu", on_nan = "stop",
              distributed = "auto";
};

void check_arch(const std::string& arch) {
  const auto& known = models::known_archs();
  if (std::find(known.begin(), known.end(), arch) == known.end())
    usage_fail("train: {}", models::unknown_arch_text(arch));
}

// The typed config from the flags' text; `command` records the settings, with
// the data folder actually used (found before anything is written).
train::TrainingRunConfig training_config(const TrainOptions& o, const CLI::App& command) {
  train::TrainingRunConfig c = o.config;
  c.lr_schedule = LrSchedule::parse_milestones(o.lr_schedule);
  c.device = Device::parse(o.device);
  c.on_nan = train::parse_on_nan(o.on_nan);
  c.distributed = models::parse_distributed_mode(o.distributed);
  c.data_dir = data::locate_dataset(c.dataset, data::resolve_data_root(c.data_dir)).dir.string();
  c.config_toml = with_config_value(command.config_to_str(true, true), "data-dir", c.data_dir);
  return c;
}

}  // namespace

CLI::App* add_train_command(CLI::App& app) {
  auto options = std::make_shared<TrainOptions>();
  train::TrainingRunConfig* c = &options->config;
  CLI::App* sub = app.add_subcommand("train", "Train a zoo model on a dataset; writes a run directory");
  sub->footer("Examples:\n  tpp train --arch vgg_small --dataset fashion-mnist --epochs 3 --out runs/vgg_small\n  tpp train --config configs/vgg_small-fashion-mnist.toml --out runs/vgg_small\n  tpp train --resume runs/vgg_small --epochs 6");
  CLI::Option* config = add_config_option(sub);
  sub->add_option("--arch", c->arch,
                  fmt::format("Architecture (required): {}", fmt::join(models::known_archs(), ", ")));
  sub->add_option("--dataset", c->dataset,
                  "Dataset (required): mnist, fashion-mnist, cifar10, cifar100, imagenet or imagefolder:<path>");
  sub->add_option("--data-dir", c->data_dir, kDataDirHelp);
  sub->add_option("--epochs", c->epochs, "Train until this epoch")->capture_default_str()->check(positive_integer());
  sub->add_option("--batch-size", c->batch_size, "Samples per step and per rank (global batch: ranks x this)")
      ->capture_default_str()
      ->check(positive_integer());
  sub->add_option("--lr-schedule", options->lr_schedule, "Step schedule epoch:lr,... (the LR of the last milestone reached)")
      ->capture_default_str()
      ->check(lr_schedule_text());
  sub->add_option("--momentum", c->momentum)->capture_default_str()->check(non_negative_number());
  sub->add_option("--weight-decay", c->weight_decay)->capture_default_str()->check(non_negative_number());
  sub->add_flag("--nesterov", c->nesterov, "Nesterov momentum");
  sub->add_option("--seed", c->seed, "Seeds the initial weights and the data order")
      ->capture_default_str()
      ->check(non_negative_integer());
  sub->add_option("--device", options->device, "cpu, cuda or cuda:N (default: cuda when available)")->capture_default_str()->check(device_name());
  sub->add_option("--workers", c->workers, "Data loader threads")->capture_default_str()->check(non_negative_integer());
  sub->add_flag("--sync-bn", c->sync_bn,
                "Data-parallel runs: batch-norm statistics over the global batch (default: each rank's own)");
  sub->add_option("--distributed", options->distributed,
                  "auto: data-parallel when launched as several processes (mpirun, srun, torchrun); off: one process")
      ->capture_default_str()
      ->check(one_of({"auto", "off"}))
      ->configurable(false);
  sub->add_option("--limit", c->limit, "Train on the first N training samples only (0: all)")
      ->capture_default_str()
      ->check(non_negative_integer());
  sub->add_option("--test-limit", c->test_limit, "Evaluate on the first N test samples only (0: all)")
      ->capture_default_str()
      ->check(non_negative_integer());
  sub->add_option("--on-nan", options->on_nan,
                  "A step whose loss or gradients hold NaN/inf: stop the run (naming the step), or skip the step "
                  "(counted in log.jsonl); TPP_SYNC_DEBUG=1 names the op that produced it")
      ->capture_default_str()
      ->check(one_of({"stop", "skip"}));
  sub->add_option("--checkpoint-interval", c->checkpoint_interval,
                  "Steps between checkpoints inside an epoch (last.safetensors is written at every epoch's end too)")
      ->capture_default_str()
      ->check(positive_integer());
  add_run_dir_options(sub, config, c->out, c->overwrite, c->resume, "runs/<arch>-<dataset>-<time>");
  register_command(sub, [options, c, sub, config] {
    TPP_CHECK(c->resume.empty() || config->count() == 1,
              "train: --resume reads {}/config.toml; give flags to change options, not --config", c->resume);
    if (!c->resume.empty()) c->resume_changes = changes_on_resume(*sub, c->resume);
    apply_config_files(*sub);
    if (c->arch.empty() || c->dataset.empty())
      usage_fail("train: --arch and --dataset are required (as flags or in the --config file)");
    check_arch(c->arch);
    as_usage_error([&] { return data::canonical_dataset_name(c->dataset); });
    train::run_training(training_config(*options, *sub));
    return 0;
  });
  return sub;
}

}  // namespace tpp::apps
