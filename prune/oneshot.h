// One-shot pruning (the L1 baseline of TPP-METHOD §7.1 without its
// retraining): choose the filters by L1 norm on the model's weights, then
// remove them at once (models::keep_filters).
#pragma once

#include "prune/analysis.h"
#include "prune/plan.h"

namespace tpp::prune {

struct OneShotResult {
  PrunePlan plan;
  PruneAnalysis analysis;  // the model before and after, counted on one `input` sample
};

// Prunes `model` in place; `input` is one sample's shape ([C, H, W]) for the counts.
OneShotResult prune_l1(models::Module& model, const PlanSpec& spec, const Shape& input);

}  // namespace tpp::prune
