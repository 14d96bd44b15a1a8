// `tpp compare RUN_DIR... [--out FILE.html] [--json] [--speed-batch B]
// [--speed-rounds N] [--jsv-batches N]`: dense and pruned runs side by side.
// For each run directory (`tpp train` or `tpp prune`): its status, best
// test accuracy, parameters and FLOPs (from its summary.json), the mean
// Jacobian singular value (right after pruning for pruning runs, from their
// log; of the trained model for dense runs, computed here as the pipeline
// computes it), and the inference speed of its final model measured here,
// in this one process: every model timed in turn over several rounds, on
// the batch size the prune reports used, the median and the spread shown.
//
// A run that failed, was interrupted, is still running or was killed (a
// prune run killed before its first summary.json) is a row with its status
// and whatever it has; a figure it lacks is "-", never an error.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "apps/commands.h"
#include "apps/usage.h"
#include "train/report.h"
#include "train/run_data.h"
#include "train/run_dir.h"
#include "train/trainer.h"
#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/philox.h"
#include "engine/text.h"
#include "models/checkpoint.h"
#include "prune/jsv.h"

namespace tpp::apps {

using namespace tpp::train;  // the training floor (train/): run data, run directories, reports

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

constexpr int64_t kDefaultSpeedBatch = 256;

struct CompareOptions {
  std::vector<std::string> runs;
  std::string out, data_dir;
  int64_t jsv_batches = 1, speed_batch = 0, speed_rounds = 7;
  bool json = false;
  // A failed run's error as its command would have said it (the summary keeps
  // the library's words: `on_nan` for --on-nan); true: a prune run.
  std::function<std::string(std::string_view, bool)> in_command_words;
};

struct Speed {
  double median = 0, low = 0, high = 0;  // images per second over the rounds
};

struct Row {
  std::string name, status, method, arch, dataset;
  std::optional<double> accuracy, jsv;
  std::optional<int64_t> params, flops;
  std::optional<Speed> speed;
  std::vector<std::string> notes;  // why a figure is missing
  // For the speed rounds: the final model and one sample's shape.
  std::shared_ptr<models::Module> model;
  Shape sample;
};

std::optional<Json> read_json_file(const fs::path& file) {
  std::ifstream in(file);
  if (!in.good()) return std::nullopt;
  Json j = Json::parse(in, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

// The value at a path of keys when it is a number (a NaN is written as null).
std::optional<double> number_at(const Json& j, std::initializer_list<const char*> keys) {
  const Json* at = &j;
  for (const char* key : keys) {
    if (!at->is_object() || !at->contains(key)) return std::nullopt;
    at = &at->at(key);
  }
  if (!at->is_number()) return std::nullopt;
  return at->get<double>();
}

std::optional<int64_t> integer_at(const Json& j, std::initializer_list<const char*> keys) {
  const std::optional<double> value = number_at(j, keys);
  return value ? std::optional<int64_t>(static_cast<int64_t>(*value)) : std::nullopt;
}

std::string text_at(const Json& j, const char* key, const std::string& fallback = "") {
  return j.is_object() && j.contains(key) && j.at(key).is_string() ? j.at(key).get<std::string>() : fallback;
}

bool process_alive(int64_t pid) { return pid > 0 && (kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM); }

// "running" in summary.json is only true while its process lives.
std::string run_status(const Json& summary) {
  const std::string status = text_at(summary, "status", "unknown");
  if (status != "running") return status;
  const std::optional<int64_t> pid = integer_at(summary, {"pid"});
  if (pid && !process_alive(*pid)) return "killed";
  return status;
}

// A key = "value" line of config.toml, for runs without a summary.
std::string config_value(const fs::path& config, const std::string& key) {
  std::ifstream in(config);
  std::string line;
  while (std::getline(in, line)) {
    const size_t equals = line.find('=');
    if (equals == std::string::npos || line.substr(0, line.find_first_of(" =")) != key) continue;
    std::string value = line.substr(equals + 1);
    value.erase(0, value.find_first_not_of(" \""));
    value.erase(value.find_last_not_of(" \"") + 1);
    return value;
  }
  return "";
}

double dense_jsv(models::Module& model, const models::Checkpoint& ckpt, const CompareOptions& o) {
  if (prune::is_linear_chain(model)) return prune::model_jsv(model, {}, 0).mean;
  const RunData data = open_run_data({.arch = ckpt.info.arch},
                                     data::locate_dataset(ckpt.info.dataset, data::resolve_data_root(o.data_dir)),
                                     "compare");
  data::DataLoader loader(data.train, transforms_for(data, false), {.batch_size = 100});
  return prune::model_jsv(model, train::epoch_images(loader), o.jsv_batches).mean;
}

void read_pruning_figures(const Json& summary, Row& row) {
  row.method = text_at(summary, "method", "?");
  row.accuracy = number_at(summary, {"retrain", "best_test_acc"});
  if (!row.accuracy) row.accuracy = number_at(summary, {"removal", "test_acc_after"});
  row.params = integer_at(summary, {"removal", "pruned", "params"});
  row.flops = integer_at(summary, {"removal", "pruned", "flops"});
  row.jsv = number_at(summary, {"removal", "jsv_after_pruning", "mean"});
}

void read_dense_figures(const Json& summary, Row& row) {
  row.method = "dense";
  row.accuracy = number_at(summary, {"best_test_acc"});
  row.params = integer_at(summary, {"params"});
  row.flops = integer_at(summary, {"flops"});
}

// The final model: the best weights, else the pruned ones, else the last.
std::optional<fs::path> model_file(const fs::path& dir) {
  for (const char* name : {"best.safetensors", "pruned.safetensors", "last.safetensors"})
    if (fs::exists(dir / name)) return dir / name;
  return std::nullopt;
}

void load_model(const fs::path& dir, const Json& summary, const CompareOptions& o, Row& row) {
  const std::optional<fs::path> file = model_file(dir);
  if (!file) {
    row.notes.push_back("no checkpoint yet");
    return;
  }
  try {
    const models::Checkpoint ckpt = models::read_checkpoint(*file);
    row.model = models::build_model(ckpt);
    if (summary.contains("input") && summary.at("input").is_array()) row.sample = summary.at("input").get<Shape>();
    if (row.method == "dense") row.jsv = dense_jsv(*row.model, ckpt, o);
  } catch (const std::exception& e) {
    row.notes.push_back(e.what());
  }
}

Row row_of(const fs::path& dir, const CompareOptions& o) {
  Row row;
  row.name = dir.filename().empty() ? dir.parent_path().filename().string() : dir.filename().string();
  const std::optional<Json> summary = read_json_file(dir / "summary.json");
  if (!summary) {
    if (!fs::exists(dir / "config.toml")) usage_fail("compare: {} is not a run directory (no summary.json or config.toml)", dir.string());
    row.status = fs::exists(dir / "summary.json") ? "unreadable summary" : "killed";
    row.method = config_value(dir / "config.toml", "method");
    if (row.method.empty()) row.method = "dense";
    row.arch = config_value(dir / "config.toml", "arch");
    row.dataset = config_value(dir / "config.toml", "dataset");
    row.notes.push_back("no summary.json (stopped before its first checkpoint)");
    return row;
  }
  row.status = run_status(*summary);
  row.arch = text_at(*summary, "arch");
  row.dataset = text_at(*summary, "dataset");
  if (summary->contains("method"))
    read_pruning_figures(*summary, row);
  else
    read_dense_figures(*summary, row);
  if (const std::string error = text_at(*summary, "error"); !error.empty())
    row.notes.push_back(o.in_command_words ? o.in_command_words(error, summary->contains("method")) : error);
  load_model(dir, *summary, o, row);
  return row;
}

// The batch of the first prune run's speed figure, so that ours match its report.
int64_t speed_batch(const CompareOptions& o) {
  if (o.speed_batch > 0) return o.speed_batch;
  for (const std::string& run : o.runs)
    if (const std::optional<Json> summary = read_json_file(fs::path(run) / "summary.json"))
      if (const std::optional<int64_t> batch = integer_at(*summary, {"removal", "inference_images_per_s", "batch"});
          batch && *batch > 0)
        return *batch;
  return kDefaultSpeedBatch;
}

double seconds_of_one_forward(models::Module& model, const Tensor& images) {
  const auto start = std::chrono::steady_clock::now();
  model(images);
  synchronize(model.device());
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Every model once per round, in turn, so that a slow moment of the machine
// falls on all of them alike; the median round and the spread.
void time_models(std::vector<Row>& rows, int64_t batch, int64_t rounds) {
  const NoGradGuard no_grad;
  std::map<size_t, Tensor> inputs;
  std::map<size_t, std::vector<double>> speeds;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (!rows[i].model || rows[i].sample.empty()) continue;
    Shape shape = {batch};
    shape.insert(shape.end(), rows[i].sample.begin(), rows[i].sample.end());
    rows[i].model->eval();
    inputs[i] = randn(shape).to(rows[i].model->device());  // never time on zeros
    seconds_of_one_forward(*rows[i].model, inputs[i]);     // warm-up
  }
  for (int64_t round = 0; round < rounds; ++round)
    for (auto& [i, images] : inputs)
      speeds[i].push_back(static_cast<double>(batch) / seconds_of_one_forward(*rows[i].model, images));
  for (auto& [i, values] : speeds) {
    std::sort(values.begin(), values.end());
    rows[i].speed = Speed{values[values.size() / 2], values.front(), values.back()};
  }
}

std::string or_dash(const std::optional<double>& v, const std::string& format) {
  return v ? fmt::format(fmt::runtime(format), *v) : std::string("-");
}

struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> cells;
};

Table table_of(const std::vector<Row>& rows) {
  const Row* reference = nullptr;
  for (const Row& r : rows)
    if (r.speed && !reference) reference = &r;
  Table t{{"run", "status", "method", "arch", "best test acc", "params", "FLOPs", "mean JSV", "inference img/s",
           "spread", "speedup"},
          {}};
  for (const Row& r : rows) {
    t.cells.push_back({r.name, r.status, r.method, r.arch.empty() ? "-" : r.arch, or_dash(r.accuracy, "{:.2f}%"),
                       r.params ? with_commas(*r.params) : "-",
                       r.flops ? fmt::format("{:.3g} M", static_cast<double>(*r.flops) / 1e6) : "-",
                       r.jsv ? prune::jsv_text(*r.jsv) : "-",
                       r.speed ? with_commas(static_cast<int64_t>(r.speed->median)) : "-",
                       r.speed ? fmt::format("{}-{}", with_commas(static_cast<int64_t>(r.speed->low)),
                                             with_commas(static_cast<int64_t>(r.speed->high)))
                               : "-",
                       r.speed && reference ? fmt::format("{:.2f}x", r.speed->median / reference->speed->median)
                                            : "-"});
  }
  return t;
}

std::string text_table(const Table& t) {
  std::vector<size_t> widths(t.header.size());
  for (size_t c = 0; c < t.header.size(); ++c) {
    widths[c] = t.header[c].size();
    for (const auto& row : t.cells) widths[c] = std::max(widths[c], row[c].size());
  }
  const auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t c = 0; c < cells.size(); ++c)
      out += c < 4 ? fmt::format("{:<{}}  ", cells[c], widths[c]) : fmt::format("{:>{}}  ", cells[c], widths[c]);
    out.erase(out.find_last_not_of(' ') + 1);
    return out + "\n";
  };
  std::string out = line(t.header);
  for (const auto& row : t.cells) out += line(row);
  return out;
}

Json json_of(const std::vector<Row>& rows, int64_t batch, int64_t rounds) {
  Json list = Json::array();
  const auto optional = [](const auto& v) { return v ? Json(*v) : Json(); };
  for (const Row& r : rows) {
    Json speed;
    if (r.speed) speed = {{"median", r.speed->median}, {"min", r.speed->low}, {"max", r.speed->high}};
    list.push_back({{"run", r.name},
                    {"status", r.status},
                    {"method", r.method},
                    {"arch", r.arch},
                    {"dataset", r.dataset},
                    {"best_test_acc", optional(r.accuracy)},
                    {"params", optional(r.params)},
                    {"flops", optional(r.flops)},
                    {"mean_jsv", optional(r.jsv)},
                    {"inference_images_per_s", speed},
                    {"notes", r.notes}});
  }
  return {{"speed", {{"batch", batch}, {"rounds", rounds}}}, {"runs", list}};
}

// A warning when the runs are of different models or data: their speedups
// and accuracies do not compare.
std::optional<std::string> mixed_warning(const std::vector<Row>& rows) {
  std::set<std::string> archs, datasets;
  for (const Row& r : rows) {
    if (!r.arch.empty()) archs.insert(r.arch);
    if (!r.dataset.empty()) datasets.insert(r.dataset);
  }
  if (archs.size() > 1)
    return fmt::format("the runs are of different architectures ({}): their speed and size do not compare",
                       fmt::join(archs, ", "));
  if (datasets.size() > 1)
    return fmt::format("the runs are on different datasets ({}): their accuracies do not compare",
                       fmt::join(datasets, ", "));
  return std::nullopt;
}

// Accuracy against FLOPs and against speed, one point per run with a label.
std::vector<std::string> compare_charts(const std::vector<Row>& rows) {
  static const std::vector<std::string> colors = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                                                  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  std::vector<ChartSeries> by_flops, by_speed;
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    if (!r.accuracy) continue;
    const std::string& color = colors[i % colors.size()];
    if (r.flops) by_flops.push_back({r.name, color, {{static_cast<double>(*r.flops) / 1e6, *r.accuracy}}});
    if (r.speed) by_speed.push_back({r.name, color, {{r.speed->median, *r.accuracy}}});
  }
  return {svg_scatter_chart(by_flops, {.title = "Accuracy and FLOPs", .x_label = "FLOPs per image (millions)",
                                       .y_label = "best test accuracy (%)"}),
          svg_scatter_chart(by_speed, {.title = "Accuracy and measured speed", .x_label = "inference images per second",
                                       .y_label = "best test accuracy (%)"})};
}

int run_compare(const CompareOptions& o) {
  if (o.runs.empty()) usage_fail("compare: give one or more run directories");
  std::vector<Row> rows;
  for (const std::string& run : o.runs) rows.push_back(row_of(run, o));
  const int64_t batch = speed_batch(o);
  time_models(rows, batch, o.speed_rounds);
  const std::optional<std::string> warning = mixed_warning(rows);
  if (warning) fmt::print(stderr, "compare: warning: {}\n", *warning);

  const Table table = table_of(rows);
  if (o.json) {
    fmt::print("{}\n", json_of(rows, batch, o.speed_rounds).dump(2));
  } else {
    fmt::print("{}", text_table(table));
    for (const Row& r : rows)
      for (const std::string& note : r.notes) fmt::print("{}: {}\n", r.name, note);
    fmt::print("\nmean JSV: right after pruning for pruning runs, of the trained model for dense runs. Speed: eval "
               "forward at batch {}, median and range of {} on this machine, measured now; speedup relative to the "
               "first run timed.\n",
               batch, counted(o.speed_rounds, "round"));
  }
  if (!o.out.empty()) {
    std::vector<std::pair<std::string, std::string>> facts = {
        {"runs", std::to_string(rows.size())},
        {"speed", fmt::format("eval forward, batch {}, median of {}", batch, counted(o.speed_rounds, "round"))}};
    if (warning) facts.emplace_back("warning", *warning);
    std::vector<std::vector<std::string>> places;
    for (size_t i = 0; i < rows.size(); ++i) places.push_back({rows[i].name, fs::absolute(o.runs[i]).string()});
    write_file_atomic(o.out, html_page({.title = "Dense and pruned, side by side",
                                        .facts = facts,
                                        .charts = compare_charts(rows),
                                        .sections = {{"Comparison", html_table(table.header, table.cells)},
                                                     {"Run directories", html_table({"run", "directory"}, places)}},
                                        .config_toml = ""}));
    if (!o.json) fmt::print("compare: {}\n", o.out);
  }
  return 0;
}

}  // namespace

CLI::App* add_compare_command(CLI::App& app) {
  auto o = std::make_shared<CompareOptions>();
  CLI::App* sub = app.add_subcommand("compare", "Dense and pruned runs side by side: accuracy, size, JSV, speed");
  sub->footer(
      "Examples:\n"
      "  tpp compare runs/vgg_small runs/prune\n"
      "  tpp compare runs/vgg_small runs/prune-l1 runs/prune-tpp --out compare.html\n"
      "  tpp compare runs/vgg_small runs/prune --json");
  sub->add_option("runs", o->runs, "Run directories of tpp train / tpp prune (the first timed is the speed reference)")
      ->required()
      ->check(CLI::ExistingDirectory);
  sub->add_option("--out", o->out, "Also write the table and charts as an HTML page");
  sub->add_flag("--json", o->json, "Print JSON (runs[]: status, figures, speed median/min/max) instead of a table");
  sub->add_option("--data-dir", o->data_dir, "Data root (for the dense runs' JSV)");
  sub->add_option("--jsv-batches", o->jsv_batches, "Batches of 100 for a dense CNN's mean JSV")
      ->capture_default_str()
      ->check(positive_integer());
  sub->add_option("--speed-batch", o->speed_batch,
                  "Batch size of the timed forward passes (default: the prune runs' own, else 256)")
      ->check(positive_integer());
  sub->add_option("--speed-rounds", o->speed_rounds, "Timed forward passes per model (median and range shown)")
      ->capture_default_str()
      ->check(positive_integer());
  o->in_command_words = [&app](std::string_view message, bool pruning) {
    const CLI::App* command = app.get_subcommand(pruning ? "prune" : "train");
    return with_flag_names(message, *command);
  };
  register_command(sub, [o] { return run_compare(*o); });
  return sub;
}

}  // namespace tpp::apps
