// `tpp repro mlp7-mnist [--seeds N]`: the paper's Fig. 3 in one command, on
// CPU. For each seed: dense MLP-7-Linear training on MNIST (the paper's
// recipe), then L1, L1 + OrthP and TPP at one pruning ratio on the hidden
// layers, each retrained at LR 1e-2 and at LR 1e-3. Every step is an
// ordinary `tpp train` / `tpp prune` run directory under --out, run by this
// same program; a step already finished is skipped and an interrupted one is
// resumed, so rerunning the command after a kill goes on where it stopped.
// The outcome: repro.md (the table next to the paper's), summary.json and
// report.html (JSV and accuracy over the first 10 retraining epochs).
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "train/report.h"
#include "train/run_dir.h"
#include "engine/error.h"
#include "models/checkpoint.h"
#include "prune/jsv.h"

namespace tpp::apps {

using namespace tpp::train;  // the training floor (train/): run data, run directories, reports

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

struct ReproConfig {
  std::string experiment, data_dir, out = "runs/repro-mlp7-mnist";
  int seeds = 1;
  double pr = 0.8;
  int64_t dense_epochs = 90, epochs = 90, limit = 0, test_limit = 0;
  // TPP's schedule (TPP-METHOD §8.2); shortened only for tests.
  double reg_granularity = 1e-4;
  int64_t reg_interval = 10, stabilize_iters = 10000, zero_out_interval = 100;
  int workers = 2;
};

struct Variant {
  std::string method;
  const char* label;
  double paper_lr2, paper_lr3, paper_jsv;  // PAPER-RESULTS.md, Fig. 3
};

const std::vector<Variant>& variants() {
  static const std::vector<Variant> v = {{"l1", "L1", 91.36, 90.54, 0.0040},
                                         {"l1+orthp", "L1 + OrthP", 92.79, 92.77, 1.0000},
                                         {"tpp", "TPP", 92.82, 92.77, 3.4875}};
  return v;
}

const std::vector<double>& retrain_lrs() {
  static const std::vector<double> lrs = {1e-2, 1e-3};
  return lrs;
}

// The paper's step schedule (×0.1 at epochs 30 and 60), from `lr`.
std::string step_schedule(double lr) { return fmt::format("0:{:g},30:{:g},60:{:g}", lr, lr / 10, lr / 100); }

std::string self_path() { return fs::read_symlink("/proc/self/exe").string(); }

// Runs this program with `args`; the step's output goes to stdout as it comes.
void run_step(const std::string& name, const std::vector<std::string>& args) {
  std::vector<char*> argv;
  const std::string program = self_path();
  argv.push_back(const_cast<char*>(program.c_str()));
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::fflush(stdout);
  const pid_t pid = ::fork();
  TPP_CHECK(pid >= 0, "repro: cannot start step '{}' (fork failed)", name);
  if (pid == 0) {
    ::execv(program.c_str(), argv.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  TPP_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "repro: step '{}' failed ({}); rerun the same command to continue from its last checkpoint", name,
            WIFEXITED(status) ? fmt::format("exit {}", WEXITSTATUS(status)) : std::string("killed"));
}

Json read_json(const fs::path& file) {
  std::ifstream in(file);
  TPP_CHECK(in.good(), "repro: cannot read {}", file.string());
  return Json::parse(in);
}

bool finished(const fs::path& dir) {
  return fs::exists(dir / "summary.json") && read_json(dir / "summary.json").value("status", "") == "finished";
}

// The step's arguments with the run directory: fresh, resumed or skipped.
void run_in(const std::string& command, const fs::path& dir, const std::vector<std::string>& args) {
  if (finished(dir)) {
    fmt::print("repro: {} is done, skipped\n", dir.string());
    return;
  }
  std::vector<std::string> argv = {command};
  if (fs::exists(dir / "last.safetensors") && fs::exists(dir / "config.toml")) {
    argv.insert(argv.end(), {"--resume", dir.string()});
  } else {
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--out", dir.string(), "--overwrite"});
  }
  run_step(dir.string(), argv);
}

std::vector<std::string> data_args(const ReproConfig& c) {
  std::vector<std::string> a = {"--dataset", "mnist", "--workers", std::to_string(c.workers)};
  if (!c.data_dir.empty()) a.insert(a.end(), {"--data-dir", c.data_dir});
  if (c.limit > 0) a.insert(a.end(), {"--limit", std::to_string(c.limit)});
  if (c.test_limit > 0) a.insert(a.end(), {"--test-limit", std::to_string(c.test_limit)});
  return a;
}

fs::path prune_dir(const ReproConfig& c, int seed, const Variant& v, double lr) {
  return fs::path(c.out) / fmt::format("seed{}", seed) / fmt::format("{}-lr{:g}", v.method, lr);
}

void run_seed(const ReproConfig& c, int seed) {
  const fs::path dense = fs::path(c.out) / fmt::format("seed{}", seed) / "dense";
  std::vector<std::string> train = {"--arch", "mlp7_linear", "--epochs", std::to_string(c.dense_epochs),
                                    "--batch-size", "100", "--lr-schedule", step_schedule(1e-2),
                                    "--momentum", "0.9", "--weight-decay", "0.0001", "--seed", std::to_string(seed)};
  const std::vector<std::string> data = data_args(c);
  train.insert(train.end(), data.begin(), data.end());
  run_in("train", dense, train);
  for (const Variant& v : variants())
    for (const double lr : retrain_lrs()) {
      std::vector<std::string> prune = {
          "--method", v.method, "--base", (dense / "last.safetensors").string(), "--stage-pr",
          fmt::format("net.*:{:g}", c.pr), "--skip-layers", "net.12", "--epochs", std::to_string(c.epochs),
          "--batch-size", "100", "--lr-schedule", step_schedule(lr), "--momentum", "0.9", "--weight-decay", "0.0001",
          "--seed", std::to_string(seed), "--reg-lr", "0.001", "--reg-granularity", fmt::format("{:g}", c.reg_granularity),
          "--reg-interval", std::to_string(c.reg_interval), "--stabilize-iters", std::to_string(c.stabilize_iters),
          "--zero-out-interval", std::to_string(c.zero_out_interval), "--log-interval", "1000",
          "--checkpoint-interval", "10000"};
      prune.insert(prune.end(), data.begin(), data.end());
      run_in("prune", prune_dir(c, seed, v, lr), prune);
    }
}

struct Cell {
  std::vector<double> values;
  void add(double v) { values.push_back(v); }
  double mean() const {
    double s = 0;
    for (const double v : values) s += v;
    return s / static_cast<double>(values.size());
  }
  double std() const {
    const double m = mean();
    double s = 0;
    for (const double v : values) s += (v - m) * (v - m);
    return values.size() > 1 ? std::sqrt(s / static_cast<double>(values.size() - 1)) : 0.0;
  }
  std::string text(int decimals) const {
    if (values.empty()) return "-";
    return values.size() > 1 ? fmt::format("{:.{}f} ± {:.{}f}", mean(), decimals, std(), decimals)
                             : fmt::format("{:.{}f}", mean(), decimals);
  }
};

std::vector<Json> log_lines(const fs::path& dir) {
  std::vector<Json> lines;
  std::ifstream in(dir / "log.jsonl");
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(Json::parse(line));
  return lines;
}

// Epochs 0..10 of one retraining: 0 is right after pruning.
struct EarlyCurve {
  std::vector<std::pair<double, double>> jsv, acc;
};

EarlyCurve early_curve(const fs::path& dir) {
  EarlyCurve curve;
  for (const Json& line : log_lines(dir)) {
    const std::string phase = line.value("phase", "");
    if (phase == "remove") {
      curve.acc.emplace_back(0, line.at("test_acc").get<double>());
      curve.jsv.emplace_back(0, line.at("jsv").at("mean").get<double>());
    } else if (phase == "retrain" && line.contains("epoch") && line.at("epoch").get<int64_t>() <= 10) {
      const auto e = static_cast<double>(line.at("epoch").get<int64_t>());
      curve.acc.emplace_back(e, line.at("test_acc").get<double>());
      curve.jsv.emplace_back(e, line.at("jsv").at("mean").get<double>());
    }
  }
  return curve;
}

int run_repro(const ReproConfig& c) {
  TPP_CHECK(c.experiment == "mlp7-mnist", "repro: unknown experiment '{}'; known: mlp7-mnist", c.experiment);
  TPP_CHECK(c.seeds >= 1, "repro: --seeds must be at least 1, got {}", c.seeds);
  TPP_CHECK(c.pr > 0 && c.pr < 1, "repro: --pr must be in (0, 1), got {}", c.pr);
  fs::create_directories(c.out);
  for (int seed = 0; seed < c.seeds; ++seed) run_seed(c, seed);

  Cell dense_acc, dense_jsv;
  std::map<std::string, Cell> cells;  // "<method>/<lr>", "<method>/jsv"
  for (int seed = 0; seed < c.seeds; ++seed) {
    const fs::path dense = fs::path(c.out) / fmt::format("seed{}", seed) / "dense";
    dense_acc.add(read_json(dense / "summary.json").at("best_test_acc").get<double>());
    const auto model = models::build_model(models::read_checkpoint(dense / "last.safetensors"));
    dense_jsv.add(prune::linear_chain_jsv(*model).mean);
    for (const Variant& v : variants())
      for (const double lr : retrain_lrs()) {
        const Json s = read_json(prune_dir(c, seed, v, lr) / "summary.json");
        cells[fmt::format("{}/{:g}", v.method, lr)].add(s.at("retrain").at("best_test_acc").get<double>());
        if (lr == retrain_lrs()[0])
          cells[v.method + "/jsv"].add(s.at("removal").at("jsv_after_pruning").at("mean").get<double>());
      }
  }

  std::string table = fmt::format(
      "MLP-7-Linear on MNIST, PR {:g} on the six hidden layers, {} seed(s); best test accuracy (%) over {} retraining "
      "epochs and the mean JSV right after pruning. Dense: {}% best, mean JSV {}.\n\n"
      "| Method | LR 1e-2 | LR 1e-3 | mean JSV after pruning | paper LR 1e-2 | paper LR 1e-3 | paper JSV |\n"
      "|---|---|---|---|---|---|---|\n",
      c.pr, c.seeds, c.epochs, dense_acc.text(2), dense_jsv.text(4));
  Json results = Json::object();
  for (const Variant& v : variants()) {
    const Cell& a = cells[fmt::format("{}/{:g}", v.method, 1e-2)];
    const Cell& b = cells[fmt::format("{}/{:g}", v.method, 1e-3)];
    const Cell& j = cells[v.method + "/jsv"];
    table += fmt::format("| {} | {} | {} | {} | {:.2f} | {:.2f} | {:.4f} |\n", v.label, a.text(2), b.text(2), j.text(4),
                         v.paper_lr2, v.paper_lr3, v.paper_jsv);
    results[v.method] = {{"best_acc_lr1e-2", a.values}, {"best_acc_lr1e-3", b.values}, {"jsv_after_pruning", j.values}};
  }
  fmt::print("\n{}", table);

  std::vector<std::string> charts;
  const std::vector<std::string> colors = {"#d62728", "#2ca02c", "#1f77b4"};
  for (const double lr : retrain_lrs()) {
    std::vector<ChartSeries> jsv, acc;
    for (size_t i = 0; i < variants().size(); ++i) {
      const EarlyCurve curve = early_curve(prune_dir(c, 0, variants()[i], lr));
      jsv.push_back({variants()[i].label, colors[i], curve.jsv});
      acc.push_back({variants()[i].label, colors[i], curve.acc});
    }
    charts.push_back(svg_line_chart(jsv, {.title = fmt::format("Mean JSV, retraining LR {:g} (seed 0)", lr),
                                          .x_label = "epoch",
                                          .y_label = "mean JSV"}));
    charts.push_back(svg_line_chart(acc, {.title = fmt::format("Test accuracy, retraining LR {:g} (seed 0)", lr),
                                          .x_label = "epoch",
                                          .y_label = "accuracy (%)"}));
  }
  write_file_atomic(fs::path(c.out) / "repro.md", table);
  write_file_atomic(fs::path(c.out) / "summary.json",
                    Json{{"experiment", c.experiment},
                         {"pr", c.pr},
                         {"seeds", c.seeds},
                         {"dense", {{"best_acc", dense_acc.values}, {"jsv", dense_jsv.values}}},
                         {"methods", results}}
                            .dump(2));
  write_file_atomic(fs::path(c.out) / "report.html",
                    html_page({.title = "MLP-7-Linear on MNIST: the paper's Fig. 3",
                               .facts = {{"pruning ratio", fmt::format("{:g} on the six hidden layers", c.pr)},
                                         {"seeds", std::to_string(c.seeds)},
                                         {"dense best accuracy", dense_acc.text(2)},
                                         {"dense mean JSV", dense_jsv.text(4)}},
                               .charts = charts,
                               .sections = {{"Table", fmt::format("<pre>{}</pre>\n", html_escape(table))}},
                               .config_toml = ""}));
  fmt::print("\nrepro: {} (repro.md, summary.json, report.html; one run directory per step)\n", c.out);
  return 0;
}

}  // namespace

CLI::App* add_repro_command(CLI::App& app) {
  auto c = std::make_shared<ReproConfig>();
  CLI::App* sub = app.add_subcommand("repro", "Reproduce an experiment of the paper end to end (mlp7-mnist: Fig. 3)");
  sub->add_option("experiment", c->experiment, "mlp7-mnist")->required();
  sub->add_option("--seeds", c->seeds, "Seeds 0..N-1; the table gives mean ± std")->capture_default_str();
  sub->add_option("--pr", c->pr, "Pruning ratio of the hidden layers")->capture_default_str();
  sub->add_option("--dense-epochs", c->dense_epochs, "Epochs of dense training")->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--epochs", c->epochs, "Epochs of each retraining")->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--data-dir", c->data_dir, "Data root (default: $TPP_DATA, ../shared/data, ./data)");
  sub->add_option("--out", c->out, "Where the runs and the table go")->capture_default_str();
  sub->add_option("--workers", c->workers, "Data loader threads")->capture_default_str();
  sub->add_option("--limit", c->limit, "First N training images only (tests)")->capture_default_str();
  sub->add_option("--test-limit", c->test_limit, "First N test images only (tests)")->capture_default_str();
  sub->add_option("--reg-granularity", c->reg_granularity, "TPP's lambda step (shorter schedules for tests)")
      ->capture_default_str();
  sub->add_option("--reg-interval", c->reg_interval, "TPP's iterations between lambda updates")->capture_default_str();
  sub->add_option("--stabilize-iters", c->stabilize_iters, "TPP's stabilisation iterations")->capture_default_str();
  sub->add_option("--zero-out-interval", c->zero_out_interval, "TPP's iterations between layers' zeroing")
      ->capture_default_str();
  register_command(sub, [c] { return run_repro(*c); });
  return sub;
}

}  // namespace tpp::apps
