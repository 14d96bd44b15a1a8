#include "prune/analysis.h"

#include <nlohmann/json.hpp>

#include "models/layers.h"
#include "models/surgery.h"
#include "models/zoo.h"

namespace tpp::prune {

namespace {

double reduction(int64_t dense, int64_t pruned) {
  return dense == 0 ? 0.0 : static_cast<double>(dense - pruned) / static_cast<double>(dense);
}

}  // namespace

ModelCounts counts_of(const models::ModelSummary& summary) {
  return {.params = summary.params, .params_with_bn = summary.params_with_bn, .flops = summary.flops};
}

PruneAnalysis compare_counts(const ModelCounts& dense, const ModelCounts& pruned) {
  TPP_CHECK(pruned.flops > 0, "compare_counts: the pruned model has no FLOPs (dense {})", dense.flops);
  return {.dense = dense,
          .pruned = pruned,
          .sparsity = reduction(dense.params, pruned.params),
          .sparsity_with_bn = reduction(dense.params_with_bn, pruned.params_with_bn),
          .speedup = static_cast<double>(dense.flops) / static_cast<double>(pruned.flops)};
}

PruneAnalysis compare_models(models::Module& dense, models::Module& pruned, const Shape& input) {
  return compare_counts(counts_of(models::summarize(dense, input)), counts_of(models::summarize(pruned, input)));
}

PruneAnalysis analyze_widths(const std::string& arch, int64_t num_classes, int64_t in_channels, const Shape& input,
                             const std::map<std::string, int64_t>& widths) {
  const models::SkipInit counts_need_no_values;
  const auto dense = models::make_model(arch, num_classes, in_channels);
  const auto pruned = models::make_model(arch, num_classes, in_channels);
  models::apply_widths(*pruned, widths);
  return compare_models(*dense, *pruned, input);
}

nlohmann::ordered_json counts_json(const ModelCounts& c) {
  return {{"params", c.params}, {"params_with_bn", c.params_with_bn}, {"flops", c.flops}};
}

}  // namespace tpp::prune
