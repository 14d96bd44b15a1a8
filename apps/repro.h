// `tpp repro EXPERIMENT`: the paper's experiments end to end, as ordinary
// `tpp train` / `tpp prune` run directories under --out, each run by this
// same program. A step already finished is skipped and an interrupted one is
// resumed, so rerunning the command after a kill goes on where it stopped.
//
//   mlp7-mnist            Fig. 3 (apps/cmd_repro.cpp)
//   resnet-fashion-mnist  Tabs. 1, 3, 4 on a CIFAR ResNet (apps/repro_resnet.cpp)
//
// TPP's regularisation and removal run once per seed (`tpp prune --epochs 0`
// in tpp-removed/); each retraining LR continues a copy of that directory
// (branch_run), so both LRs start from the same pruned model.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace tpp::apps::repro {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

struct ReproConfig {
  std::string experiment, data_dir, out;  // out: runs/repro-<experiment> unless given
  int seeds = 1;
  double pr = 0;                          // 0: the experiment's (0.8 mlp7-mnist, 0.9 resnet-fashion-mnist)
  std::string recipe = "paper";           // resnet-fashion-mnist: paper or cpu
  std::string arch = "resnet20";          // resnet-fashion-mnist: resnet20, resnet56 (any CIFAR ResNet)
  std::string dataset = "fashion-mnist";  // resnet-fashion-mnist: or cifar10, cifar100
  // Overrides of the recipe (0: the recipe's); tests shorten runs with them.
  int64_t dense_epochs = 0, epochs = 0, limit = 0, test_limit = 0;
  double reg_granularity = 0;
  int64_t reg_interval = 0, stabilize_iters = 0, zero_out_interval = 0;
  int workers = 2;
};

// How long each phase runs. Step LR schedules decay ×0.1 at the given
// fractions of their epochs (the paper's 100/150 of 200 dense epochs are
// 0.5 and 0.75).
struct Recipe {
  std::string name{}, description{};  // the description says how it differs from the paper
  int64_t dense_epochs = 0;
  double dense_lr = 0.1;
  std::vector<double> dense_decays{};
  int64_t epochs = 0;  // of each retraining
  std::vector<double> retrain_decays{};
  // TPP (TPP-METHOD §4): Δ, K_u, S, zero-out spacing.
  double reg_granularity = 1e-4;
  int64_t reg_interval = 10, stabilize_iters = 10000, zero_out_interval = 100;
};

// `recipe` with the config's overrides applied.
Recipe with_overrides(Recipe recipe, const ReproConfig& c);
// The experiment's settings as TOML text (the reports' Config section).
std::string repro_config_toml(const ReproConfig& c, const Recipe& r);
Json recipe_json(const Recipe& r);

// "0:lr,m1:lr/10,m2:lr/100" for `epochs` epochs, the milestones at the
// fractions (strictly increasing, those at or past the end left out).
std::string step_schedule(double lr, int64_t epochs, const std::vector<double>& decays);

// The flags every `tpp prune` step of TPP shares.
std::vector<std::string> tpp_schedule_args(const Recipe& r);

// --dataset, --workers, --data-dir, --limit, --test-limit.
std::vector<std::string> data_args(const ReproConfig& c, const std::string& dataset);

// Whether the run in `dir` has finished (and, when `epochs` ≥ 0, retrained that many epochs).
bool finished(const fs::path& dir, int64_t epochs = -1);
// Runs `tpp <command>` in `dir`: skipped when finished(dir, epochs), resumed
// (with `resume_args` changing options) when it has a checkpoint, else
// started afresh with `args`.
void run_in(const std::string& command, const fs::path& dir, const std::vector<std::string>& args,
            const std::vector<std::string>& resume_args = {}, int64_t epochs = -1);
// `to` becomes a copy of the finished run `from` (copied under a temporary
// name, then renamed: a kill leaves no half copy). Nothing when `to` exists.
void branch_run(const fs::path& from, const fs::path& to);
// TPP at one retraining LR: the seed's shared regularised-and-removed run
// `removed`, copied to `dir` and retrained there with `retrain` (--epochs, --lr-schedule).
void retrain_branch(const fs::path& removed, const fs::path& dir, const std::vector<std::string>& retrain,
                    int64_t epochs);

Json read_json(const fs::path& file);
std::vector<Json> log_lines(const fs::path& dir);

// Values over seeds: "mean ± std" (sample std) or the one value, "-" when none.
struct Cell {
  std::vector<double> values;
  void add(double v) { values.push_back(v); }
  double mean() const;
  double std() const;
  std::string text(int decimals) const;
  // A mean JSV as prune::jsv_text writes every JSV (small ones in scientific notation).
  std::string jsv_text() const;
};

// (epoch, value) of test accuracy and mean JSV, epoch 0 right after pruning,
// then every retraining epoch up to `max_epoch`.
struct Curve {
  std::vector<std::pair<double, double>> jsv, acc;
};
Curve retrain_curve(const fs::path& dir, int64_t max_epoch);

// The paper's two retraining LRs (the whole step schedule scaled for the second).
const std::vector<double>& retrain_lrs();

// One chart of the mean JSV and one of test accuracy per retraining LR, a
// line per run up to `max_epoch`; run_dir(lr) is the run's directory.
struct ChartedRun {
  std::string label;
  std::function<fs::path(double lr)> run_dir;
};
std::vector<std::string> retrain_charts(const std::vector<ChartedRun>& runs, int64_t max_epoch);

int run_resnet_repro(const ReproConfig& c);

}  // namespace tpp::apps::repro
