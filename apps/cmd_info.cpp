// `tpp info --arch A --dataset D [--json]`: the per-layer table and the
// params / FLOPs totals of an architecture at a dataset's resolution, counted
// as the paper counts them (models/summary.h).
// `--buckets [--bucket-mb N]`: the data-parallel view instead: the gradient
// bytes all-reduced per step and the bucket plan the trainer uses
// (models/data_parallel.h).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "apps/usage.h"
#include "train/dataset_shapes.h"
#include "engine/error.h"
#include "models/checkpoint.h"
#include "models/data_parallel.h"
#include "models/layers.h"
#include "models/summary.h"
#include "models/zoo.h"

namespace tpp::apps {

using namespace tpp::train;  // the training floor (train/): run data, run directories, reports

namespace {

struct InfoOptions {
  std::string arch, dataset, checkpoint;
  bool json = false;
  bool buckets = false;
  double bucket_mb = static_cast<double>(models::kDefaultBucketBytes) / (1 << 20);
};

nlohmann::ordered_json buckets_json(const models::ParameterArena& arena, const std::vector<models::GradBucket>& plan,
                                    int64_t bucket_bytes) {
  const auto element_bytes = static_cast<int64_t>(element_size(arena.grads.dtype()));
  int64_t reduced = 0;
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const models::GradBucket& b : plan) {
    reduced += b.numel;
    list.push_back({{"bytes", b.numel * element_bytes},
                    {"params", b.params.size()},
                    {"first", b.params.front()},
                    {"last", b.params.back()}});
  }
  return {{"parameter_tensors", arena.views.size()},
          {"gradient_bytes_per_step", reduced * element_bytes},
          {"bucket_bytes", bucket_bytes},
          {"buckets", list}};
}

std::string buckets_table(const nlohmann::ordered_json& j) {
  const auto mb = [](int64_t bytes) { return static_cast<double>(bytes) / (1 << 20); };
  const int64_t total = j["gradient_bytes_per_step"].get<int64_t>();
  std::string out = fmt::format(
      "gradients all-reduced per step: {} bytes ({:.2f} MiB) over {} parameter tensors\n"
      "ring all-reduce traffic per rank and step: 2(W-1)/W x that, e.g. {:.2f} MiB at W = 8\n"
      "buckets of up to {:.0f} MiB, in the order backward fills them: {}\n\n",
      total, mb(total), j["parameter_tensors"].get<int64_t>(), mb(total) * 2 * 7 / 8,
      mb(j["bucket_bytes"].get<int64_t>()), j["buckets"].size());
  out += fmt::format("{:>6}  {:>10}  {:>6}  {}\n", "bucket", "MiB", "params", "parameters (first .. last)");
  int index = 0;
  for (const auto& b : j["buckets"])
    out += fmt::format("{:>6}  {:>10.3f}  {:>6}  {} .. {}\n", index++, mb(b["bytes"].get<int64_t>()),
                       b["params"].get<int64_t>(), b["first"].get<std::string>(), b["last"].get<std::string>());
  return out;
}

// The model of --checkpoint (at its own, possibly pruned, widths), else a fresh --arch.
std::shared_ptr<models::Module> info_model(InfoOptions& opts) {
  if (!opts.checkpoint.empty()) {
    const models::Checkpoint ckpt = models::read_checkpoint(opts.checkpoint);
    if (opts.arch.empty()) opts.arch = ckpt.info.arch;
    if (opts.dataset.empty()) opts.dataset = ckpt.info.dataset;
    if (opts.dataset.empty()) usage_fail("info: {} names no dataset; pass --dataset", opts.checkpoint);
    return models::build_model(ckpt, opts.arch);
  }
  if (opts.arch.empty() || opts.dataset.empty()) usage_fail("info: needs --arch and --dataset, or --checkpoint");
  const DatasetShape& data = as_usage_error([&]() -> const DatasetShape& { return find_dataset_shape(opts.dataset); });
  const models::SkipInit counts_need_no_values;
  return as_usage_error([&] { return models::make_model(opts.arch, data.num_classes, data.channels); });
}

int run_info(InfoOptions opts) {
  const auto model = info_model(opts);
  const DatasetShape& data = find_dataset_shape(opts.dataset);
  opts.dataset = data.name;
  const Shape input = models::model_input_shape(opts.arch, data.channels, data.resolution);
  if (opts.buckets) {
    TPP_CHECK(opts.bucket_mb > 0, "info: --bucket-mb must be positive but is {}", opts.bucket_mb);
    const auto bucket_bytes = static_cast<int64_t>(opts.bucket_mb * (1 << 20));
    const models::ParameterArena arena = models::pack_parameters(*model);
    nlohmann::ordered_json out = {{"arch", opts.arch}, {"dataset", opts.dataset}};
    out.update(buckets_json(arena, models::plan_grad_buckets(arena, bucket_bytes), bucket_bytes));
    if (opts.json)
      fmt::print("{}\n", out.dump(2));
    else
      fmt::print("{} on {}: data-parallel gradients\n\n{}", opts.arch, opts.dataset, buckets_table(out));
    return 0;
  }
  const models::ModelSummary summary = models::summarize(*model, input);
  if (opts.json) {
    nlohmann::ordered_json out = {{"arch", opts.arch}, {"dataset", opts.dataset}, {"num_classes", data.num_classes}};
    out.update(models::summary_json(summary));
    fmt::print("{}\n", out.dump(2));
  } else {
    fmt::print("{} on {} ({} classes)\n\n{}", opts.arch, opts.dataset, data.num_classes,
               models::format_summary(summary));
  }
  return 0;
}

}  // namespace

CLI::App* add_info_command(CLI::App& app) {
  auto opts = std::make_shared<InfoOptions>();
  CLI::App* sub = app.add_subcommand("info", "Layers, parameter count and FLOPs of an architecture on a dataset");
  sub->footer("Examples:\n  tpp info --arch resnet56 --dataset cifar10\n  tpp info --checkpoint runs/prune/best.safetensors\n  tpp info --arch resnet56 --dataset cifar10 --buckets");
  sub->add_option("--arch", opts->arch, "Architecture: " + fmt::format("{}", fmt::join(models::known_archs(), ", ")));
  sub->add_option("--dataset", opts->dataset, "mnist, fashion-mnist, cifar10, cifar100 or imagenet");
  sub->add_option("--checkpoint", opts->checkpoint,
                  "A checkpoint (.safetensors) instead of --arch: its own widths, pruned or not");
  sub->add_flag("--json", opts->json, "Print JSON (layers[], params, params_with_bn, flops) instead of a table");
  sub->add_flag("--buckets", opts->buckets,
                "Data-parallel view: gradient bytes all-reduced per step and the bucket plan");
  sub->add_option("--bucket-mb", opts->bucket_mb, "Bucket size for --buckets, MiB")->capture_default_str()->check(positive_number());
  register_command(sub, [opts] { return run_info(*opts); });
  return sub;
}

}  // namespace tpp::apps
