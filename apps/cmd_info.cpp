// `tpp info --arch A --dataset D [--json]`: the per-layer table and the
// params / FLOPs totals of an architecture at a dataset's resolution, counted
// as the paper counts them (models/summary.h).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "apps/dataset_shapes.h"
#include "engine/error.h"
#include "models/layers.h"
#include "models/summary.h"
#include "models/zoo.h"

namespace tpp::apps {

namespace {

struct InfoOptions {
  std::string arch, dataset;
  bool json = false;
};

int run_info(const InfoOptions& opts) {
  const DatasetShape& data = find_dataset_shape(opts.dataset);
  const auto model = [&] {
    const models::SkipInit counts_need_no_values;
    return models::make_model(opts.arch, data.num_classes, data.channels);
  }();
  const Shape input = models::model_input_shape(opts.arch, data.channels, data.resolution);
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
  sub->add_option("--arch", opts->arch, "Architecture: " + fmt::format("{}", fmt::join(models::known_archs(), ", ")))
      ->required();
  sub->add_option("--dataset", opts->dataset, "mnist, fashion-mnist, cifar10, cifar100 or imagenet")->required();
  sub->add_flag("--json", opts->json, "Print JSON (layers[], params, params_with_bn, flops) instead of a table");
  register_command(sub, [opts] { return run_info(*opts); });
  return sub;
}

}  // namespace tpp::apps
