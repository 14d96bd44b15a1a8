// `tpp jsv --checkpoint F [--dataset D] [--data-dir P] [--split S]
// [--batches N] [--batch-size B] [--mode eval|train] [--exact|--sampled]
// [--seed S] [--workers W] [--arch A] [--json]`: the mean Jacobian singular
// value of a checkpoint and its spread (TPP-METHOD §8.3, prune/jsv.h).
//
// A model that is a chain of linear layers (mlp7_linear) gets the exact
// product W_L ⋯ W_1 by default, with no data; --sampled forces per-sample
// Jacobians over the first N shuffled batches of the split (train, as the
// reference's train loader) with the dataset's evaluation transforms (no
// augmentation), in the --mode the model is put in.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "apps/usage.h"
#include "train/model_input.h"
#include "train/run_data.h"
#include "data/catalog.h"
#include "data/loader.h"
#include "models/checkpoint.h"
#include "prune/jsv.h"
#include "engine/text.h"

namespace tpp::apps {

using namespace tpp::train;  // the training floor (train/): run data, run directories, reports

namespace {

struct JsvOptions {
  std::string checkpoint, dataset, data_dir, arch, split = "train", mode = "eval";
  int64_t batches = 10, batch_size = 100;
  uint64_t seed = 0;
  int workers = 2;
  bool exact = false, sampled = false, json = false;
};

struct SampledRun {
  std::string dataset, split;
  int64_t batches = 0;
};

data::TransformPtr jsv_transform(const std::string& dataset, const data::Dataset& images, const ModelInput& input) {
  data::TransformPtr standard = data::standard_transforms(dataset, false);
  const std::optional<Shape> image = images.image_shape();
  if (!input.fixed_resolution || (image && (*image)[1] == input.height && (*image)[2] == input.width)) return standard;
  return std::make_shared<data::Compose>(
      std::vector<data::TransformPtr>{std::make_shared<data::Resize>(input.height, input.width), standard});
}

SampledRun sample_jacobians(const JsvOptions& o, const models::Checkpoint& ckpt, models::Module& model,
                            const std::string& arch, prune::JsvAccumulator& acc) {
  const std::string dataset = o.dataset.empty() ? ckpt.info.dataset : o.dataset;
  TPP_CHECK(!dataset.empty(), "jsv: {} names no dataset; pass --dataset", o.checkpoint);
  const data::DatasetLocation where = data::locate_dataset(dataset, data::resolve_data_root(o.data_dir));
  TPP_CHECK(std::find(where.splits.begin(), where.splits.end(), o.split) != where.splits.end(),
            "jsv: {} in {} has no '{}' split", where.name, where.dir.string(), o.split);
  const auto images = data::open_dataset(where, o.split);
  const ModelInput input = model_input(model, arch);
  if (const std::optional<Shape> image = images->image_shape())
    TPP_CHECK((*image)[0] == input.channels, "jsv: {} has {}-channel images but {} in {} takes {} channels", where.name,
              (*image)[0], arch, o.checkpoint, input.channels);

  data::DataLoader loader(images, jsv_transform(where.name, *images, input),
                          {.batch_size = o.batch_size, .shuffle = true, .num_workers = o.workers, .seed = o.seed});
  model.train(o.mode == "train");
  const SampledRun run{where.name, o.split, acc.add_batches(model, train::epoch_images(loader), o.batches)};
  TPP_CHECK(run.batches > 0, "jsv: the {} split of {} is empty", o.split, where.name);
  return run;
}

std::string number(double v) { return prune::jsv_text(v); }

int run_jsv(const JsvOptions& o) {
  TPP_CHECK(o.batches > 0, "jsv: --batches must be positive, got {}", o.batches);
  TPP_CHECK(o.batch_size > 0, "jsv: --batch-size must be positive, got {}", o.batch_size);
  TPP_CHECK(o.mode == "eval" || o.mode == "train", "jsv: --mode must be eval or train, got '{}'", o.mode);
  TPP_CHECK(!(o.exact && o.sampled), "jsv: --exact and --sampled exclude each other");
  const models::Checkpoint ckpt = models::read_checkpoint(o.checkpoint);
  const std::shared_ptr<models::Module> model = models::build_model(ckpt, o.arch);
  const std::string arch = o.arch.empty() ? ckpt.info.arch : o.arch;
  const bool linear = prune::is_linear_chain(*model);
  TPP_CHECK(!o.exact || linear,
            "jsv: --exact needs a model that is a chain of linear layers, and {} ({}) is not; "
            "use --sampled",
            o.checkpoint, arch);
  const bool exact = o.exact || (linear && !o.sampled);

  prune::JsvStats stats;
  SampledRun sampled;
  if (exact) {
    stats = prune::linear_chain_jsv(*model);
  } else {
    prune::JsvAccumulator acc;
    sampled = sample_jacobians(o, ckpt, *model, arch, acc);
    stats = acc.stats();
  }

  if (o.json) {
    nlohmann::ordered_json out = {{"checkpoint", o.checkpoint}, {"arch", arch}, {"route", exact ? "exact" : "sampled"}};
    if (!exact) {
      out["dataset"] = sampled.dataset;
      out["split"] = sampled.split;
      out["mode"] = o.mode;
      out["batches"] = sampled.batches;
    }
    const nlohmann::ordered_json values = prune::jsv_json(stats);
    for (const auto& [key, value] : values.items()) out[key] = value;
    out["values"] = stats.values;
    fmt::print("{}\n", out.dump(2));
    return 0;
  }
  if (exact)
    fmt::print("{} ({}): exact, J = W_L ... W_1 of the linear model ({} singular values, no data used)\n", o.checkpoint,
               arch, stats.values);
  else
    fmt::print("{} ({}): sampled, {} on {} {} ({}, model in {} mode), {} singular values\n", o.checkpoint, arch,
               counted(stats.samples, "Jacobian"), sampled.dataset, sampled.split, counted(sampled.batches, "batch"),
               o.mode, stats.values);
  fmt::print("mean JSV {}  std {}  min {}  max {}  condition {}  mean (s-1)^2 {}\n", number(stats.mean),
             number(stats.std), number(stats.min), number(stats.max), number(stats.condition),
             number(stats.mean_sq_dev_from_1));
  return 0;
}

}  // namespace

CLI::App* add_jsv_command(CLI::App& app) {
  auto opts = std::make_shared<JsvOptions>();
  CLI::App* sub = app.add_subcommand("jsv", "Mean Jacobian singular value of a checkpoint (trainability, §8.3)");
  sub->footer("Examples:\n  tpp jsv --checkpoint runs/vgg_small/best.safetensors\n  tpp jsv --checkpoint runs/prune/pruned.safetensors --batches 20");
  sub->add_option("--checkpoint", opts->checkpoint, "Checkpoint (.safetensors)")->required();
  sub->add_option("--dataset", opts->dataset, "Dataset (default: the checkpoint's)");
  sub->add_option("--data-dir", opts->data_dir, kDataDirHelp);
  sub->add_option("--split", opts->split, "Split the images come from")->capture_default_str();
  sub->add_option("--batches", opts->batches, "Batches of Jacobians (sampled)")->capture_default_str()->check(positive_integer());
  sub->add_option("--batch-size", opts->batch_size)->capture_default_str()->check(positive_integer());
  sub->add_option("--mode", opts->mode, "Model mode for the Jacobians: eval or train (BN batch statistics)")
      ->capture_default_str();
  sub->add_flag("--exact", opts->exact, "The exact product W_L...W_1 (linear models; the default for them)");
  sub->add_flag("--sampled", opts->sampled, "Per-sample Jacobians by backpropagation, even for a linear model");
  sub->add_option("--seed", opts->seed, "Seeds the order of the shuffled images")
      ->capture_default_str()
      ->check(non_negative_integer());
  sub->add_option("--workers", opts->workers, "Loader threads")->capture_default_str()->check(non_negative_integer());
  sub->add_option("--arch", opts->arch, "Architecture, for a checkpoint without metadata (a torchvision state_dict)");
  sub->add_flag("--json", opts->json, "Print JSON (mean, std, min, max, condition, ...) instead of text");
  register_command(sub, [opts] { return run_jsv(*opts); });
  return sub;
}

}  // namespace tpp::apps
