// Dense vs pruned model size and cost, counted as the paper's code counts
// them (TPP-METHOD §2.8, models/summary.h):
//   sparsity         = (P_dense − P_pruned) / P_dense, P = conv + linear weights and biases
//   sparsity_with_bn = the same with BN γ and β counted as parameters (the paper's Tab. 1/10 column)
//   speedup          = FLOPs_dense / FLOPs_pruned
#pragma once

#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "models/summary.h"

namespace tpp::prune {

struct ModelCounts {
  int64_t params = 0, params_with_bn = 0, flops = 0;
};

struct PruneAnalysis {
  ModelCounts dense, pruned;
  double sparsity = 0, sparsity_with_bn = 0, speedup = 0;  // fractions; speedup as a ratio (1.99)
};

ModelCounts counts_of(const models::ModelSummary& summary);
PruneAnalysis compare_counts(const ModelCounts& dense, const ModelCounts& pruned);

// Summarises both models on one sample of shape `input` ([C, H, W]).
PruneAnalysis compare_models(models::Module& dense, models::Module& pruned, const Shape& input);

// `arch` of the zoo at full width against the same arch narrowed to `widths`
// (models::apply_widths), without initialising any weights.
PruneAnalysis analyze_widths(const std::string& arch, int64_t num_classes, int64_t in_channels, const Shape& input,
                             const std::map<std::string, int64_t>& widths);

// {"params", "params_with_bn", "flops"}
nlohmann::ordered_json counts_json(const ModelCounts& counts);

}  // namespace tpp::prune
