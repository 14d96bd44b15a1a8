// `tpp repro mlp7-mnist [--seeds N]`: the paper's Fig. 3 in one command, on
// CPU. For each seed: dense MLP-7-Linear training on MNIST (the paper's
// recipe), then L1, L1 + OrthP and TPP at one pruning ratio on the hidden
// layers, each retrained at LR 1e-2 and at LR 1e-3 (TPP's regularisation
// once, shared by both: apps/repro.h). The outcome: repro.md (the table next
// to the paper's), summary.json and report.html (JSV and accuracy over the
// first 10 retraining epochs).
//
// `tpp repro resnet-fashion-mnist`: apps/repro_resnet.cpp.
#include <fmt/format.h>

#include "apps/commands.h"
#include "apps/repro.h"
#include "apps/usage.h"
#include "train/report.h"
#include "train/run_dir.h"
#include "engine/error.h"
#include "models/checkpoint.h"
#include "engine/text.h"
#include "prune/jsv.h"

namespace tpp::apps {

using namespace tpp::train;  // the training floor (train/): run data, run directories, reports

namespace {

using namespace repro;

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

// TPP-METHOD §8.2: 90 epochs, LR ×0.1 at 30 and 60, in every phase; TPP's
// MNIST schedule.
Recipe mlp_recipe() {
  return {.name = "paper",
          .description = "the paper's MNIST recipe (TPP-METHOD §8.2): 90 dense and 90 retraining epochs, LR x0.1 at 30 "
                         "and 60; lambda += 1e-4 every 10 iterations to 1, 10,000 stabilisation iterations",
          .dense_epochs = 90,
          .dense_lr = 1e-2,
          .dense_decays = {1.0 / 3, 2.0 / 3},
          .epochs = 90,
          .retrain_decays = {1.0 / 3, 2.0 / 3}};
}

fs::path seed_dir(const ReproConfig& c, int seed) { return fs::path(c.out) / fmt::format("seed{}", seed); }

fs::path prune_dir(const ReproConfig& c, int seed, const Variant& v, double lr) {
  return seed_dir(c, seed) / fmt::format("{}-lr{:g}", v.method, lr);
}

// Batch 100, SGD momentum 0.9, weight decay 1e-4 in every phase (§8.2).
std::vector<std::string> mlp_optimizer_args(int seed) {
  return {"--batch-size", "100", "--momentum", "0.9", "--weight-decay", "0.0001", "--seed", std::to_string(seed)};
}

void run_seed(const ReproConfig& c, const Recipe& r, int seed) {
  const fs::path dense = seed_dir(c, seed) / "dense";
  const std::vector<std::string> data = data_args(c, "mnist"), common = mlp_optimizer_args(seed);
  std::vector<std::string> train = {"--arch", "mlp7_linear", "--epochs", std::to_string(r.dense_epochs),
                                    "--lr-schedule", step_schedule(r.dense_lr, r.dense_epochs, r.dense_decays)};
  train.insert(train.end(), common.begin(), common.end());
  train.insert(train.end(), data.begin(), data.end());
  run_in("train", dense, train);
  const auto prune_args = [&](const std::string& method, int64_t epochs, double lr) {
    std::vector<std::string> a = {"--method", method, "--base", (dense / "last.safetensors").string(), "--stage-pr",
                                  fmt::format("net.*:{:g}", c.pr), "--skip-layers", "net.12", "--epochs",
                                  std::to_string(epochs), "--lr-schedule", step_schedule(lr, r.epochs, r.retrain_decays),
                                  "--log-interval", "1000", "--checkpoint-interval", "10000"};
    for (const auto* part : {&common, &data}) a.insert(a.end(), part->begin(), part->end());
    const std::vector<std::string> reg = tpp_schedule_args(r);
    a.insert(a.end(), reg.begin(), reg.end());
    return a;
  };
  const fs::path removed = seed_dir(c, seed) / "tpp-removed";
  run_in("prune", removed, prune_args("tpp", 0, retrain_lrs()[0]));
  for (const Variant& v : variants())
    for (const double lr : retrain_lrs()) {
      const std::vector<std::string> retrain = {"--epochs", std::to_string(r.epochs), "--lr-schedule",
                                                step_schedule(lr, r.epochs, r.retrain_decays)};
      if (v.method == "tpp")
        retrain_branch(removed, prune_dir(c, seed, v, lr), retrain, r.epochs);
      else
        run_in("prune", prune_dir(c, seed, v, lr), prune_args(v.method, r.epochs, lr), retrain, r.epochs);
    }
}

int run_mlp_repro(const ReproConfig& config) {
  ReproConfig c = config;
  if (c.pr == 0) c.pr = 0.8;
  TPP_CHECK(c.pr > 0 && c.pr < 1, "repro: --pr must be in (0, 1), got {}", c.pr);
  TPP_CHECK(c.recipe == "paper", "repro: mlp7-mnist has one recipe, paper (it runs in minutes on a CPU); got '{}'",
            c.recipe);
  const Recipe r = with_overrides(mlp_recipe(), c);
  fs::create_directories(c.out);
  for (int seed = 0; seed < c.seeds; ++seed) run_seed(c, r, seed);

  Cell dense_acc, dense_jsv;
  std::map<std::string, Cell> cells;  // "<method>/<lr>", "<method>/jsv"
  for (int seed = 0; seed < c.seeds; ++seed) {
    const fs::path dense = seed_dir(c, seed) / "dense";
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
      "MLP-7-Linear on MNIST, PR {:g} on the six hidden layers, {}, recipe '{}'; best test accuracy (%) over "
      "{} and the mean JSV right after pruning. Dense: {}% best, mean JSV {}.\n\n"
      "| Method | LR 1e-2 | LR 1e-3 | mean JSV after pruning | paper LR 1e-2 | paper LR 1e-3 | paper JSV |\n"
      "|---|---|---|---|---|---|---|\n",
      c.pr, counted(c.seeds, "seed"), r.name, counted(r.epochs, "retraining epoch"), dense_acc.text(2),
      dense_jsv.jsv_text());
  Json results = Json::object();
  for (const Variant& v : variants()) {
    const Cell& a = cells[fmt::format("{}/{:g}", v.method, 1e-2)];
    const Cell& b = cells[fmt::format("{}/{:g}", v.method, 1e-3)];
    const Cell& j = cells[v.method + "/jsv"];
    table += fmt::format("| {} | {} | {} | {} | {:.2f} | {:.2f} | {:.4f} |\n", v.label, a.text(2), b.text(2), j.jsv_text(),
                         v.paper_lr2, v.paper_lr3, v.paper_jsv);
    results[v.method] = {{"best_acc_lr1e-2", a.values}, {"best_acc_lr1e-3", b.values}, {"jsv_after_pruning", j.values}};
  }
  fmt::print("\n{}", table);

  std::vector<ChartedRun> charted;
  for (const Variant& v : variants())
    charted.push_back({v.label, [&c, &v](double lr) { return prune_dir(c, 0, v, lr); }});
  const std::vector<std::string> charts = retrain_charts(charted, 10);
  write_file_atomic(fs::path(c.out) / "repro.md", table);
  write_file_atomic(fs::path(c.out) / "summary.json",
                    Json{{"experiment", c.experiment},
                         {"pr", c.pr},
                         {"seeds", c.seeds},
                         {"recipe", recipe_json(r)},
                         {"dense", {{"best_acc", dense_acc.values}, {"jsv", dense_jsv.values}}},
                         {"methods", results}}
                        .dump(2));
  write_file_atomic(fs::path(c.out) / "report.html",
                    html_page({.title = "MLP-7-Linear on MNIST: the paper's Fig. 3",
                               .facts = {{"pruning ratio", fmt::format("{:g} on the six hidden layers", c.pr)},
                                         {"seeds", std::to_string(c.seeds)},
                                         {"dense best accuracy", dense_acc.values.empty() ? std::string("-") : dense_acc.text(2) + "%"},
                                         {"dense mean JSV", dense_jsv.jsv_text()}},
                               .charts = charts,
                               .sections = {{"Table", markdown_tables_html(table)}},
                               .config_toml = repro_config_toml(c, r)}));
  fmt::print("\nrepro: {} (repro.md, summary.json, report.html; one run directory per step)\n", c.out);
  return 0;
}

int run_repro(ReproConfig c) {
  TPP_CHECK(c.experiment == "mlp7-mnist" || c.experiment == "resnet-fashion-mnist",
            "repro: unknown experiment '{}'; known: mlp7-mnist, resnet-fashion-mnist", c.experiment);
  TPP_CHECK(c.seeds >= 1, "repro: --seeds must be at least 1, got {}", c.seeds);
  if (c.out.empty()) c.out = "runs/repro-" + c.experiment;
  return c.experiment == "mlp7-mnist" ? run_mlp_repro(c) : run_resnet_repro(c);
}

}  // namespace

CLI::App* add_repro_command(CLI::App& app) {
  auto c = std::make_shared<ReproConfig>();
  CLI::App* sub = app.add_subcommand(
      "repro", "Reproduce an experiment of the paper end to end (mlp7-mnist: Fig. 3; resnet-fashion-mnist: Tabs. 1, 3, "
               "4 on a CIFAR ResNet)");
  sub->footer(
      "Examples:\n  tpp repro mlp7-mnist --seeds 1 --out runs/repro\n  tpp repro resnet-fashion-mnist --recipe cpu "
      "--seeds 1\n  tpp repro resnet-fashion-mnist --recipe paper --arch resnet56 --dataset cifar10");
  sub->add_option("experiment", c->experiment, "mlp7-mnist or resnet-fashion-mnist")->required();
  sub->add_option("--seeds", c->seeds, "Seeds 0..N-1; the table gives mean ± std")
      ->capture_default_str()
      ->check(positive_integer());
  sub->add_option("--pr", c->pr, "Pruning ratio of the pruned layers (default: 0.8 mlp7-mnist, 0.9 resnet)")
      ->check(pruning_ratio());
  sub->add_option("--recipe", c->recipe,
                  "resnet-fashion-mnist: paper (200 dense epochs, 100k+10k TPP iterations, 120 retraining epochs) or "
                  "cpu (shortened, same shapes: see the output)")
      ->capture_default_str()
      ->check(CLI::IsMember({"paper", "cpu"}));
  sub->add_option("--arch", c->arch, "resnet-fashion-mnist: the CIFAR ResNet (resnet20, resnet56, ...)")
      ->capture_default_str();
  sub->add_option("--dataset", c->dataset, "resnet-fashion-mnist: fashion-mnist, cifar10 or cifar100")
      ->capture_default_str()
      ->check(CLI::IsMember({"fashion-mnist", "cifar10", "cifar100"}));
  sub->add_option("--dense-epochs", c->dense_epochs, "Epochs of dense training (default: the recipe's)")
      ->check(positive_integer());
  sub->add_option("--epochs", c->epochs, "Epochs of each retraining (default: the recipe's)")->check(positive_integer());
  sub->add_option("--data-dir", c->data_dir, kDataDirHelp);
  sub->add_option("--out", c->out, "Where the runs and the table go (default: runs/repro-<experiment>)");
  sub->add_option("--workers", c->workers, "Data loader threads")->capture_default_str();
  sub->add_option("--limit", c->limit, "First N training images only (tests)")->capture_default_str();
  sub->add_option("--test-limit", c->test_limit, "First N test images only (tests)")->capture_default_str();
  sub->add_option("--reg-granularity", c->reg_granularity, "TPP's lambda step (default: the recipe's)");
  sub->add_option("--reg-interval", c->reg_interval, "TPP's iterations between lambda updates (default: the recipe's)");
  sub->add_option("--stabilize-iters", c->stabilize_iters, "TPP's stabilisation iterations (default: the recipe's)");
  sub->add_option("--zero-out-interval", c->zero_out_interval,
                  "TPP's iterations between layers' zeroing (default: the recipe's)");
  register_command(sub, [c] { return run_repro(*c); });
  return sub;
}

}  // namespace tpp::apps
