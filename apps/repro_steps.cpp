#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <fstream>

#include "apps/repro.h"
#include "train/report.h"
#include "engine/error.h"
#include "prune/jsv.h"

namespace tpp::apps::repro {

namespace {

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

std::string format_lr(double lr) { return fmt::format("{:g}", lr); }

}  // namespace

Recipe with_overrides(Recipe r, const ReproConfig& c) {
  std::vector<std::string> changed;
  const auto take = [&](auto given, auto& field, const char* flag) {
    if (given <= 0) return;
    field = given;
    changed.push_back(fmt::format("{} {:g}", flag, static_cast<double>(given)));
  };
  take(c.dense_epochs, r.dense_epochs, "--dense-epochs");
  take(c.epochs, r.epochs, "--epochs");
  take(c.reg_granularity, r.reg_granularity, "--reg-granularity");
  take(c.reg_interval, r.reg_interval, "--reg-interval");
  take(c.stabilize_iters, r.stabilize_iters, "--stabilize-iters");
  take(c.zero_out_interval, r.zero_out_interval, "--zero-out-interval");
  if (!changed.empty()) r.description += fmt::format("; OVERRIDDEN by {}", fmt::join(changed, ", "));
  return r;
}

Json recipe_json(const Recipe& r) {
  return {{"name", r.name},
          {"description", r.description},
          {"dense_epochs", r.dense_epochs},
          {"dense_lr_schedule", step_schedule(r.dense_lr, r.dense_epochs, r.dense_decays)},
          {"retrain_epochs", r.epochs},
          {"retrain_lr_schedule_lr1e-2", step_schedule(1e-2, r.epochs, r.retrain_decays)},
          {"reg_granularity", r.reg_granularity},
          {"reg_interval", r.reg_interval},
          {"reg_iterations_to_ceiling", static_cast<int64_t>(std::llround(1.0 / r.reg_granularity)) * r.reg_interval},
          {"stabilize_iters", r.stabilize_iters},
          {"zero_out_interval", r.zero_out_interval}};
}

std::string step_schedule(double lr, int64_t epochs, const std::vector<double>& decays) {
  std::string out = fmt::format("0:{}", format_lr(lr));
  int64_t last = 0;
  double rate = lr;
  for (const double fraction : decays) {
    const int64_t at = std::max<int64_t>(last + 1, std::llround(fraction * static_cast<double>(epochs)));
    if (at >= epochs) break;
    rate /= 10;
    out += fmt::format(",{}:{}", at, format_lr(rate));
    last = at;
  }
  return out;
}

std::vector<std::string> tpp_schedule_args(const Recipe& r) {
  return {"--reg-lr", "0.001", "--reg-granularity", fmt::format("{:g}", r.reg_granularity), "--reg-interval",
          std::to_string(r.reg_interval), "--stabilize-iters", std::to_string(r.stabilize_iters),
          "--zero-out-interval", std::to_string(r.zero_out_interval)};
}

std::vector<std::string> data_args(const ReproConfig& c, const std::string& dataset) {
  std::vector<std::string> a = {"--dataset", dataset, "--workers", std::to_string(c.workers)};
  if (!c.data_dir.empty()) a.insert(a.end(), {"--data-dir", c.data_dir});
  if (c.limit > 0) a.insert(a.end(), {"--limit", std::to_string(c.limit)});
  if (c.test_limit > 0) a.insert(a.end(), {"--test-limit", std::to_string(c.test_limit)});
  return a;
}

Json read_json(const fs::path& file) {
  std::ifstream in(file);
  TPP_CHECK(in.good(), "repro: cannot read {}", file.string());
  try {
    return Json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    TPP_CHECK(false, "repro: {} is not JSON ({})", file.string(), e.what());
  }
  return {};
}

bool finished(const fs::path& dir, int64_t epochs) {
  if (!fs::exists(dir / "summary.json")) return false;
  const Json s = read_json(dir / "summary.json");
  if (s.value("status", "") != "finished") return false;
  return epochs < 0 || (s.contains("retrain") && s.at("retrain").value("epochs_done", int64_t{0}) >= epochs);
}

void run_in(const std::string& command, const fs::path& dir, const std::vector<std::string>& args,
            const std::vector<std::string>& resume_args, int64_t epochs) {
  if (finished(dir, epochs)) {
    fmt::print("repro: {} is done, skipped\n", dir.string());
    return;
  }
  std::vector<std::string> argv = {command};
  if (fs::exists(dir / "last.safetensors") && fs::exists(dir / "config.toml")) {
    argv.insert(argv.end(), {"--resume", dir.string()});
    argv.insert(argv.end(), resume_args.begin(), resume_args.end());
  } else {
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--out", dir.string(), "--overwrite"});
  }
  run_step(dir.string(), argv);
}

void branch_run(const fs::path& from, const fs::path& to) {
  if (fs::exists(to)) return;
  TPP_CHECK(finished(from), "repro: cannot branch from {}: it has not finished", from.string());
  fs::path partial = to;
  partial += ".partial";
  fs::remove_all(partial);
  fs::copy(from, partial, fs::copy_options::recursive);
  fs::rename(partial, to);
}

void retrain_branch(const fs::path& removed, const fs::path& dir, const std::vector<std::string>& retrain,
                    int64_t epochs) {
  branch_run(removed, dir);
  // The copy's config.toml has the first branch's retraining schedule: a
  // change of settings a resume refuses unless asked, and records.
  std::vector<std::string> resume = retrain;
  resume.emplace_back("--allow-changes");
  run_in("prune", dir, {}, resume, epochs);
}

std::vector<Json> log_lines(const fs::path& dir) {
  std::vector<Json> lines;
  std::ifstream in(dir / "log.jsonl");
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(Json::parse(line));
  return lines;
}

double Cell::mean() const {
  double s = 0;
  for (const double v : values) s += v;
  return s / static_cast<double>(values.size());
}

double Cell::std() const {
  const double m = mean();
  double s = 0;
  for (const double v : values) s += (v - m) * (v - m);
  return values.size() > 1 ? std::sqrt(s / static_cast<double>(values.size() - 1)) : 0.0;
}

std::string Cell::text(int decimals) const {
  if (values.empty()) return "-";
  return values.size() > 1 ? fmt::format("{:.{}f} ± {:.{}f}", mean(), decimals, std(), decimals)
                           : fmt::format("{:.{}f}", mean(), decimals);
}

std::string Cell::jsv_text() const {
  if (values.empty()) return "-";
  return values.size() > 1 ? fmt::format("{} ± {}", prune::jsv_text(mean()), prune::jsv_text(std()))
                           : prune::jsv_text(mean());
}

Curve retrain_curve(const fs::path& dir, int64_t max_epoch) {
  Curve curve;
  const auto add = [&](double epoch, const Json& line) {
    curve.acc.emplace_back(epoch, line.at("test_acc").get<double>());
    if (line.contains("jsv") && line.at("jsv").is_object())
      curve.jsv.emplace_back(epoch, line.at("jsv").at("mean").get<double>());
  };
  for (const Json& line : log_lines(dir)) {
    const std::string phase = line.value("phase", "");
    if (phase == "remove") {
      add(0, line);
    } else if (phase == "retrain" && line.contains("epoch") && line.at("epoch").get<int64_t>() <= max_epoch) {
      add(static_cast<double>(line.at("epoch").get<int64_t>()), line);
    }
  }
  return curve;
}

const std::vector<double>& retrain_lrs() {
  static const std::vector<double> lrs = {1e-2, 1e-3};
  return lrs;
}

std::vector<std::string> retrain_charts(const std::vector<ChartedRun>& runs, int64_t max_epoch) {
  static const std::vector<std::string> colors = {"#d62728", "#2ca02c", "#1f77b4", "#7f7f7f", "#9467bd"};
  std::vector<std::string> charts;
  for (const double lr : retrain_lrs()) {
    std::vector<train::ChartSeries> jsv, acc;
    for (size_t i = 0; i < runs.size(); ++i) {
      const Curve curve = retrain_curve(runs[i].run_dir(lr), max_epoch);
      jsv.push_back({runs[i].label, colors[i % colors.size()], curve.jsv});
      acc.push_back({runs[i].label, colors[i % colors.size()], curve.acc});
    }
    charts.push_back(train::svg_line_chart(jsv, {.title = fmt::format("Mean JSV, retraining LR {:g} (seed 0)", lr),
                                          .x_label = "epoch (0: right after pruning)",
                                          .y_label = "mean JSV"}));
    charts.push_back(train::svg_line_chart(acc, {.title = fmt::format("Test accuracy, retraining LR {:g} (seed 0)", lr),
                                          .x_label = "epoch (0: right after pruning)",
                                          .y_label = "accuracy (%)"}));
  }
  return charts;
}

// The experiment's settings, for the report's Config section: those of this
// experiment only (mlp7-mnist has no arch or dataset to choose), as run.
std::string repro_config_toml(const ReproConfig& c, const Recipe& r) {
  const bool mlp = c.experiment == "mlp7-mnist";
  std::string out = fmt::format("experiment = \"{}\"\nseeds = {}\npr = {:g}\n", c.experiment, c.seeds, c.pr);
  if (!mlp) out += fmt::format("recipe = \"{}\"\n", r.name);
  out += fmt::format("arch = \"{}\"\ndataset = \"{}\"\n", mlp ? "mlp7_linear" : c.arch, mlp ? "mnist" : c.dataset);
  if (!c.data_dir.empty()) out += fmt::format("data-dir = \"{}\"\n", c.data_dir);
  out += fmt::format(
      "dense-epochs = {}\nepochs = {}\nreg-granularity = {:g}\nreg-interval = {}\nstabilize-iters = {}\n"
      "zero-out-interval = {}\n",
      r.dense_epochs, r.epochs, r.reg_granularity, r.reg_interval, r.stabilize_iters, r.zero_out_interval);
  if (c.limit > 0) out += fmt::format("limit = {}\n", c.limit);
  if (c.test_limit > 0) out += fmt::format("test-limit = {}\n", c.test_limit);
  return out + fmt::format("out = \"{}\"\n", c.out);
}

}  // namespace tpp::apps::repro
