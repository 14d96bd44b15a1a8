// `tpp compare RUN_DIR... [--out FILE.html] [--jsv-batches N] [--speed-batch B]`:
// dense and pruned runs side by side. For each run directory (`tpp train`
// or `tpp prune`): its best test accuracy, parameters and FLOPs (from its
// summary.json), the mean Jacobian singular value (right after pruning for
// pruning runs, from their log; of the trained model for dense runs,
// computed here as the pipeline computes it), and the inference speed of
// its final model measured here, in this one process, on the same batch
// size for every run: a fair side-by-side.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "train/report.h"
#include "train/run_data.h"
#include "train/run_dir.h"
#include "train/trainer.h"
#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/philox.h"
#include "models/checkpoint.h"
#include "models/summary.h"
#include "prune/jsv.h"

namespace tpp::apps {

using namespace tpp::train;  // the training floor (train/): run data, run directories, reports

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

struct CompareOptions {
  std::vector<std::string> runs;
  std::string out, data_dir;
  int64_t jsv_batches = 1, speed_batch = 256;
};

struct Row {
  std::string name, method;
  double accuracy = 0;
  int64_t params = 0, flops = 0;
  double jsv = 0, images_per_second = 0;
};

Json read_json(const fs::path& file) {
  std::ifstream in(file);
  TPP_CHECK(in.good(), "compare: {} is missing (not a finished run directory?)", file.string());
  const Json j = Json::parse(in, nullptr, false);
  TPP_CHECK(!j.is_discarded(), "compare: {} is not JSON", file.string());
  return j;
}

double dense_jsv(models::Module& model, const models::Checkpoint& ckpt, const CompareOptions& o) {
  if (prune::is_linear_chain(model)) return prune::model_jsv(model, {}, 0).mean;
  const RunData data = open_run_data({.arch = ckpt.info.arch},
                                     data::locate_dataset(ckpt.info.dataset, data::resolve_data_root(o.data_dir)),
                                     "compare");
  data::DataLoader loader(data.train, transforms_for(data, false), {.batch_size = 100});
  return prune::model_jsv(model, train::epoch_images(loader), o.jsv_batches).mean;
}

Row row_of(const fs::path& dir, const CompareOptions& o) {
  const Json summary = read_json(dir / "summary.json");
  Row row;
  row.name = dir.filename().string();
  const bool pruning = summary.contains("method");
  fs::path model_file = dir / "best.safetensors";
  if (pruning) {
    row.method = summary.at("method").get<std::string>();
    const Json& removal = summary.at("removal");
    const Json& retrain = summary.at("retrain");
    row.accuracy = retrain.contains("best_test_acc") ? retrain.at("best_test_acc").get<double>()
                                                     : removal.at("test_acc_after").get<double>();
    row.params = removal.at("pruned").at("params").get<int64_t>();
    row.flops = removal.at("pruned").at("flops").get<int64_t>();
    row.jsv = removal.at("jsv_after_pruning").is_object() ? removal.at("jsv_after_pruning").at("mean").get<double>() : 0;
    if (!fs::exists(model_file)) model_file = dir / "pruned.safetensors";
  } else {
    row.method = "dense";
    row.accuracy = summary.at("best_test_acc").get<double>();
    row.params = summary.at("params").get<int64_t>();
    row.flops = summary.at("flops").get<int64_t>();
  }
  const models::Checkpoint ckpt = models::read_checkpoint(model_file);
  const auto model = models::build_model(ckpt);
  TPP_CHECK(summary.contains("input"), "compare: {} names no model input shape", (dir / "summary.json").string());
  const Shape sample = summary.at("input").get<Shape>();
  if (!pruning) row.jsv = dense_jsv(*model, ckpt, o);
  Shape batch = {o.speed_batch};
  batch.insert(batch.end(), sample.begin(), sample.end());
  row.images_per_second = inference_images_per_second(*model, randn(batch));  // never time on zeros
  return row;
}

int run_compare(const CompareOptions& o) {
  TPP_CHECK(!o.runs.empty(), "compare: give one or more run directories");
  std::vector<Row> rows;
  for (const std::string& run : o.runs) rows.push_back(row_of(run, o));
  const double base_speed = rows.front().images_per_second;
  std::string table =
      "| run | method | best test acc | params | FLOPs | mean JSV | inference img/s | measured speedup |\n"
      "|---|---|---|---|---|---|---|---|\n";
  std::vector<std::vector<std::string>> cells;
  for (const Row& r : rows) {
    std::vector<std::string> c = {r.name,
                                  r.method,
                                  fmt::format("{:.2f}%", r.accuracy),
                                  std::to_string(r.params),
                                  fmt::format("{:.3g} M", static_cast<double>(r.flops) / 1e6),
                                  fmt::format("{:.4g}", r.jsv),
                                  fmt::format("{:.0f}", r.images_per_second),
                                  fmt::format("{:.2f}x", r.images_per_second / base_speed)};
    table += "| " + fmt::format("{}", fmt::join(c, " | ")) + " |\n";
    cells.push_back(std::move(c));
  }
  fmt::print("{}\nmean JSV: right after pruning for pruning runs, of the trained model for dense runs; speed: eval "
             "forward, batch {}, this machine, measured now; speedup relative to the first run.\n",
             table, o.speed_batch);
  if (!o.out.empty()) {
    write_file_atomic(o.out, html_page({.title = "Dense and pruned, side by side",
                                        .facts = {{"runs", std::to_string(rows.size())},
                                                  {"speed", fmt::format("eval forward, batch {}", o.speed_batch)}},
                                        .charts = {},
                                        .sections = {{"Comparison", html_table({"run", "method", "best test acc",
                                                                                 "params", "FLOPs", "mean JSV",
                                                                                 "inference img/s", "measured speedup"},
                                                                                cells)}},
                                        .config_toml = fmt::format("{}", fmt::join(o.runs, "\n"))}));
    fmt::print("compare: {}\n", o.out);
  }
  return 0;
}

}  // namespace

CLI::App* add_compare_command(CLI::App& app) {
  auto o = std::make_shared<CompareOptions>();
  CLI::App* sub = app.add_subcommand("compare", "Dense and pruned runs side by side: accuracy, size, JSV, speed");
  sub->add_option("runs", o->runs, "Run directories of tpp train / tpp prune (the first is the speed reference)")
      ->required()
      ->check(CLI::ExistingDirectory);
  sub->add_option("--out", o->out, "Also write the table as an HTML page");
  sub->add_option("--data-dir", o->data_dir, "Data root (for the dense runs' JSV)");
  sub->add_option("--jsv-batches", o->jsv_batches, "Batches of 100 for a dense CNN's mean JSV")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_option("--speed-batch", o->speed_batch, "Batch size of the timed forward passes")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  register_command(sub, [o] { return run_compare(*o); });
  return sub;
}

}  // namespace tpp::apps
