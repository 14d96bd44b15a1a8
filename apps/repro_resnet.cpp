// `tpp repro resnet-fashion-mnist`: the paper's CNN claims (Tabs. 1, 3, 4:
// ResNet-56 on CIFAR-10) on a CIFAR ResNet (resnet20, or --arch resnet56) and
// Fashion-MNIST (--dataset cifar10 / cifar100 run the same study). Per seed,
// under --out/seed<N>/:
//
//   dense/                          the dense model (the recipe's schedule: LR 0.1, ×0.1 at 1/2 and 3/4)
//   tpp-removed/                    TPP's regularisation and removal, once (tpp prune --epochs 0)
//   ablation-{no-bn,no-gram,diagonal}/  the same with one part of TPP off: accuracy right after removal
//   {l1,l1+orthp,scratch}-lr<LR>/   removal (fresh weights for scratch), then retraining at LR 1e-2 and 1e-3
//   tpp-lr<LR>/                     a copy of tpp-removed, retrained
//
// The outcome under --out: repro.md (the tables next to the paper's),
// summary.json (every number per seed) and report.html (mean JSV and test
// accuracy per retraining epoch).
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <limits>

#include "apps/repro.h"
#include "train/report.h"
#include "train/run_dir.h"
#include "engine/text.h"
#include "engine/error.h"

namespace tpp::apps::repro {

namespace {

constexpr double kNone = std::numeric_limits<double>::quiet_NaN();

// The paper's ResNet-56 / CIFAR-10 numbers (PAPER-RESULTS.md, Tabs. 1, 3, 4)
// at the PRs it reports them for: LR 1e-2, LR 1e-3, right after removal.
struct PaperNumbers {
  double lr2 = kNone, lr3 = kNone, after_removal = kNone;
};

struct Method {
  std::string method;  // --method of tpp prune
  const char* label;
  PaperNumbers pr07, pr09;
};

const std::vector<Method>& methods() {
  static const std::vector<Method> m = {
      {"l1", "L1", {92.26, 91.77, kNone}, {86.75, 87.57, kNone}},
      {"l1+orthp", "L1 + OrthP", {91.96, kNone, kNone}, {86.01, kNone, kNone}},
      {"tpp", "TPP", {92.35, 92.00, 90.48}, {89.63, 89.09, 70.53}},
      {"scratch", "Scratch", {92.11, kNone, kNone}, {88.36, kNone, kNone}},
  };
  return m;
}

// Tabs. 3/4: TPP with one part off, accuracy right after removal.
struct Ablation {
  std::string dir;
  const char* label;
  std::vector<std::string> flags;
  double paper07, paper09;
};

const std::vector<Ablation>& ablations() {
  static const std::vector<Ablation> a = {
      {"ablation-no-bn", "TPP without the BN term (gram ✓, BN ✗)", {"--no-bn-reg"}, 90.46, 44.25},
      {"ablation-no-gram", "TPP without the gram term (gram ✗, BN ✓)", {"--no-gram"}, 90.26, 26.79},
      {"ablation-diagonal", "TPP with the \"diagonal\" target", {"--reg-target", "diagonal"}, 90.21, 23.23},
  };
  return a;
}

double paper_at(double pr, const PaperNumbers& p07, const PaperNumbers& p09, double PaperNumbers::*field) {
  if (std::abs(pr - 0.9) < 1e-9) return p09.*field;
  if (std::abs(pr - 0.7) < 1e-9) return p07.*field;
  return kNone;
}

std::string paper_text(double v) { return std::isnan(v) ? "-" : fmt::format("{:.2f}", v); }

Recipe recipe_named(const std::string& name) {
  if (name == "paper")
    return {.name = "paper",
            .description = "the paper's CIFAR recipe (TPP-METHOD §4, §6): 200 dense epochs (LR 0.1, x0.1 at 100 and "
                           "150), lambda += 1e-4 every 10 iterations to 1 (100,000 iterations), 10,000 stabilisation "
                           "iterations zeroing a layer every 100, 120 retraining epochs (x0.1 at 60 and 90)",
            .dense_epochs = 200,
            .dense_decays = {0.5, 0.75},
            .epochs = 120,
            .retrain_decays = {0.5, 0.75},
            .reg_granularity = 1e-4,
            .reg_interval = 10,
            .stabilize_iters = 10000,
            .zero_out_interval = 100};
  TPP_CHECK(name == "cpu", "repro: --recipe must be paper or cpu, got '{}'", name);
  return {.name = "cpu",
          .description = "shortened for a 2-core CPU, same shapes: 10 dense epochs (LR 0.1, x0.1 at 5 and 8: the "
                         "paper's 1/2 and 3/4), lambda += 1e-3 every iteration to 1 (1,000 iterations, 1% of the "
                         "paper's regularisation budget, the same linear ramp), 600 stabilisation iterations zeroing a "
                         "layer every 10, 10 retraining epochs (x0.1 at 5 and 8)",
          .dense_epochs = 10,
          .dense_decays = {0.5, 0.75},
          .epochs = 10,
          .retrain_decays = {0.5, 0.75},
          .reg_granularity = 1e-3,
          .reg_interval = 1,
          .stabilize_iters = 600,
          .zero_out_interval = 10};
}

struct Study {
  const ReproConfig& c;
  Recipe recipe;
  std::string stage_pr;

  fs::path seed_dir(int seed) const { return fs::path(c.out) / fmt::format("seed{}", seed); }
  fs::path dense_dir(int seed) const { return seed_dir(seed) / "dense"; }
  fs::path removed_dir(int seed) const { return seed_dir(seed) / "tpp-removed"; }
  fs::path method_dir(int seed, const std::string& method, double lr) const {
    return seed_dir(seed) / fmt::format("{}-lr{:g}", method, lr);
  }

  std::vector<std::string> common(int seed) const {
    std::vector<std::string> a = {"--batch-size", "128", "--momentum", "0.9", "--weight-decay", "0.0005",
                                  "--seed", std::to_string(seed)};
    const std::vector<std::string> data = data_args(c, c.dataset);
    a.insert(a.end(), data.begin(), data.end());
    return a;
  }

  std::vector<std::string> prune_args(int seed, const std::string& method, int64_t epochs, double lr) const {
    std::vector<std::string> a = {"--method", method, "--base", (dense_dir(seed) / "last.safetensors").string(),
                                  "--stage-pr", stage_pr, "--epochs", std::to_string(epochs), "--lr-schedule",
                                  step_schedule(lr, recipe.epochs, recipe.retrain_decays), "--log-interval", "100",
                                  "--checkpoint-interval", "2000"};
    const std::vector<std::string> reg = tpp_schedule_args(recipe), base = common(seed);
    a.insert(a.end(), reg.begin(), reg.end());
    a.insert(a.end(), base.begin(), base.end());
    return a;
  }

  std::vector<std::string> retrain_args(double lr) const {
    return {"--epochs", std::to_string(recipe.epochs), "--lr-schedule",
            step_schedule(lr, recipe.epochs, recipe.retrain_decays)};
  }

  void run_seed(int seed) const {
    std::vector<std::string> dense = {"--arch", c.arch, "--epochs", std::to_string(recipe.dense_epochs),
                                      "--lr-schedule",
                                      step_schedule(recipe.dense_lr, recipe.dense_epochs, recipe.dense_decays)};
    const std::vector<std::string> base = common(seed);
    dense.insert(dense.end(), base.begin(), base.end());
    run_in("train", dense_dir(seed), dense);
    // Regularisation and removal once; the retraining LRs branch from it.
    run_in("prune", removed_dir(seed), prune_args(seed, "tpp", 0, retrain_lrs()[0]));
    for (const Ablation& a : ablations()) {
      std::vector<std::string> args = prune_args(seed, "tpp", 0, retrain_lrs()[0]);
      args.insert(args.end(), a.flags.begin(), a.flags.end());
      run_in("prune", seed_dir(seed) / a.dir, args);
    }
    for (const double lr : retrain_lrs())
      for (const Method& m : methods()) {
        const fs::path dir = method_dir(seed, m.method, lr);
        if (m.method == "tpp")
          retrain_branch(removed_dir(seed), dir, retrain_args(lr), recipe.epochs);
        else
          run_in("prune", dir, prune_args(seed, m.method, recipe.epochs, lr), retrain_args(lr), recipe.epochs);
      }
  }
};

double removal_number(const Json& summary, const char* key) { return summary.at("removal").at(key).get<double>(); }

}  // namespace

int run_resnet_repro(const ReproConfig& config) {
  ReproConfig c = config;
  if (c.pr == 0) c.pr = 0.9;
  TPP_CHECK(c.pr > 0 && c.pr < 1, "repro: --pr must be in (0, 1), got {}", c.pr);
  const Study study{.c = c,
                    .recipe = with_overrides(recipe_named(c.recipe), c),
                    .stage_pr = fmt::format("*layer*.conv1:{:g}", c.pr)};
  const Recipe& r = study.recipe;
  fmt::print("repro: {} on {}, PR {:g} on *layer*.conv1, {}, recipe '{}': {}\n", c.arch, c.dataset, c.pr,
             counted(c.seeds, "seed"), r.name, r.description);
  const auto started = std::chrono::steady_clock::now();
  fs::create_directories(c.out);
  for (int seed = 0; seed < c.seeds; ++seed) study.run_seed(seed);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  // Collect: per seed, every number of the tables.
  Cell dense_acc, compute_seconds;
  std::map<std::string, Cell> cells;  // "<method>/<lr>", "<method>/jsv", "<method>/removal", "<ablation>"
  Json per_seed = Json::array();
  Json counts;
  for (int seed = 0; seed < c.seeds; ++seed) {
    const Json dense = read_json(study.dense_dir(seed) / "summary.json");
    dense_acc.add(dense.at("best_test_acc").get<double>());
    double seconds = dense.value("seconds", 0.0);
    const Json removed = read_json(study.removed_dir(seed) / "summary.json");
    const double removed_seconds = removed.value("seconds", 0.0);
    seconds += removed_seconds;
    Json seed_json = {{"seed", seed}, {"dense_best_acc", dense.at("best_test_acc")}};
    for (const Ablation& a : ablations()) {
      const Json s = read_json(study.seed_dir(seed) / a.dir / "summary.json");
      cells[a.dir].add(removal_number(s, "test_acc_after"));
      seconds += s.value("seconds", 0.0);
      seed_json[a.dir] = {{"acc_after_removal", s.at("removal").at("test_acc_after")}};
    }
    for (const Method& m : methods())
      for (const double lr : retrain_lrs()) {
        const Json s = read_json(study.method_dir(seed, m.method, lr) / "summary.json");
        seconds += s.value("seconds", 0.0) - (m.method == "tpp" ? removed_seconds : 0.0);
        cells[fmt::format("{}/{:g}", m.method, lr)].add(s.at("retrain").at("best_test_acc").get<double>());
        seed_json[fmt::format("{}@lr{:g}", m.method, lr)] = {
            {"acc_after_removal", s.at("removal").at("test_acc_after")},
            {"jsv_after_pruning", s.at("removal").at("jsv_after_pruning")},
            {"best_acc", s.at("retrain").at("best_test_acc")},
            {"final_acc", s.at("retrain").at("final_test_acc")},
            {"jsv_mean_per_epoch", s.at("retrain").at("jsv_mean_per_epoch")}};
        if (lr != retrain_lrs()[0]) continue;
        cells[m.method + "/removal"].add(removal_number(s, "test_acc_after"));
        const Json& jsv = s.at("removal").at("jsv_after_pruning");
        if (jsv.is_object()) cells[m.method + "/jsv"].add(jsv.at("mean").get<double>());
        if (m.method == "tpp" && seed == 0) {
          const Json& rm = s.at("removal");
          const Json& speed = rm.at("inference_images_per_s");
          counts = {{"dense", rm.at("dense")},
                    {"pruned", rm.at("pruned")},
                    {"sparsity", rm.at("sparsity")},
                    {"sparsity_with_bn", rm.at("sparsity_with_bn")},
                    {"flops_speedup", rm.at("speedup")},
                    {"measured_speedup", speed.at("dense").get<double>() > 0
                                             ? Json(speed.at("pruned").get<double>() / speed.at("dense").get<double>())
                                             : Json()},
                    {"inference_images_per_s", speed}};
        }
      }
    compute_seconds.add(seconds);
    seed_json["compute_seconds"] = seconds;
    per_seed.push_back(seed_json);
  }

  // The tables.
  const auto get = [&](const std::string& key) -> const Cell& { return cells[key]; };
  std::string table = fmt::format(
      "{} on {}, PR {:g} on every *layer*.conv1, {}, recipe '{}' ({}).\n"
      "Dense: {}% best test accuracy. Params {} -> {} (sparsity {:.2f}%), FLOPs {:.2f}x fewer, measured inference "
      "speedup {}. Compute time per seed: {} s.\n\n"
      "Best test accuracy (%) over the retraining epochs, accuracy right after removal (before retraining) and the "
      "mean JSV right after pruning; the paper's ResNet-56 / CIFAR-10 numbers (Tab. 1) where it reports this PR.\n\n"
      "| Method | right after removal | LR 1e-2 | LR 1e-3 | mean JSV after pruning | paper LR 1e-2 | paper LR 1e-3 |\n"
      "|---|---|---|---|---|---|---|\n",
      c.arch, c.dataset, c.pr, counted(c.seeds, "seed"), r.name, r.description, dense_acc.text(2),
      with_commas(counts.at("dense").at("params").get<int64_t>()),
      with_commas(counts.at("pruned").at("params").get<int64_t>()),
      100 * counts.at("sparsity").get<double>(), counts.at("flops_speedup").get<double>(),
      counts.at("measured_speedup").is_number() ? fmt::format("{:.2f}x", counts.at("measured_speedup").get<double>())
                                                : std::string("-"),
      compute_seconds.text(0));
  Json results = Json::object();
  for (const Method& m : methods()) {
    const Cell &a = get(fmt::format("{}/{:g}", m.method, 1e-2)), &b = get(fmt::format("{}/{:g}", m.method, 1e-3));
    table += fmt::format("| {} | {} | {} | {} | {} | {} | {} |\n", m.label, get(m.method + "/removal").text(2),
                         a.text(2), b.text(2), get(m.method + "/jsv").jsv_text(),
                         paper_text(paper_at(c.pr, m.pr07, m.pr09, &PaperNumbers::lr2)),
                         paper_text(paper_at(c.pr, m.pr07, m.pr09, &PaperNumbers::lr3)));
    results[m.method] = {{"acc_after_removal", get(m.method + "/removal").values},
                         {"best_acc_lr1e-2", a.values},
                         {"best_acc_lr1e-3", b.values},
                         {"jsv_after_pruning", get(m.method + "/jsv").values}};
  }
  std::string ablation_table =
      "\nThe ablation right after removal (paper Tabs. 3/4; no retraining):\n\n"
      "| Variant | right after removal | paper |\n|---|---|---|\n";
  const Method& tpp = methods()[2];
  ablation_table += fmt::format("| L1 | {} | - |\n", get("l1/removal").text(2));
  ablation_table += fmt::format("| TPP (gram ✓, BN ✓) | {} | {} |\n", get("tpp/removal").text(2),
                                paper_text(paper_at(c.pr, tpp.pr07, tpp.pr09, &PaperNumbers::after_removal)));
  Json ablation_json = {{"l1", get("l1/removal").values}, {"tpp", get("tpp/removal").values}};
  for (const Ablation& a : ablations()) {
    const double paper = std::abs(c.pr - 0.9) < 1e-9 ? a.paper09 : std::abs(c.pr - 0.7) < 1e-9 ? a.paper07 : kNone;
    ablation_table += fmt::format("| {} | {} | {} |\n", a.label, get(a.dir).text(2), paper_text(paper));
    ablation_json[a.dir] = get(a.dir).values;
  }
  table += ablation_table;
  fmt::print("\n{}", table);

  std::vector<ChartedRun> charted;
  for (const Method& m : methods())
    charted.push_back({m.label, [&study, &m](double lr) { return study.method_dir(0, m.method, lr); }});
  const std::vector<std::string> charts = retrain_charts(charted, r.epochs);
  write_file_atomic(fs::path(c.out) / "repro.md", table);
  write_file_atomic(fs::path(c.out) / "summary.json",
                    Json{{"experiment", c.experiment},
                         {"arch", c.arch},
                         {"dataset", c.dataset},
                         {"pr", c.pr},
                         {"stage_pr", study.stage_pr},
                         {"seeds", c.seeds},
                         {"recipe", recipe_json(r)},
                         {"dense", {{"best_acc", dense_acc.values}}},
                         {"counts", counts},
                         {"methods", results},
                         {"ablations_after_removal", ablation_json},
                         {"compute_seconds_per_seed", compute_seconds.values},
                         {"per_seed", per_seed}}
                        .dump(2));
  write_file_atomic(fs::path(c.out) / "report.html",
                    train::html_page({.title = fmt::format("{} on {}: the paper's CNN claims (Tabs. 1, 3, 4)", c.arch,
                                                    c.dataset),
                               .facts = {{"pruning ratio", fmt::format("{:g} on every *layer*.conv1", c.pr)},
                                         {"recipe", fmt::format("{}: {}", r.name, r.description)},
                                         {"seeds", std::to_string(c.seeds)},
                                         {"dense best accuracy", dense_acc.values.empty() ? std::string("-") : dense_acc.text(2) + "%"},
                                         {"compute time per seed (s)", compute_seconds.text(0)}},
                               .charts = charts,
                               .sections = {{"Tables", train::markdown_tables_html(table)}},
                               .config_toml = repro_config_toml(c, r)}));
  fmt::print("\nrepro: {} (repro.md, summary.json, report.html; one run directory per step); {:.0f} s in this "
             "invocation\n",
             c.out, wall);
  return 0;
}

}  // namespace tpp::apps::repro
