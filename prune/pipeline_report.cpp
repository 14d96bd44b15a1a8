#include "prune/pipeline_report.h"

#include <fmt/format.h>

#include "train/report.h"
#include "train/trainer.h"
#include "engine/build_info.h"
#include "engine/text.h"
#include "prune/jsv.h"

namespace tpp::prune {

namespace {

using Json = nlohmann::ordered_json;
using namespace tpp::train;  // the report's pieces (train/report.h) and the epoch log lines

bool is_phase(const Json& line, const char* phase) { return line.value("phase", "") == phase; }
bool is_iteration(const Json& line) { return line.contains("iteration"); }
bool is_epoch(const Json& line, const char* phase) { return is_phase(line, phase) && line.contains("epoch"); }

const Json* removal_line(const std::vector<Json>& log) {
  for (const Json& line : log)
    if (is_phase(line, "remove")) return &line;
  return nullptr;
}

std::vector<EpochStats> retrain_epochs(const std::vector<Json>& log) {
  std::vector<EpochStats> epochs;
  for (const Json& line : log)
    if (is_epoch(line, "retrain")) epochs.push_back(epoch_from_json(line));
  return epochs;
}

double number_or(const Json& j, const char* key, double fallback) {
  return j.contains(key) && j.at(key).is_number() ? j.at(key).get<double>() : fallback;
}

std::string percent(const Json& value) {
  return value.is_number() ? fmt::format("{:.2f}%", value.get<double>()) : std::string("-");
}

std::string jsv_text(const Json& jsv) {
  return jsv.is_object() ? prune::jsv_text(jsv.at("mean").get<double>()) : std::string("-");
}

}  // namespace

Json prune_summary_json(const std::vector<Json>& log, const PruneRunFacts& f) {
  Json out = {{"status", f.phase == "done" ? "finished" : "running"},
              {"method", f.method},
              {"arch", f.arch},
              {"dataset", f.dataset},
              {"base", f.base},
              {"stage_pr", f.stage_pr},
              {"skip_layers", f.skip_layers},
              {"phase", f.phase},
              {"input", f.input}};
  int64_t reg_iterations = 0;
  double lambda = 0, seconds = 0;
  for (const Json& line : log) {
    if (is_iteration(line)) reg_iterations = line.at("iteration").get<int64_t>() + 1, lambda = line.at("lambda");
    seconds += number_or(line, "seconds", 0);
  }
  if (reg_iterations > 0) out["regularization"] = {{"iterations_logged", reg_iterations}, {"lambda", lambda}};
  if (const Json* r = removal_line(log)) {
    out["removal"] = {{"test_acc_before", r->at("test_acc_before")}, {"test_acc_after", r->at("test_acc")},
                      {"jsv_after_pruning", r->at("jsv")},           {"dense", r->at("dense")},
                      {"pruned", r->at("pruned")},                   {"sparsity", r->at("sparsity")},
                      {"sparsity_with_bn", r->at("sparsity_with_bn")}, {"speedup", r->at("speedup")},
                      {"inference_images_per_s", r->at("inference_images_per_s")}};
  }
  const std::vector<EpochStats> epochs = retrain_epochs(log);
  Json retrain = {{"epochs", f.epochs}, {"epochs_done", static_cast<int64_t>(epochs.size())}};
  if (!epochs.empty()) {
    const auto best = std::max_element(epochs.begin(), epochs.end(),
                                       [](const EpochStats& a, const EpochStats& b) { return a.test_acc < b.test_acc; });
    retrain["best_test_acc"] = best->test_acc;
    retrain["best_epoch"] = best->epoch;
    retrain["final_test_acc"] = epochs.back().test_acc;
  }
  Json jsv_curve = Json::array();
  for (const Json& line : log)
    if (is_epoch(line, "retrain") && line.at("jsv").is_object()) jsv_curve.push_back(line.at("jsv").at("mean"));
  retrain["jsv_mean_per_epoch"] = jsv_curve;
  out["retrain"] = retrain;
  out["seconds"] = seconds;
  out["run_dir"] = f.run_dir;
  out["engine_version"] = TPP_VERSION;
  return out;
}

std::string prune_report_html(const Json& summary, const std::vector<Json>& log, const std::string& config_toml) {
  ChartSeries ce{"cross-entropy", "#1f77b4", {}}, gram{"alpha*lambda*gram", "#d62728", {}},
      l2{"L2 (pruned)", "#2ca02c", {}}, bn{"BN (pruned)", "#9467bd", {}};
  ChartSeries lambda{"lambda", "#ff7f0e", {}};
  ChartSeries kept{"kept filters", "#1f77b4", {}}, pruned{"pruned filters", "#d62728", {}};
  for (const Json& line : log) {
    if (!is_iteration(line)) continue;
    const auto t = static_cast<double>(line.at("iteration").get<int64_t>());
    ce.points.emplace_back(t, line.at("ce").get<double>());
    gram.points.emplace_back(t, line.at("gram_term").get<double>());
    l2.points.emplace_back(t, line.at("l2").get<double>());
    bn.points.emplace_back(t, line.at("bn").get<double>());
    lambda.points.emplace_back(t, line.at("lambda").get<double>());
    kept.points.emplace_back(t, line.at("kept_norm").get<double>());
    pruned.points.emplace_back(t, line.at("pruned_norm").get<double>());
  }
  std::vector<std::string> charts;
  if (!ce.points.empty()) {
    // The cross-entropy stays near 1 while the penalties span decades: two charts, the penalties on a log axis.
    charts.push_back(svg_line_chart({ce}, {.title = "Regularised phase: cross-entropy",
                                           .x_label = "iteration",
                                           .y_label = "cross-entropy"}));
    charts.push_back(svg_line_chart({gram, l2, bn}, {.title = "Regularised phase: penalty terms",
                                                     .x_label = "iteration",
                                                     .y_label = "penalty",
                                                     .y_scale = ChartOptions::Scale::log}));
    charts.push_back(svg_line_chart({lambda}, {.title = "Penalty coefficient", .x_label = "iteration",
                                               .y_label = "lambda"}));
    charts.push_back(svg_line_chart({kept, pruned}, {.title = "Mean filter L2 norm (pruned layers)",
                                                     .x_label = "iteration",
                                                     .y_label = "norm"}));
  }
  ChartSeries acc{"test accuracy", "#d62728", {}}, jsv{"mean JSV", "#1f77b4", {}};
  const Json* removal = removal_line(log);
  if (removal) {
    acc.points.emplace_back(0, removal->at("test_acc").get<double>());
    if (removal->at("jsv").is_object()) jsv.points.emplace_back(0, removal->at("jsv").at("mean").get<double>());
  }
  std::vector<std::vector<std::string>> rows;
  for (const Json& line : log) {
    if (!is_epoch(line, "retrain")) continue;
    const auto e = static_cast<double>(line.at("epoch").get<int64_t>());
    acc.points.emplace_back(e, line.at("test_acc").get<double>());
    if (line.at("jsv").is_object()) jsv.points.emplace_back(e, line.at("jsv").at("mean").get<double>());
    const EpochStats s = epoch_from_json(line);
    rows.push_back({std::to_string(s.epoch), fmt::format("{:.4f}", s.train_loss), fmt::format("{:.2f}%", s.train_acc),
                    fmt::format("{:.4f}", s.test_loss), fmt::format("{:.2f}%", s.test_acc), fmt::format("{:g}", s.lr),
                    jsv_text(line.at("jsv")), fmt::format("{:.1f}", s.seconds)});
  }
  charts.push_back(svg_line_chart({acc}, {.title = "Retraining: test accuracy (0 = right after pruning)",
                                          .x_label = "epoch",
                                          .y_label = "accuracy (%)"}));
  charts.push_back(svg_line_chart({jsv}, {.title = "Mean Jacobian singular value (0 = right after pruning)",
                                          .x_label = "epoch",
                                          .y_label = "mean JSV"}));

  std::vector<std::pair<std::string, std::string>> sections;
  if (removal) {
    const Json& d = removal->at("dense");
    const Json& p = removal->at("pruned");
    const Json& speed = removal->at("inference_images_per_s");
    const auto count = [](const Json& j) { return with_commas(j.get<int64_t>()); };
    sections.emplace_back(
        "Dense and pruned",
        html_table({"", "dense", "pruned", ""},
                   {{"params", count(d.at("params")), count(p.at("params")),
                     fmt::format("sparsity {:.2f}%", 100 * removal->at("sparsity").get<double>())},
                    {"params with BN", count(d.at("params_with_bn")), count(p.at("params_with_bn")),
                     fmt::format("sparsity {:.2f}%", 100 * removal->at("sparsity_with_bn").get<double>())},
                    {"FLOPs", count(d.at("flops")), count(p.at("flops")),
                     fmt::format("speedup {:.2f}x", removal->at("speedup").get<double>())},
                    {"test accuracy", percent(removal->at("test_acc_before")), percent(removal->at("test_acc")),
                     "before / right after removal"},
                    {"inference img/s", with_commas(std::llround(speed.at("dense").get<double>())),
                     with_commas(std::llround(speed.at("pruned").get<double>())),
                     fmt::format("measured {:.2f}x, batch {}",
                                 speed.at("pruned").get<double>() / speed.at("dense").get<double>(),
                                 speed.at("batch").get<int64_t>())}}));
  }
  if (!rows.empty())
    sections.emplace_back("Retraining", html_table({"epoch", "train loss", "train acc", "test loss", "test acc", "lr",
                                                     "mean JSV", "seconds"},
                                                    rows));
  const Json& retrain = summary.at("retrain");
  std::vector<std::pair<std::string, std::string>> facts = {
      {"status", fmt::format("{} (phase {})", summary.at("status").get<std::string>(),
                             summary.at("phase").get<std::string>())},
      {"stage-pr", summary.at("stage_pr").get<std::string>()},
      {"base", summary.at("base").get<std::string>()},
      {"best retrained accuracy", retrain.contains("best_test_acc")
                                      ? fmt::format("{} (epoch {})", percent(retrain.at("best_test_acc")),
                                                    retrain.at("best_epoch").get<int64_t>())
                                      : "-"},
      {"engine", summary.at("engine_version").get<std::string>()}};
  if (summary.contains("error")) facts.insert(facts.begin() + 1, {"error", summary.at("error").get<std::string>()});
  for (const Json& line : log) {
    if (!is_phase(line, "resume")) continue;
    std::string changes;
    for (const Json& c : line.at("changes")) changes += (changes.empty() ? "" : "; ") + c.get<std::string>();
    facts.emplace_back("changed on resume", fmt::format("in phase {}: {}", line.at("resumed_in").get<std::string>(), changes));
  }
  return html_page({.title = fmt::format("{} pruning of {} on {}", summary.at("method").get<std::string>(),
                                         summary.at("arch").get<std::string>(), summary.at("dataset").get<std::string>()),
                    .facts = facts,
                    .charts = charts,
                    .sections = sections,
                    .config_toml = config_toml});
}

void print_prune_outcome(const std::vector<Json>& log, const std::string& run_dir) {
  const Json* removal = removal_line(log);
  const std::vector<EpochStats> epochs = retrain_epochs(log);
  if (removal)
    fmt::print("prune: right after removal {:.2f}% (before {:.2f}%), mean JSV {}\n",
               removal->at("test_acc").get<double>(), removal->at("test_acc_before").get<double>(),
               jsv_text(removal->at("jsv")));
  if (!epochs.empty()) {
    const auto best = std::max_element(epochs.begin(), epochs.end(),
                                       [](const EpochStats& a, const EpochStats& b) { return a.test_acc < b.test_acc; });
    fmt::print("prune: retrained {}: final {:.2f}%, best {:.2f}% (epoch {})\n",
               counted(static_cast<int64_t>(epochs.size()), "epoch"),
               epochs.back().test_acc, best->test_acc, best->epoch);
  }
  fmt::print("prune: run directory {} (report.html, summary.json, log.jsonl, pruned/last/best.safetensors)\n", run_dir);
}

}  // namespace tpp::prune
