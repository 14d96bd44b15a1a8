#include "prune/oneshot.h"

#include "models/surgery.h"

namespace tpp::prune {

OneShotResult prune_l1(models::Module& model, const PlanSpec& spec, const Shape& input) {
  OneShotResult result;
  result.plan = make_plan(model, spec);
  const ModelCounts dense = counts_of(models::summarize(model, input));
  models::keep_filters(model, result.plan.kept_indices());
  result.analysis = compare_counts(dense, counts_of(models::summarize(model, input)));
  return result;
}

}  // namespace tpp::prune
