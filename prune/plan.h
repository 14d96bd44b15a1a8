// Pruning plans (TPP-METHOD §2): which filters of which layers go.
//
// A layer's pruning ratio (PR) comes from name matching, as the paper's
// `--stage_pr` / `--skip_layers` (§2.4): a comma list of glob:ratio pairs,
// tested in order with the last match winning, and a comma list of globs that
// force PR 0. Globs have fnmatch semantics (`*`, `?`, `[...]`, `[!...]`;
// `*` crosses dots) over the PyTorch-style layer names ("layer1.0.conv1").
// A layer loses n = min(ceil(PR·N), floor(0.995·N)) of its N filters (§2.2),
// those with the smallest L1 scores (mean |w| per filter, §2.1) on the
// weights the plan is made from; the choice is made once.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "models/module.h"

namespace tpp::prune {

bool glob_match(std::string_view pattern, std::string_view text);

struct RatioRule {
  std::string pattern;
  double ratio = 0;
};

// "*layer[1-3]*conv[1-2]:0.3,*layer4*conv[1-2]:0.14" -> two rules. An empty
// spec has none; a malformed item or a ratio outside [0, 1) throws, naming the spec.
std::vector<RatioRule> parse_stage_pr(const std::string& spec);
// "*layer1.0.conv1,*layer2.0.conv1" -> two globs; empty -> none.
std::vector<std::string> parse_skip_layers(const std::string& spec);

// The ratio of the last rule matching `layer` (0 if none); 0 when a skip glob matches.
double layer_ratio(const std::string& layer, const std::vector<RatioRule>& rules,
                   const std::vector<std::string>& skip_layers);

// min(ceil(ratio·filters), floor(0.995·filters)), computed in IEEE double as
// the reference code does (0.07·100 = 7.000000000000001 prunes 8).
int64_t pruned_count(double ratio, int64_t filters);

// f64 [N]: the mean |w| of each filter (row along dim 0) of a conv or linear weight.
Tensor filter_scores(const Tensor& weight);

// Sorted indices of the `count` smallest scores; among equal scores the lower
// index goes first (stable ascending order).
std::vector<int64_t> smallest_scores(const Tensor& scores, int64_t count);

struct LayerPlan {
  std::string name;
  int64_t exec_index = 0;  // position among conv/linear layers in forward order
  double ratio = 0;
  int64_t total = 0;                  // filters before pruning
  std::vector<int64_t> pruned, kept;  // sorted, disjoint, together 0..total-1
  std::string batch_norm;             // the BN over its output channels ("" when none)
  int64_t width() const { return static_cast<int64_t>(kept.size()); }
};

struct PlanSpec {
  std::string stage_pr{}, skip_layers{};
};

struct PrunePlan {
  std::vector<LayerPlan> layers;                       // every conv and linear layer, in forward order
  std::map<std::string, int64_t> widths() const;       // kept width of every layer
  std::map<std::string, Tensor> kept_indices() const;  // i64 kept indices of the layers that lose filters
  const LayerPlan& layer(const std::string& name) const;
  int64_t pruned_layers() const;
};

// The plan for `model` with its current weights. Throws when a glob matches
// no conv/linear layer (a typo), or when a layer whose filters cannot be
// removed (models::LayerLink::refusal) gets a PR above 0.
PrunePlan make_plan(models::Module& model, const PlanSpec& spec);

}  // namespace tpp::prune
