// One-shot L1 pruning: the model loses its lowest-L1 filters, costs what the
// plan's widths say, and saved with its widths it reloads without the plan.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include "engine/autograd.h"
#include "models/checkpoint.h"
#include "models/surgery.h"
#include "models/zoo.h"
#include "prune/oneshot.h"
#include "tests/data/data_test_util.h"

using namespace tpp;
using namespace tpp::prune;

TEST_SUITE("prune") {
  TEST_CASE("prune_l1: removes the plan's filters, counts agree with analyze_widths") {
    auto model = models::make_model("resnet56", 10);
    const OneShotResult r = prune_l1(*model, {.stage_pr = "*layer*.conv1:0.7"}, {3, 32, 32});
    CHECK(models::layer_widths(*model) == r.plan.widths());
    const PruneAnalysis expected = analyze_widths("resnet56", 10, 3, {3, 32, 32}, r.plan.widths());
    CHECK(r.analysis.dense.flops == expected.dense.flops);
    CHECK(r.analysis.pruned.flops == expected.pruned.flops);
    CHECK(r.analysis.pruned.params_with_bn == expected.pruned.params_with_bn);
    CHECK(fmt::format("{:.2f}", r.analysis.speedup) == "3.59");
  }

  TEST_CASE("prune_l1: a pruned model saved as a checkpoint reloads through build_model with identical outputs") {
    const tpp::testing::TempDir dir;
    auto model = models::make_model("vgg11", 100);
    prune_l1(*model, {.stage_pr = "*features*:0.6", .skip_layers = "features.0"}, {3, 32, 32});
    const auto path = dir / "vgg.safetensors";
    models::save_checkpoint(path, *model,
                            {.arch = "vgg11", .dataset = "cifar100", .num_classes = 100, .in_channels = 3});
    const auto reloaded = models::build_model(models::read_checkpoint(path));
    CHECK(models::layer_widths(*reloaded) == models::layer_widths(*model));
    model->eval();
    reloaded->eval();
    const NoGradGuard no_grad;
    const Tensor x = randn({2, 3, 32, 32});
    CHECK((*reloaded)(x).to_vector<float>() == (*model)(x).to_vector<float>());
  }

}  // TEST_SUITE
