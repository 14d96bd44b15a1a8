// Sparsity and speedup as the paper counts them (TPP-METHOD §2.8).
#include <doctest/doctest.h>
#include <fmt/format.h>

#include "models/layers.h"
#include "models/zoo.h"
#include "prune/analysis.h"
#include "prune/plan.h"

using namespace tpp;
using namespace tpp::prune;

namespace {

PruneAnalysis analyze(const std::string& arch, int64_t classes, const Shape& input, const std::string& stage_pr,
                      const std::string& skip = "") {
  const models::SkipInit no_values;
  auto model = models::make_model(arch, classes);
  const PrunePlan plan = make_plan(*model, {.stage_pr = stage_pr, .skip_layers = skip});
  return analyze_widths(arch, classes, 3, input, plan.widths());
}

std::string percent(double fraction) { return fmt::format("{:.2f}", 100 * fraction); }
std::string times(double ratio) { return fmt::format("{:.2f}", ratio); }

}  // namespace

TEST_SUITE("prune") {
  TEST_CASE("compare_counts: sparsity in both conventions and the FLOP speedup") {
    const PruneAnalysis a = compare_counts({.params = 1000, .params_with_bn = 1100, .flops = 4000},
                                           {.params = 250, .params_with_bn = 330, .flops = 1000});
    CHECK(a.sparsity == 0.75);
    CHECK(a.sparsity_with_bn == 0.7);
    CHECK(a.speedup == 4);
  }

  TEST_CASE("ResNet56 on CIFAR-10 (TPP-METHOD §2.8): sparsity / speedup of the paper's five ratios") {
    struct Row {
      double pr;
      const char *sparsity, *speedup, *sparsity_with_bn;
    };
    const std::vector<Row> rows{{0.3, "31.21", "1.45", "31.14"},
                                {0.5, "49.94", "1.99", "49.82"},
                                {0.7, "70.75", "3.59", "70.58"},
                                {0.9, "90.66", "11.58", "90.45"},
                                {0.95, "95.41", "19.85", "95.18"}};
    for (const Row& row : rows) {
      CAPTURE(row.pr);
      const PruneAnalysis a = analyze("resnet56", 10, {3, 32, 32}, fmt::format("*layer*.conv1:{}", row.pr));
      CHECK(a.dense.params == 848954);
      CHECK(a.dense.params_with_bn == 853018);
      CHECK(a.dense.flops == 250971392);
      CHECK(percent(a.sparsity) == row.sparsity);
      CHECK(times(a.speedup) == row.speedup);
      CHECK(percent(a.sparsity_with_bn) == row.sparsity_with_bn);
    }
  }

  TEST_CASE("ResNet34 on ImageNet, the inferred 1.32x config (TPP-METHOD §2.6) gives 1.32x") {
    const PruneAnalysis a =
        analyze("resnet34", 1000, {3, 224, 224}, "*layer1*conv1:0.5,*layer2*conv1:0.6,*layer3*conv1:0.4",
                "*layer1.0.conv1,*layer2.0.conv1,*layer2.3.conv1,*layer3.0.conv1,*layer3.5.conv1");
    CHECK(times(a.speedup) == "1.32");
    CHECK(a.pruned.params < a.dense.params);
  }

}  // TEST_SUITE
