// `tpp data --dataset D`: what a dataset holds: its splits, sample counts,
// image shape, label histograms and the training split's per-channel
// mean/std (pixels scaled to [0, 1]), as text or JSON.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "data/catalog.h"

namespace tpp::apps {

namespace {

struct DataCommandOptions {
  std::string dataset;
  std::string data_dir;
  bool json = false;
  bool coarse = false;
  int64_t stats_samples = 0;
};

struct SplitSummary {
  std::string name;
  int64_t samples = 0;
  std::optional<Shape> image_shape;
  std::vector<int64_t> histogram;
};

std::string shape_text(const std::optional<Shape>& shape) { return shape ? shape_str(*shape) : "varies"; }

// The class name shown beside a label: none where it is the label itself (MNIST).
std::string shown_name(const std::vector<std::string>& classes, size_t label) {
  const std::string name = label < classes.size() ? classes[label] : "?";
  return name == std::to_string(label) ? "" : name;
}

void print_text(const data::DatasetLocation& where, const data::Dataset& train, const std::vector<SplitSummary>& splits,
                const data::ChannelStats& stats) {
  const std::vector<std::string>& classes = train.info().class_names;
  fmt::print("dataset   {}\nlocation  {}\nclasses   {}\n\n", where.name, where.dir.string(), classes.size());
  fmt::print("{:<8} {:>9}  {}\n", "split", "samples", "image shape [C, H, W]");
  for (const SplitSummary& s : splits) fmt::print("{:<8} {:>9}  {}\n", s.name, s.samples, shape_text(s.image_shape));

  // The label histograms, one column per split.
  size_t labels = 0, name_width = 0;
  for (const SplitSummary& s : splits) labels = std::max(labels, s.histogram.size());
  for (size_t label = 0; label < labels; ++label) name_width = std::max(name_width, shown_name(classes, label).size());
  fmt::print("\n{:>5}  {:<{}}", "label", name_width ? "class" : "", name_width);
  for (const SplitSummary& s : splits) fmt::print(" {:>9}", s.name);
  fmt::print("\n");
  for (size_t label = 0; label < labels; ++label) {
    fmt::print("{:>5}  {:<{}}", label, shown_name(classes, label), name_width);
    for (const SplitSummary& s : splits) fmt::print(" {:>9}", label < s.histogram.size() ? s.histogram[label] : 0);
    fmt::print("\n");
  }

  fmt::print("\nper-channel statistics of {} ({} samples, pixels / 255):\n", splits.front().name, stats.samples);
  for (size_t c = 0; c < stats.mean.size(); ++c)
    fmt::print("  channel {}  mean {:.4f}  std {:.4f}\n", c, stats.mean[c], stats.std[c]);
}

void print_json(const data::DatasetLocation& where, const data::Dataset& train, const std::vector<SplitSummary>& splits,
                const data::ChannelStats& stats) {
  nlohmann::json out;
  out["dataset"] = where.name;
  out["location"] = where.dir.string();
  out["classes"] = train.info().class_names;
  out["splits"] = nlohmann::json::array();
  for (const SplitSummary& s : splits) {
    out["splits"].push_back({{"name", s.name},
                             {"samples", s.samples},
                             {"image_shape", s.image_shape ? nlohmann::json(*s.image_shape) : nlohmann::json()},
                             {"label_histogram", s.histogram}});
  }
  out["channel_stats"] = {
      {"split", splits.front().name}, {"samples", stats.samples}, {"mean", stats.mean}, {"std", stats.std}};
  fmt::print("{}\n", out.dump(2));
}

int run_data_command(const DataCommandOptions& opts) {
  const data::DataRoot root = data::resolve_data_root(opts.data_dir);
  const data::DatasetLocation where = data::locate_dataset(opts.dataset, root);
  const data::OpenOptions open_options{.cifar100_coarse = opts.coarse};
  std::vector<SplitSummary> splits;
  std::shared_ptr<data::Dataset> train;
  for (const std::string& split : where.splits) {
    std::shared_ptr<data::Dataset> dataset = data::open_dataset(where, split, open_options);
    splits.push_back({split, dataset->size(), dataset->image_shape(), data::label_histogram(*dataset)});
    if (!train) train = dataset;  // splits list "train" first
  }
  const data::ChannelStats stats = data::channel_stats(*train, opts.stats_samples);
  if (opts.json) {
    print_json(where, *train, splits, stats);
  } else {
    print_text(where, *train, splits, stats);
  }
  return 0;
}

}  // namespace

CLI::App* add_data_command(CLI::App& app) {
  auto opts = std::make_shared<DataCommandOptions>();
  CLI::App* sub = app.add_subcommand("data", "Describe a dataset: splits, sizes, label histogram, channel mean/std");
  sub->footer("Examples:\n  tpp data --dataset fashion-mnist\n  tpp data --dataset mnist --data-dir ~/data/mnist --json");
  sub->add_option("--dataset", opts->dataset, fmt::format("One of: {}", fmt::join(data::known_datasets(), ", ")))
      ->required();
  sub->add_option("--data-dir", opts->data_dir, kDataDirHelp);
  sub->add_flag("--json", opts->json, "Print JSON instead of text");
  sub->add_flag("--coarse", opts->coarse, "CIFAR-100: use the 20 coarse labels");
  sub->add_option("--stats-samples", opts->stats_samples,
                  "Compute the mean/std over the first N training samples (default: all)");
  register_command(sub, [opts] { return run_data_command(*opts); });
  return sub;
}

}  // namespace tpp::apps
