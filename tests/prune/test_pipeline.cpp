// The pruning pipeline (prune/pipeline.h) of every method end to end, in
// process, on tiny runs (the first few hundred Fashion-MNIST images and
// schedules shortened to tens of iterations).
#include "prune/pipeline.h"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/philox.h"
#include "engine/safetensors.h"
#include "models/checkpoint.h"
#include "models/zoo.h"
#include "prune/jsv.h"
#include "tests/apps/run_tpp.h"
#include "tests/data/data_test_util.h"

using namespace tpp;
using tpp::testing::TempDir;
using Json = nlohmann::json;

namespace {

const bool kPassiveOpenMp = ::setenv("OMP_WAIT_POLICY", "passive", 0) == 0;

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

// A tiny run of `method` on `base` into `out`: the first 200 training and 100
// test images in batches of 50, one process, no live progress line.
prune::PipelineConfig tiny_run(const std::filesystem::path& base, const std::filesystem::path& out,
                               prune::MethodId method) {
  prune::PipelineConfig c;
  c.base = base.string();
  c.out = out.string();
  c.method = method;
  c.limit = 200, c.test_limit = 100, c.batch_size = 50, c.workers = 0;
  c.distributed = models::DistributedMode::off;
  c.live_progress = false;
  return c;
}

// mlp7_linear's hidden layers at PR 0.5.
void mlp_plan(prune::PipelineConfig& c) {
  c.stage_pr = "net.*:0.5";
  c.skip_layers = "net.12";
}

// λ grows 0.25 every 2 iterations to 1 (t* = 8), then 14 iterations of
// stabilisation zero one layer every 2: 23 iterations.
void short_tpp(prune::PipelineConfig& c) {
  c.reg_granularity = 0.25, c.reg_interval = 2, c.stabilize_iters = 14, c.zero_out_interval = 2, c.log_interval = 1;
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

TEST_SUITE("prune.pipeline") {
  TEST_CASE("tpp: the penalty log follows the schedule, removal is lossless, retraining logs JSV") {
    REQUIRE_FASHION_MNIST();
    const TempDir dir;
    const auto out = dir / "run";
    prune::PipelineConfig c = tiny_run(save_base(dir, "mlp7_linear"), out, prune::MethodId::tpp);
    mlp_plan(c);
    short_tpp(c);
    c.epochs = 2;
    c.lr_schedule = LrSchedule::parse_milestones("0:0.01");
    c.config_toml = "method=\"tpp\"\n";
    prune::run_pipeline(c);
    for (const char* file : {"config.toml", "log.jsonl", "last.safetensors", "best.safetensors", "pruned.safetensors",
                             "summary.json", "report.html"})
      CHECK_MESSAGE(std::filesystem::exists(out / file), file);
    std::ifstream config_file(out / "config.toml");
    CHECK(std::string(std::istreambuf_iterator<char>(config_file), {}) == c.config_toml);

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
  }

  TEST_CASE("a resumed finished run with more epochs continues retraining to the same bits") {
    REQUIRE_FASHION_MNIST();
    const TempDir dir;
    const auto base = save_base(dir, "mlp7_linear");
    const auto run = [&](const std::filesystem::path& out, int64_t epochs) {
      prune::PipelineConfig c = tiny_run(base, out, prune::MethodId::tpp);
      mlp_plan(c);
      short_tpp(c);
      c.lr_schedule = LrSchedule::parse_milestones("0:0.01,2:0.001");
      c.epochs = epochs;
      return c;
    };
    prune::run_pipeline(run(dir / "straight", 3));
    prune::run_pipeline(run(dir / "split", 1));
    prune::PipelineConfig resumed = run("", 3);
    resumed.resume = (dir / "split").string();
    prune::run_pipeline(resumed);
    CHECK(same_bits(model_tensors(dir / "straight" / "last.safetensors"),
                    model_tensors(dir / "split" / "last.safetensors")));
    CHECK(read_log(dir / "straight" / "log.jsonl").size() == read_log(dir / "split" / "log.jsonl").size());
  }

  TEST_CASE("l1+orthp: every singular value of the pruned linear MLP is 1") {
    REQUIRE_FASHION_MNIST();
    const TempDir dir;
    prune::PipelineConfig c = tiny_run(save_base(dir, "mlp7_linear"), dir / "run", prune::MethodId::l1_orthp);
    mlp_plan(c);
    c.epochs = 0;
    prune::run_pipeline(c);
    const Json removal = removal_of(read_log(dir / "run" / "log.jsonl"));
    CHECK(removal["jsv"]["mean"].get<double>() == doctest::Approx(1.0).epsilon(1e-6));
    CHECK(removal["jsv"]["max"].get<double>() == doctest::Approx(1.0).epsilon(1e-6));
    CHECK(removal["orthp_gain"].get<double>() == 1.0);
  }

  TEST_CASE("l1: L1 pruning of the linear MLP shrinks the mean JSV") {
    REQUIRE_FASHION_MNIST();
    const TempDir dir;
    const auto base = save_base(dir, "mlp7_linear");
    prune::PipelineConfig c = tiny_run(base, dir / "run", prune::MethodId::l1);
    mlp_plan(c);
    c.epochs = 0;
    prune::run_pipeline(c);
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

  TEST_CASE("scratch: the pruned widths with fresh weights") {
    REQUIRE_FASHION_MNIST();
    const TempDir dir;
    const auto base = save_base(dir, "mlp7_linear");
    prune::PipelineConfig c = tiny_run(base, dir / "run", prune::MethodId::scratch);
    mlp_plan(c);
    c.epochs = 1;
    c.lr_schedule = LrSchedule::parse_milestones("0:0.01");
    prune::run_pipeline(c);
    const auto pruned = model_tensors(dir / "run" / "pruned.safetensors");
    const auto dense = model_tensors(base);
    CHECK(pruned.at("net.0.weight").size(0) == 50);
    // Fresh weights: not a slice of the base's first layer.
    const std::vector<float> fresh = pruned.at("net.0.weight").to_vector<float>();
    const std::vector<float> old = dense.at("net.0.weight").to_vector<float>();
    CHECK_FALSE(std::equal(fresh.begin(), fresh.begin() + 1024, old.begin()));
  }

  TEST_CASE("kernorth+l1 trains the dense model first, l1+kernorth regularises the retraining") {
    REQUIRE_FASHION_MNIST();
    const TempDir dir;
    const auto base = save_base(dir, "mlp7_linear");
    prune::PipelineConfig before = tiny_run(base, dir / "before", prune::MethodId::kernorth_l1);
    mlp_plan(before);
    before.orth_reg_iters = 6;
    before.epochs = 0;
    prune::run_pipeline(before);
    const auto passes = lines_where(read_log(dir / "before" / "log.jsonl"),
                                    [](const Json& l) { return l["phase"] == "orth-regularize"; });
    CHECK(passes.size() == 1);  // 6 iterations: one whole pass of 4, then 2
    prune::PipelineConfig after = tiny_run(base, dir / "after", prune::MethodId::l1_kernorth);
    mlp_plan(after);
    after.epochs = 1;
    after.lr_schedule = LrSchedule::parse_milestones("0:0.01");
    prune::run_pipeline(after);
    CHECK(lines_where(read_log(dir / "after" / "log.jsonl"), [](const Json& l) { return l["phase"] == "retrain"; })
              .size() == 1);
  }

  TEST_CASE("on a CNN: TPP's removal keeps the accuracy, ablations and OrthConv run") {
    REQUIRE_FASHION_MNIST();
    const TempDir dir;
    const auto base = save_base(dir, "resnet20");
    const auto cnn_run = [&](const std::string& name, prune::MethodId method) {
      prune::PipelineConfig c = tiny_run(base, dir / name, method);
      c.stage_pr = "*layer*.conv1:0.5";
      c.epochs = 0;
      // resnet20 has 20 conv/linear layers: S ≥ 20 zero-out intervals.
      c.reg_granularity = 0.5, c.reg_interval = 1, c.stabilize_iters = 20, c.zero_out_interval = 1;
      return c;
    };
    prune::run_pipeline(cnn_run("tpp", prune::MethodId::tpp));
    const Json removal = removal_of(read_log(dir / "tpp" / "log.jsonl"));
    CHECK(removal["test_acc"] == removal["test_acc_before"]);
    CHECK(removal["jsv"]["mean"].get<double>() > 0);
    const std::vector<std::function<void(prune::PipelineConfig&)>> ablations = {
        [](prune::PipelineConfig& c) { c.reg_target = prune::GramTarget::diagonal; },
        [](prune::PipelineConfig& c) { c.no_bn_reg = true; },
        [](prune::PipelineConfig& c) { c.no_gram = true; }};
    for (const auto& ablate : ablations) {
      prune::PipelineConfig c = cnn_run("ablation", prune::MethodId::tpp);
      ablate(c);
      c.overwrite = true;
      CHECK_NOTHROW(prune::run_pipeline(c));
    }
    prune::PipelineConfig orthconv = cnn_run("orthconv", prune::MethodId::l1_orthconv);
    orthconv.epochs = 1;
    CHECK_NOTHROW(prune::run_pipeline(orthconv));
  }

  TEST_CASE("bad plans and bases are errors naming the settings, and no run directory appears") {
    const TempDir dir;
    const auto base = save_base(dir, "mlp7_linear");
    const auto out = dir / "run";
    const auto error = [&](const std::function<void(prune::PipelineConfig&)>& change) {
      prune::PipelineConfig c = tiny_run(base, out, prune::MethodId::tpp);
      change(c);
      std::string message;
      try {
        prune::run_pipeline(c);
      } catch (const Error& e) {
        message = e.what();
      }
      CHECK_FALSE(std::filesystem::exists(out));
      return message;
    };
    CHECK(error([](auto& c) { c.stage_pr = "layer*.conv1:0.5"; }) ==
          "stage-pr 'layer*.conv1:0.5': the pattern 'layer*.conv1' matches no conv or linear layer of the model; its "
          "layers: net.0, net.2, net.4, net.6, net.8, net.10, net.12");
    CHECK(error([](auto& c) { c.stage_pr = "net.*:1.0"; }).find("1.0") != std::string::npos);
    CHECK(error([](auto& c) { c.stage_pr = "net.0:0.5", c.skip_layers = "net.0"; }) ==
          "prune: `stage_pr` 'net.0:0.5' with `skip_layers` 'net.0' prunes no layer");
    CHECK(error([](auto& c) { c.stage_pr = "net.0:0.5", c.arch = "resnet20"; }) ==
          fmt::format("prune: `base` {} holds mlp7_linear, not `arch` resnet20", base.string()));
    CHECK(error([](auto& c) { c.stage_pr = "net.0:0.5", c.base.clear(); }) ==
          "prune: `method` tpp needs `base` CKPT (the trained model to prune)");
  }
}
