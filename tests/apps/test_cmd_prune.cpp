// `tpp prune` end to end: runs the built `tpp` program and reads its output.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/autograd.h"
#include "engine/philox.h"
#include "engine/safetensors.h"
#include "models/checkpoint.h"
#include "models/layers.h"
#include "models/summary.h"
#include "models/surgery.h"
#include "models/zoo.h"
#include "prune/analysis.h"
#include "prune/oneshot.h"
#include "tests/apps/run_tpp.h"
#include "tests/data/data_test_util.h"

using namespace tpp;
using tpp::testing::TempDir;
using Run = tpp::testing::TppRun;
using tpp::testing::run_tpp;

namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A resnet20 checkpoint with BN statistics away from their defaults.
// (1-channel, for Fashion-MNIST: the pipeline evaluates on real data.)
std::filesystem::path save_base(const TempDir& dir) {
  manual_seed(5);
  auto net = models::make_model("resnet20", 10, 1);
  {
    const NoGradGuard no_grad;
    for (auto& [name, m] : net->named_modules())
      if (auto* bn = dynamic_cast<models::BatchNorm2d*>(m)) {
        bn->running_mean.copy_(uniform({bn->running_mean.numel()}, -0.3, 0.3));
        bn->bias.copy_(uniform({bn->bias.numel()}, -0.3, 0.3));
      }
  }
  const auto path = dir / "base.safetensors";
  models::save_checkpoint(path, *net,
                          {.arch = "resnet20", .dataset = "fashion-mnist", .num_classes = 10, .in_channels = 1});
  return path;
}

// An untrained mlp7_linear checkpoint for Fashion-MNIST, seeded.
std::filesystem::path save_mlp_base(const TempDir& dir, uint64_t seed) {
  manual_seed(seed);
  const auto path = dir / "mlp7_linear.safetensors";
  models::save_checkpoint(path, *models::make_model("mlp7_linear", 10, 1),
                          {.arch = "mlp7_linear", .dataset = "fashion-mnist", .num_classes = 10, .in_channels = 1});
  return path;
}

Tensor eval_forward(models::Module& model, const Tensor& x) {
  model.eval();
  const NoGradGuard no_grad;
  return model(x);
}

}  // namespace

TEST_SUITE("apps") {
  TEST_CASE("tpp prune --dry-run --json: resnet56 at PR 0.9 keeps 1/3/6 and gives 90.66% / 11.58x") {
    const Run run = run_tpp("prune --dry-run --arch resnet56 --dataset cifar10 --stage-pr '*layer*.conv1:0.9' --json");
    REQUIRE(run.status == 0);
    const auto out = nlohmann::ordered_json::parse(run.output);
    std::vector<std::string> keys;
    for (const auto& [key, value] : out.items()) keys.push_back(key);
    CHECK(keys == std::vector<std::string>{"layers", "dense", "pruned", "sparsity", "sparsity_with_bn", "speedup"});
    REQUIRE(out["layers"].size() == 56);
    CHECK(out["layers"][1] == nlohmann::ordered_json({{"name", "layer1.0.conv1"}, {"total", 16}, {"kept", 1}}));
    CHECK(out["layers"][21]["name"] == "layer2.1.conv1");
    CHECK(out["layers"][21]["kept"] == 3);
    CHECK(out["layers"][53]["kept"] == 6);
    CHECK(out["dense"] ==
          nlohmann::ordered_json({{"params", 848954}, {"params_with_bn", 853018}, {"flops", 250971392}}));
    CHECK(fmt::format("{:.2f}", 100 * out["sparsity"].get<double>()) == "90.66");
    CHECK(fmt::format("{:.2f}", 100 * out["sparsity_with_bn"].get<double>()) == "90.45");
    CHECK(fmt::format("{:.2f}", out["speedup"].get<double>()) == "11.58");
  }

  TEST_CASE("tpp prune --dry-run: the table lists kept/total per layer and ends with sparsity and speedup") {
    const Run run = run_tpp("prune --dry-run --arch resnet56 --dataset cifar10 --stage-pr '*layer*.conv1:0.5'");
    REQUIRE(run.status == 0);
    CHECK(contains(run.output, "27 of 56 layers pruned"));
    CHECK(contains(run.output, "layer1.0.conv1    0.5       8 / 16\n"));
    CHECK(contains(run.output, "layer1.0.conv2      -      16 / 16\n"));
    CHECK(contains(run.output, "sparsity 49.94%"));
    CHECK(contains(run.output, "sparsity 49.82% (BN gamma, beta counted)"));
    CHECK(contains(run.output, "speedup 1.99x"));
  }

  TEST_CASE("tpp prune: a bad stage-pr or a residual layer is a one-line error") {
    Run run = run_tpp("prune --dry-run --arch resnet56 --dataset cifar10 --stage-pr '*layer*.conv1:1.5'");
    CHECK(run.status == 2);
    CHECK(run.output ==
          "tpp: error: stage-pr '*layer*.conv1:1.5': the ratio '1.5' of '*layer*.conv1' must be a number in [0, 1)\n");
    run = run_tpp("prune --dry-run --arch resnet56 --dataset cifar10 --stage-pr '*conv2:0.5'");
    CHECK(run.status == 2);
    CHECK(run.output ==
          "tpp: error: stage-pr '*conv2:0.5' gives 'layer1.0.conv2' the ratio 0.5, but its filters cannot be removed: "
          "its output feeds a residual sum ('add') (exclude it with --skip-layers)\n");
  }

  TEST_CASE("tpp prune --method l1 --epochs 0: pruned.safetensors reloads without the plan, equals in-process pruning") {
    REQUIRE_FASHION_MNIST();
    const TempDir dir;
    const auto base = save_base(dir);
    const auto run_dir = dir / "run";
    const Run run = run_tpp(fmt::format("prune --method l1 --base {} --out {} --stage-pr '*layer*.conv1:0.5' --epochs 0 "
                                        "--limit 100 --test-limit 50 --batch-size 50 --workers 0",
                                        base.string(), run_dir.string()));
    REQUIRE_MESSAGE(run.status == 0, run.output);
    CHECK(contains(run.output, "removed filters of 9 layers"));

    const models::Checkpoint ckpt = models::read_checkpoint(run_dir / "pruned.safetensors");
    CHECK(ckpt.info.arch == "resnet20");
    CHECK(ckpt.info.dataset == "fashion-mnist");
    CHECK(ckpt.info.widths.at("layer1.0.conv1") == 8);
    CHECK(ckpt.info.widths.at("layer3.2.conv1") == 32);
    CHECK(ckpt.info.widths.at("layer3.2.conv2") == 64);
    CHECK(ckpt.info.extra.at("prune.method") == "l1");
    const auto pruned = models::build_model(ckpt);
    CHECK(models::layer_widths(*pruned) == ckpt.info.widths);

    const auto reference = models::build_model(models::read_checkpoint(base));
    const prune::OneShotResult expected = prune::prune_l1(*reference, {.stage_pr = "*layer*.conv1:0.5"}, {1, 28, 28});
    const Tensor x = randn({2, 1, 28, 28});
    CHECK(eval_forward(*pruned, x).to_vector<float>() == eval_forward(*reference, x).to_vector<float>());

    // FLOPs: the reloaded model costs what the plan's widths say, about half the dense model.
    const prune::PruneAnalysis counted =
        prune::compare_models(*models::build_model(models::read_checkpoint(base)), *pruned, {1, 28, 28});
    CHECK(counted.pruned.flops == expected.analysis.pruned.flops);
    CHECK(counted.speedup > 1.8);
    CHECK(counted.speedup < 2.0);
  }

  TEST_CASE("tpp forward runs a pruned checkpoint") {
    REQUIRE_FASHION_MNIST();
    const TempDir dir;
    const auto base = save_base(dir);
    const auto run_dir = dir / "run";
    const Run pruning = run_tpp(fmt::format("prune --method l1 --base {} --out {} --stage-pr '*layer*.conv1:0.7' "
                                            "--epochs 0 --limit 100 --test-limit 50 --batch-size 50 --workers 0",
                                            base.string(), run_dir.string()));
    REQUIRE_MESSAGE(pruning.status == 0, pruning.output);
    const auto out = run_dir / "pruned.safetensors";
    const Tensor x = randn({3, 1, 28, 28});
    save_safetensors(dir / "x.safetensors", {{"input", x}});
    const Run run = run_tpp(fmt::format("forward --checkpoint {} --input {} --output {}", out.string(),
                                        (dir / "x.safetensors").string(), (dir / "y.safetensors").string()));
    REQUIRE_MESSAGE(run.status == 0, run.output);
    const Tensor y = load_safetensors(dir / "y.safetensors").tensors.at("output");
    const auto pruned = models::build_model(models::read_checkpoint(out));
    CHECK(y.to_vector<float>() == eval_forward(*pruned, x).to_vector<float>());
  }

  TEST_CASE("configs/prune: every paper setting is a valid config whose plan the dry run counts") {
    int checked = 0;
    for (const auto& entry : std::filesystem::directory_iterator(std::filesystem::path(TPP_SOURCE_DIR) / "configs/prune")) {
      const std::string file = entry.path().filename().string();
      const std::string arch = file.substr(0, file.find('-'));
      const Run run = run_tpp(fmt::format("prune --dry-run --json --config {} --arch {}", entry.path().string(), arch));
      INFO(file, ": ", run.output);
      REQUIRE(run.status == 0);
      const auto report = nlohmann::json::parse(run.output);
      CHECK(report["speedup"].get<double>() > 1.0);
      ++checked;
    }
    CHECK(checked == 16);
  }

  TEST_CASE("tpp prune: bad plans and bases are one-line errors naming the flags, and no run directory appears") {
    const TempDir dir;
    const auto base = save_mlp_base(dir, 11);
    const auto out = dir / "run";
    // Exit 2 for a setting that cannot work, 1 for one the model or the checkpoint refuses.
    const auto error = [&](const std::string& args, int status = 1) {
      const Run run = run_tpp(fmt::format("prune --base {} --out {} {}", base.string(), out.string(), args));
      CHECK(run.status == status);
      CHECK_FALSE(std::filesystem::exists(out));
      return run.output;
    };
    CHECK(error("--method tpp --stage-pr 'layer*.conv1:0.5'", 2) ==
          "tpp: error: stage-pr 'layer*.conv1:0.5': the pattern 'layer*.conv1' matches no conv or linear layer of the "
          "model; its layers: net.0, net.2, net.4, net.6, net.8, net.10, net.12\n");
    CHECK(contains(error("--method tpp --stage-pr 'net.*:1.0'", 2), "1.0"));
    CHECK(error("--method tpp --stage-pr 'net.0:0.5' --skip-layers 'net.0'", 2) ==
          "tpp: error: prune: --stage-pr 'net.0:0.5' with --skip-layers 'net.0' prunes no layer\n");
    CHECK(error("--method tpp --stage-pr 'net.0:0.5' --arch resnet20") ==
          fmt::format("tpp: error: prune: --base {} holds mlp7_linear, not --arch resnet20\n", base.string()));
    CHECK(error("--method magic --stage-pr 'net.0:0.5'", 2) ==
          "tpp: error: prune: unknown --method 'magic'; known methods: tpp, l1, l1+orthp, l1+kernorth, l1+orthconv, "
          "kernorth+l1, orthconv+l1, scratch\n");
    CHECK(error("--method tpp", 2) == "tpp: error: prune: --stage-pr is required (as a flag or in the --config file)\n");
  }

  TEST_CASE("tpp prune: a stabilisation too short for the plan is refused before the run directory, counting pruned layers") {
    REQUIRE_FASHION_MNIST();
    const TempDir dir;
    const auto base = save_mlp_base(dir, 12);
    const auto out = dir / "run";
    const std::string recipe = fmt::format(
        "prune --base {} --out {} --stage-pr 'net.0:0.5,net.10:0.5' --reg-granularity 0.5 --reg-interval 2 "
        "--epochs 1 --limit 64 --test-limit 32 --batch-size 32 --workers 0 --zero-out-interval 10",
        base.string(), out.string());
    const Run refused = run_tpp(recipe + " --stabilize-iters 30");
    CHECK(refused.status == 2);
    CHECK(refused.output ==
          "tpp: error: --stabilize-iters 30 is too short for --zero-out-interval 10: the last of the 2 pruned layers, "
          "'net.10' (conv/linear layer 6 of 7 in forward order), is zeroed 60 iterations into stabilisation; give "
          "--stabilize-iters 60 or more, or a smaller --zero-out-interval\n");
    CHECK_FALSE(std::filesystem::exists(out));
    // The corrected command runs; its progress counts the phase's iterations, not epochs.
    const Run corrected = run_tpp(recipe + " --stabilize-iters 60");
    REQUIRE_MESSAGE(corrected.status == 0, corrected.output);
    CHECK(contains(corrected.output, "\nregularize 64/65  train loss "));  // the last pass ends with the phase, unevaluated
    CHECK_FALSE(contains(corrected.output, "epoch 1/33"));
  }

}  // TEST_SUITE
