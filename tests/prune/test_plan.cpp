// Pruning plans: globs with fnmatch semantics, the stage-pr / skip-layers
// specs, the filter counts of TPP-METHOD §2.2 and the kept widths of §2.7.
#include <doctest/doctest.h>

#include "models/layers.h"
#include "models/zoo.h"
#include "prune/plan.h"

using namespace tpp;
using namespace tpp::prune;

namespace {

// The plan of `arch` at full width with untouched (zero) weights: the counts
// do not depend on the values.
PrunePlan plan_for(const std::string& arch, int64_t classes, const std::string& stage_pr,
                   const std::string& skip = "") {
  const models::SkipInit no_values;
  auto model = models::make_model(arch, classes);
  return make_plan(*model, {.stage_pr = stage_pr, .skip_layers = skip});
}

// Kept width by original width over the layers matching `glob` (all layers
// of one original width must agree), and whether every other layer is whole.
std::map<int64_t, int64_t> widths_by_total(const PrunePlan& plan, const std::string& glob) {
  std::map<int64_t, int64_t> out;
  for (const LayerPlan& l : plan.layers) {
    if (!glob_match(glob, l.name)) {
      CHECK_MESSAGE(l.pruned.empty(), l.name << " should keep all its filters");
      continue;
    }
    const auto inserted = out.emplace(l.total, l.width());
    const auto it = inserted.first;
    CHECK_MESSAGE(it->second == l.width(), l.name << " keeps " << l.width() << ", not " << it->second);
  }
  return out;
}

}  // namespace

TEST_SUITE("prune") {
  TEST_CASE("glob_match: fnmatch semantics over layer names") {
    CHECK(glob_match("*layer*.conv1", "layer1.0.conv1"));
    CHECK(glob_match("*layer*.conv1", "module.layer3.8.conv1"));  // DataParallel prefix
    CHECK_FALSE(glob_match("*layer*.conv1", "conv1"));
    CHECK_FALSE(glob_match("*layer*.conv1", "layer1.0.conv10"));
    CHECK(glob_match("*layer[1-3]*conv[1-2]", "layer2.3.conv2"));
    CHECK_FALSE(glob_match("*layer[1-3]*conv[1-2]", "layer4.0.conv1"));
    CHECK_FALSE(glob_match("*layer[1-3]*conv[1-2]", "layer1.0.conv3"));
    CHECK_FALSE(glob_match("*layer[1-3]*conv[1-2]", "layer1.0.downsample.0"));
    CHECK(glob_match("*features.0", "features.0"));
    CHECK_FALSE(glob_match("*features.0", "features.10"));
    CHECK(glob_match("*features*", "features.40"));
    CHECK(glob_match("?onv1", "conv1"));
    CHECK(glob_match("*", ""));
    CHECK(glob_match("a*b*c", "abxbc"));
    CHECK_FALSE(glob_match("a*b*c", "abxbcx"));
    CHECK(glob_match("[ab]*[0-9]", "b.7"));
  }

  TEST_CASE("glob_match: character classes as fnmatch reads them") {
    CHECK_FALSE(glob_match("conv[!1]", "conv1"));
    CHECK(glob_match("conv[!1]", "conv2"));
    CHECK(glob_match("a[]]b", "a]b"));  // ']' first is a member
    CHECK(glob_match("a[!]]b", "axb"));
    CHECK(glob_match("a[b", "a[b"));            // no closing ']': a literal '['
    CHECK_FALSE(glob_match("a[z-a]b", "amb"));  // an inverted range matches nothing
    CHECK(glob_match("a[-x]b", "a-b"));         // '-' first or last is literal
    CHECK(glob_match("a[x-]b", "a-b"));
    CHECK(glob_match("layer[1-24]", "layer4"));
    CHECK_FALSE(glob_match("layer[1-24]", "layer3"));
  }

  TEST_CASE("parse_stage_pr: comma list of pattern:ratio, spaces ignored") {
    const auto rules = parse_stage_pr("*layer[1-3]*conv[1-2]:0.3, *layer4*conv[1-2]:0.14");
    REQUIRE(rules.size() == 2);
    CHECK(rules[0].pattern == "*layer[1-3]*conv[1-2]");
    CHECK(rules[0].ratio == 0.3);
    CHECK(rules[1].pattern == "*layer4*conv[1-2]");
    CHECK(rules[1].ratio == 0.14);
    CHECK(parse_stage_pr("").empty());
    CHECK(parse_stage_pr("*:0").at(0).ratio == 0);
  }

  TEST_CASE("parse_stage_pr: malformed items and ratios outside 0..1 name the spec") {
    CHECK_THROWS_WITH(parse_stage_pr("*conv1"), "stage-pr '*conv1': the item '*conv1' is not pattern:ratio");
    CHECK_THROWS_WITH(parse_stage_pr(":0.5"), "stage-pr ':0.5': the item ':0.5' is not pattern:ratio");
    CHECK_THROWS_WITH(parse_stage_pr("a:0.5,,b:0.1"), "stage-pr 'a:0.5,,b:0.1': the item '' is not pattern:ratio");
    CHECK_THROWS_WITH(parse_stage_pr("*conv1:1.0"),
                      "stage-pr '*conv1:1.0': the ratio '1.0' of '*conv1' must be a number in [0, 1)");
    CHECK_THROWS_WITH(parse_stage_pr("*conv1:-0.1"),
                      "stage-pr '*conv1:-0.1': the ratio '-0.1' of '*conv1' must be a number in [0, 1)");
    CHECK_THROWS_WITH(parse_stage_pr("*conv1:0.5x"),
                      "stage-pr '*conv1:0.5x': the ratio '0.5x' of '*conv1' must be a number in [0, 1)");
    CHECK_THROWS_WITH(parse_stage_pr("*conv1:"),
                      "stage-pr '*conv1:': the ratio '' of '*conv1' must be a number in [0, 1)");
    CHECK_THROWS_WITH(parse_stage_pr("*conv1:nan"),
                      "stage-pr '*conv1:nan': the ratio 'nan' of '*conv1' must be a number in [0, 1)");
  }

  TEST_CASE("layer_ratio: the last matching rule wins, a skip glob forces 0") {
    const auto rules = parse_stage_pr("*layer*:0.5,*layer2*:0.7,*nothing*:0.1");
    const auto skips = parse_skip_layers("*layer1.0.conv1");
    CHECK(layer_ratio("layer2.1.conv1", rules, skips) == 0.7);
    CHECK(layer_ratio("layer3.1.conv1", rules, skips) == 0.5);
    CHECK(layer_ratio("layer1.0.conv1", rules, skips) == 0);
    CHECK(layer_ratio("fc", rules, skips) == 0);
  }

  TEST_CASE("pruned_count: min(ceil(PR·N), floor(0.995·N)) in IEEE double") {
    CHECK(pruned_count(0.5, 16) == 8);
    CHECK(pruned_count(0.1, 64) == 7);     // 6.4 -> 7
    CHECK(pruned_count(0.7, 512) == 359);  // 358.4 -> 359
    CHECK(pruned_count(0.95, 16) == 15);   // ceil 16, capped at floor(15.92)
    CHECK(pruned_count(0.999, 16) == 15);
    CHECK(pruned_count(0.5, 1) == 0);  // a 1-wide layer never goes
    CHECK(pruned_count(0, 64) == 0);
    CHECK(pruned_count(0.07, 100) == 8);  // 0.07·100 = 7.000000000000001 in double
    CHECK(pruned_count(0.55, 100) == 56);
  }

  TEST_CASE("filter_scores: mean |w| per filter, smallest_scores: the lowest, stable on ties, sorted") {
    const Tensor w = from_vector<float>({1, 1, 0.1f, -0.1f, -3, 0, 0.5f, -0.5f}, {4, 2});
    const std::vector<double> s = filter_scores(w).to_vector<double>();
    CHECK(s[0] == doctest::Approx(1.0));
    CHECK(s[1] == doctest::Approx(0.1));
    CHECK(s[2] == doctest::Approx(1.5));
    CHECK(s[3] == doctest::Approx(0.5));
    CHECK(smallest_scores(filter_scores(w), 2) == std::vector<int64_t>{1, 3});
    const Tensor conv = from_vector<float>({2, 2, 2, 2, 1, 1, 1, -1, 0, 0, 0, 4}, {3, 1, 2, 2});
    CHECK(smallest_scores(filter_scores(conv), 1) == std::vector<int64_t>{1});  // scores 2, 1, 1
    const Tensor ties = from_vector<double>({1, 0.5, 0.5, 2}, {4});
    CHECK(smallest_scores(ties, 1) == std::vector<int64_t>{1});
    CHECK(smallest_scores(ties, 3) == std::vector<int64_t>{0, 1, 2});
  }

  TEST_CASE("make_plan: the pruned filters are the smallest L1 scores of the model's weights") {
    auto model = models::make_model("resnet20", 10);
    const PrunePlan plan = make_plan(*model, {.stage_pr = "*layer*.conv1:0.5"});
    CHECK(plan.layers.size() == 20);
    CHECK(plan.pruned_layers() == 9);
    const LayerPlan& l = plan.layer("layer2.1.conv1");
    CHECK(l.ratio == 0.5);
    CHECK(l.total == 32);
    CHECK(l.pruned.size() == 16);
    CHECK(l.kept.size() == 16);
    for (const auto& [name, m] : model->named_modules())
      if (name == "layer2.1.conv1")
        CHECK(l.pruned == smallest_scores(filter_scores(dynamic_cast<models::Conv2d&>(*m).weight), 16));
    CHECK(plan.layer("conv1").pruned.empty());
    CHECK(plan.kept_indices().size() == 9);
    CHECK(plan.kept_indices().at("layer2.1.conv1").to_vector<int64_t>() == l.kept);
    CHECK(plan.widths().at("fc") == 10);
  }

  TEST_CASE("make_plan: a layer that cannot lose filters, or a pattern matching nothing, is an error") {
    const models::SkipInit no_values;
    auto model = models::make_model("resnet20", 10);
    CHECK_THROWS_WITH(
        make_plan(*model, {.stage_pr = "*conv*:0.5"}),
        "stage-pr '*conv*:0.5' gives 'conv1' the ratio 0.5, but its filters cannot be removed: its output "
        "feeds a residual sum ('add') (exclude it with `skip_layers`)");
    const std::string layers =
        "conv1, layer1.0.conv1, layer1.0.conv2, layer1.1.conv1, layer1.1.conv2, layer1.2.conv1, layer1.2.conv2, "
        "layer2.0.conv1, layer2.0.conv2, layer2.1.conv1, layer2.1.conv2, layer2.2.conv1, layer2.2.conv2, "
        "layer3.0.conv1, layer3.0.conv2, layer3.1.conv1, layer3.1.conv2, layer3.2.conv1, layer3.2.conv2, fc";
    CHECK_THROWS_WITH(make_plan(*model, {.stage_pr = "*layr*:0.5"}),
                      ("stage-pr '*layr*:0.5': the pattern '*layr*' matches no conv or linear layer of the model; its "
                       "layers: " + layers).c_str());
    CHECK_THROWS_WITH(make_plan(*model, {.stage_pr = "*layer*.conv1:0.5", .skip_layers = "*layer9*"}),
                      ("skip-layers '*layer9*': the pattern '*layer9*' matches no conv or linear layer of the model; "
                       "its layers: " + layers).c_str());
    // A layer named outright is taken out of the plan, not skipped.
    CHECK_THROWS_WITH(make_plan(*model, {.stage_pr = "*layer*.conv1:0.5,conv1:0.5"}),
                      "stage-pr '*layer*.conv1:0.5,conv1:0.5': the filters of 'conv1' cannot be removed: its output "
                      "feeds a residual sum ('add'); remove 'conv1:0.5' from `stage_pr`");
    // Skipping the refused layers makes the same spec valid.
    CHECK(make_plan(*model, {.stage_pr = "*conv*:0.5", .skip_layers = "conv1,*conv2"}).pruned_layers() == 9);
  }

  TEST_CASE("kept widths, ResNet56 (TPP-METHOD §2.7): block conv1 of stages 1/2/3") {
    const std::vector<std::pair<double, std::vector<int64_t>>> table{
        {0.3, {11, 22, 44}}, {0.5, {8, 16, 32}}, {0.7, {4, 9, 19}}, {0.9, {1, 3, 6}}, {0.95, {1, 1, 3}}};
    for (const auto& entry : table) {
      const auto& pr = entry.first;
      const auto& widths = entry.second;
      CAPTURE(pr);
      const PrunePlan plan = plan_for("resnet56", 10, fmt::format("*layer*.conv1:{}", pr));
      CHECK(plan.pruned_layers() == 27);
      CHECK(widths_by_total(plan, "layer*.conv1") ==
            std::map<int64_t, int64_t>{{16, widths[0]}, {32, widths[1]}, {64, widths[2]}});
    }
  }

  TEST_CASE("kept widths, VGG19 on CIFAR-100 (TPP-METHOD §2.7): layers 2-16 of width 64/128/256/512") {
    const std::vector<std::pair<double, std::vector<int64_t>>> table{{0.1, {57, 115, 230, 460}},
                                                                     {0.3, {44, 89, 179, 358}},
                                                                     {0.5, {32, 64, 128, 256}},
                                                                     {0.7, {19, 38, 76, 153}},
                                                                     {0.9, {6, 12, 25, 51}}};
    for (const auto& entry : table) {
      const auto& pr = entry.first;
      const auto& widths = entry.second;
      CAPTURE(pr);
      const PrunePlan plan = plan_for("vgg19", 100, fmt::format("*features*:{}", pr), "*features.0");
      CHECK(plan.pruned_layers() == 15);
      CHECK(widths_by_total(plan, "features.[1-9]*") ==
            std::map<int64_t, int64_t>{{64, widths[0]}, {128, widths[1]}, {256, widths[2]}, {512, widths[3]}});
      CHECK(plan.layer("features.0").width() == 64);
    }
  }

  TEST_CASE("kept widths, ResNet50 (TPP-METHOD §2.7): block conv1 and conv2 of layer1..4, four configs") {
    const std::vector<std::pair<std::string, std::vector<int64_t>>> table{
        {"*layer[1-3]*conv[1-2]:0.3,*layer4*conv[1-2]:0.14", {44, 89, 179, 440}},
        {"*layer[1-3]*conv[1-2]:0.6,*layer4*conv[1-2]:0.21", {25, 51, 102, 404}},
        {"*layer[1-2]*conv[1-2]:0.74,*layer3*conv[1-2]:0.6,*layer4*conv[1-2]:0.21", {16, 33, 102, 404}},
        {"*layer[1-3]*conv[1-2]:0.68,*layer4*conv[1-2]:0.5", {20, 40, 81, 256}}};
    for (const auto& entry : table) {
      const auto& spec = entry.first;
      const auto& widths = entry.second;
      CAPTURE(spec);
      const PrunePlan plan = plan_for("resnet50", 1000, spec);
      CHECK(plan.pruned_layers() == 32);
      CHECK(widths_by_total(plan, "layer*.conv[12]") ==
            std::map<int64_t, int64_t>{{64, widths[0]}, {128, widths[1]}, {256, widths[2]}, {512, widths[3]}});
    }
  }

  TEST_CASE("kept widths, ResNet34 1.32x config (TPP-METHOD §2.6/2.7): 32/51/153, five blocks skipped") {
    const PrunePlan plan = plan_for("resnet34", 1000, "*layer1*conv1:0.5,*layer2*conv1:0.6,*layer3*conv1:0.4",
                                    "*layer1.0.conv1,*layer2.0.conv1,*layer2.3.conv1,*layer3.0.conv1,*layer3.5.conv1");
    CHECK(plan.pruned_layers() == 2 + 2 + 4);
    CHECK(plan.layer("layer1.1.conv1").width() == 32);
    CHECK(plan.layer("layer1.2.conv1").width() == 32);
    CHECK(plan.layer("layer2.1.conv1").width() == 51);
    CHECK(plan.layer("layer3.4.conv1").width() == 153);
    for (const char* skipped :
         {"layer1.0.conv1", "layer2.0.conv1", "layer2.3.conv1", "layer3.0.conv1", "layer3.5.conv1"})
      CHECK(plan.layer(skipped).pruned.empty());
    CHECK(plan.layer("layer4.1.conv1").width() == 512);
  }

}  // TEST_SUITE
