// `tpp prune --base CKPT`: the pipelines of the methods end to end, on tiny
// runs of the built program (the first few hundred Fashion-MNIST images and
// schedules shortened to tens of iterations).
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/rng.h"
#include "engine/safetensors.h"
#include "models/checkpoint.h"
#include "models/widths.h"
#include "models/zoo.h"
#include "prune/jsv.h"
#include "tests/apps/run_tpp.h"
#include "tests/data/data_test_util.h"

using namespace tpp;
using tpp::testing::run_tpp;
using tpp::testing::TempDir;
using Run = tpp::testing::TppRun;
using Json = nlohmann::json;

namespace {

const bool kPassiveOpenMp = ::setenv("OMP_WAIT_POLICY", "passive", 0) == 0;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A freshly initialised `arch` for Fashion-MNIST (1 channel, 10 classes), saved as the base to prune.
std::filesystem::path save_base(const TempDir& dir, const std::string& arch) {
  manual_seed(11);
  const auto net = models::make_model(arch, 10, 1);
  const auto path = dir / (arch + ".safetensors");
  models::save_checkpoint(path, *net, {.arch = arch, .dataset = "fashion-mnist", .num_classes = 10, .in_channels = 1});
  return path;
}

std::vector<Json> read_log(const std::filesystem::path& file) {
  std::vector<Json> lines;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) lines.push_back(Json::parse(line));
  return lines;
}

std::vector<Json> lines_where(const std::vector<Json>& log, const std::function<bool(const Json&)>& keep) {
  std::vector<Json> out;
  for (const Json& line : log)
    if (keep(line)) out.push_back(line);
  return out;
}

Json removal_of(const std::vector<Json>& log) {
  const auto removal = lines_where(log, [](const Json& l) { return l["phase"] == "remove"; });
  REQUIRE(removal.size() == 1);
  return removal[0];
}

const std::string kTinyData = "--limit 200 --test-limit 100 --batch-size 50 --workers 0";
// mlp7_linear's hidden layers at PR 0.5; λ grows 0.25 every 2 iterations to 1
// (t* = 8), then 14 iterations of stabilisation zero one layer every 2: 23 iterations.
const std::string kMlpPlan = "--stage-pr 'net.*:0.5' --skip-layers net.12";
const std::string kShortTpp =
    "--reg-granularity 0.25 --reg-interval 2 --stabilize-iters 14 --zero-out-interval 2 --log-interval 1";

Run run_prune(const std::filesystem::path& base, const std::filesystem::path& out, const std::string& args) {
  return run_tpp(fmt::format("prune --base {} --out {} {} {}", base.string(), out.string(), kTinyData, args));
}

std::map<std::string, Tensor> model_tensors(const std::filesystem::path& checkpoint) {
  return models::read_checkpoint(checkpoint).model_tensors;
}

bool same_bits(const std::map<std::string, Tensor>& a, const std::map<std::string, Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [name, t] : a) {
    const Tensor& u = b.at(name);
    if (t.sizes() != u.sizes() ||
        std::memcmp(t.raw_data(), u.raw_data(), static_cast<size_t>(t.numel()) * element_size(t.dtype())) != 0)
      return false;
  }
  return true;
}

}  // namespace

TEST_SUITE("apps") {
  TEST_CASE("tpp prune --method tpp: the penalty log follows the schedule, removal is lossless, retraining logs JSV") {
    REQUIRE_FASHION_MNIST();
    const TempDir dir;
    const auto base = save_base(dir, "mlp7_linear");
    const auto out = dir / "run";
    const Run run = run_prune(base, out, fmt::format("--method tpp {} {} --epochs 2 --lr-schedule 0:0.01", kMlpPlan, kShortTpp));
    REQUIRE_MESSAGE(run.status == 0, run.output);
    for (const char* file : {"config.toml", "log.jsonl", "last.safetensors", "best.safetensors", "pruned.safetensors",
                             "summary.json", "report.html"})
      CHECK_MESSAGE(std::filesystem::exists(out / file), file);

    const std::vector<Json> log = read_log(out / "log.jsonl");
    const auto steps = lines_where(log, [](const Json& l) { return l.contains("iteration"); });
    REQUIRE(steps.size() == 23);
    for (int64_t t = 0; t < 23; ++t) {
      const Json& s = steps[static_cast<size_t>(t)];
      CHECK(s["iteration"] == t);
      CHECK(s["lambda"].get<double>() == 0.25 * static_cast<double>(std::min<int64_t>(t, 8) / 2));
      CHECK(s["phase"] == (t < 8 ? "regularize" : "stabilize"));
      CHECK(s["gram_term"].get<double>() == doctest::Approx(1000 * s["lambda"].get<double>() * s["gram"].get<double>()));
      CHECK(std::isfinite(s["ce"].get<double>()));
    }
    // Every hidden layer is hard-zeroed by t = 8 + 2·6 = 20: the last logged weights hold exact zeros.
    CHECK(steps.back()["pruned_norm"].get<double>() == 0.0);
    CHECK(steps.front()["pruned_norm"].get<double>() > 0.0);

    const Json removal = removal_of(log);
    CHECK(removal["test_acc"] == removal["test_acc_before"]);
    CHECK(removal["jsv"]["mean"].get<double>() > 0);
    CHECK(removal["sparsity"].get<double>() > 0.5);

    const auto retrain = lines_where(log, [](const Json& l) { return l["phase"] == "retrain"; });
    REQUIRE(retrain.size() == 2);
    CHECK(retrain[1]["epoch"] == 2);
    CHECK(retrain[1]["jsv"]["mean"].get<double>() > 0);

    const models::Checkpoint pruned = models::read_checkpoint(out / "pruned.safetensors");
    CHECK(pruned.info.widths.at("net.0") == 50);
    CHECK(pruned.info.widths.at("net.10") == 50);
    CHECK(pruned.info.widths.at("net.12") == 10);
    std::ifstream summary_file(out / "summary.json");
    const Json summary = Json::parse(summary_file);
    CHECK(summary["status"] == "finished");
    CHECK(summary["retrain"]["epochs_done"] == 2);
    CHECK(contains(run.output, "prune: run directory"));
  }

  TEST_CASE("tpp prune: --resume of a finished run with more --epochs continues retraining to the same bits") {
    REQUIRE_FASHION_MNIST();
    const TempDir dir;
    const auto base = save_base(dir, "mlp7_linear");
    const std::string args = fmt::format("--method tpp {} {} --lr-schedule 0:0.01,2:0.001", kMlpPlan, kShortTpp);
    REQUIRE(run_prune(base, dir / "straight", args + " --epochs 3").status == 0);
    REQUIRE(run_prune(base, dir / "split", args + " --epochs 1").status == 0);
    const Run resumed = run_tpp(fmt::format("prune --resume {} --epochs 3", (dir / "split").string()));
    REQUIRE_MESSAGE(resumed.status == 0, resumed.output);
    CHECK(contains(resumed.output, "resuming in phase"));
    CHECK(same_bits(model_tensors(dir / "straight" / "last.safetensors"),
                    model_tensors(dir / "split" / "last.safetensors")));
    CHECK(read_log(dir / "straight" / "log.jsonl").size() == read_log(dir / "split" / "log.jsonl").size());
  }

  TEST_CASE("tpp prune --method l1+orthp: every singular value of the pruned linear MLP is 1") {
    REQUIRE_FASHION_MNIST();
    const TempDir dir;
    const Run run = run_prune(save_base(dir, "mlp7_linear"), dir / "run", "--method l1+orthp --epochs 0 " + kMlpPlan);
    REQUIRE_MESSAGE(run.status == 0, run.output);
    const Json removal = removal_of(read_log(dir / "run" / "log.jsonl"));
    CHECK(removal["jsv"]["mean"].get<double>() == doctest::Approx(1.0).epsilon(1e-6));
    CHECK(removal["jsv"]["max"].get<double>() == doctest::Approx(1.0).epsilon(1e-6));
    CHECK(removal["orthp_gain"].get<double>() == 1.0);
  }

  TEST_CASE("tpp prune --method l1: L1 pruning of the linear MLP shrinks the mean JSV") {
    REQUIRE_FASHION_MNIST();
    const TempDir dir;
    const auto base = save_base(dir, "mlp7_linear");
    const Run run = run_prune(base, dir / "run", "--method l1 --epochs 0 " + kMlpPlan);
    REQUIRE_MESSAGE(run.status == 0, run.output);
    const Json removal = removal_of(read_log(dir / "run" / "log.jsonl"));
    const double dense = prune::linear_chain_jsv(*models::build_model(models::read_checkpoint(base))).mean;
    const double pruned = removal["jsv"]["mean"].get<double>();
    CHECK(pruned > 0);
    CHECK(pruned < 0.5 * dense);
    // The logged value is the pruned checkpoint's own exact JSV.
    const double reloaded =
        prune::linear_chain_jsv(*models::build_model(models::read_checkpoint(dir / "run" / "pruned.safetensors"))).mean;
    CHECK(pruned == doctest::Approx(reloaded).epsilon(1e-9));
  }

  TEST_CASE("tpp prune --method scratch: the pruned widths with fresh weights") {
    REQUIRE_FASHION_MNIST();
    const TempDir dir;
    const auto base = save_base(dir, "mlp7_linear");
    const Run run = run_prune(base, dir / "run", "--method scratch --epochs 1 --lr-schedule 0:0.01 " + kMlpPlan);
    REQUIRE_MESSAGE(run.status == 0, run.output);
    const auto pruned = model_tensors(dir / "run" / "pruned.safetensors");
    const auto dense = model_tensors(base);
    CHECK(pruned.at("net.0.weight").size(0) == 50);
    // Fresh weights: not a slice of the base's first layer.
    const std::vector<float> fresh = pruned.at("net.0.weight").to_vector<float>();
    const std::vector<float> old = dense.at("net.0.weight").to_vector<float>();
    CHECK_FALSE(std::equal(fresh.begin(), fresh.begin() + 1024, old.begin()));
  }

  TEST_CASE("tpp prune: kernorth+l1 trains the dense model first, l1+kernorth regularises the retraining") {
    REQUIRE_FASHION_MNIST();
    const TempDir dir;
    const auto base = save_base(dir, "mlp7_linear");
    Run run = run_prune(base, dir / "before", "--method kernorth+l1 --orth-reg-iters 6 --epochs 0 " + kMlpPlan);
    REQUIRE_MESSAGE(run.status == 0, run.output);
    const auto passes = lines_where(read_log(dir / "before" / "log.jsonl"),
                                    [](const Json& l) { return l["phase"] == "orth-regularize"; });
    CHECK(passes.size() == 1);  // 6 iterations: one whole pass of 4, then 2
    run = run_prune(base, dir / "after", "--method l1+kernorth --epochs 1 --lr-schedule 0:0.01 " + kMlpPlan);
    REQUIRE_MESSAGE(run.status == 0, run.output);
  }

  TEST_CASE("tpp prune on a CNN: TPP's removal keeps the accuracy, ablations and OrthConv run") {
    REQUIRE_FASHION_MNIST();
    const TempDir dir;
    const auto base = save_base(dir, "resnet20");
    const std::string plan = "--stage-pr '*layer*.conv1:0.5' --epochs 0";
    // resnet20 has 20 conv/linear layers: S ≥ 20 zero-out intervals.
    const std::string tpp = "--reg-granularity 0.5 --reg-interval 1 --stabilize-iters 20 --zero-out-interval 1";
    Run run = run_prune(base, dir / "tpp", fmt::format("--method tpp {} {}", plan, tpp));
    REQUIRE_MESSAGE(run.status == 0, run.output);
    const Json removal = removal_of(read_log(dir / "tpp" / "log.jsonl"));
    CHECK(removal["test_acc"] == removal["test_acc_before"]);
    CHECK(removal["jsv"]["mean"].get<double>() > 0);
    for (const char* ablation : {"--reg-target diagonal", "--no-bn-reg", "--no-gram"}) {
      run = run_prune(base, dir / "ablation", fmt::format("--method tpp {} {} {} --overwrite", plan, tpp, ablation));
      CHECK_MESSAGE(run.status == 0, run.output);
    }
    run = run_prune(base, dir / "orthconv", "--method l1+orthconv --stage-pr '*layer*.conv1:0.5' --epochs 1");
    CHECK_MESSAGE(run.status == 0, run.output);
  }

  TEST_CASE("tpp prune: bad plans and bases are one-line errors, and no run directory appears") {
    const TempDir dir;
    const auto base = save_base(dir, "mlp7_linear");
    const auto out = dir / "run";
    const auto error = [&](const std::string& args, int status = 1) {
      const Run run = run_prune(base, out, args);
      CHECK(run.status == status);
      CHECK_FALSE(std::filesystem::exists(out));
      return run.output;
    };
    CHECK(error("--method tpp --stage-pr 'layer*.conv1:0.5'") ==
          "tpp: error: stage-pr 'layer*.conv1:0.5': the pattern 'layer*.conv1' matches no conv or linear layer of the "
          "model; its layers: net.0, net.2, net.4, net.6, net.8, net.10, net.12\n");
    CHECK(contains(error("--method tpp --stage-pr 'net.*:1.0'"), "1.0"));
    CHECK(error("--method tpp --stage-pr 'net.0:0.5' --skip-layers 'net.0'") ==
          "tpp: error: prune: --stage-pr 'net.0:0.5' with --skip-layers 'net.0' prunes no layer\n");
    CHECK(error("--method tpp --stage-pr 'net.0:0.5' --arch resnet20") ==
          fmt::format("tpp: error: prune: --base {} holds mlp7_linear, not --arch resnet20\n", base.string()));
    CHECK(error("--method magic --stage-pr 'net.0:0.5'", 2) ==
          "tpp: error: prune: unknown --method 'magic'; known methods: tpp, l1, l1+orthp, l1+kernorth, l1+orthconv, "
          "kernorth+l1, orthconv+l1, scratch\n");
    CHECK(error("--method tpp", 2) == "tpp: error: prune: --stage-pr is required (as a flag or in the --config file)\n");
  }
}
