#include "prune/tpp_regularizer.h"

#include <cmath>

#include "engine/autograd.h"
#include "engine/error.h"
#include "ops/elementwise.h"

namespace tpp::prune {

namespace {

// Σ over the given rows of ||row||², in f64, and the sum of the rows' norms.
struct RowNorms {
  double squares = 0, norms = 0;
  int64_t rows = 0;
};

RowNorms row_norms(const Tensor& param, const std::vector<int64_t>& rows) {
  RowNorms out;
  if (!param.defined()) return out;
  // Read back for logging (once per logged iteration): a copy on the host.
  const Tensor flat = param.detach().to(Device::cpu()).contiguous().to(DType::f64).reshape({param.size(0), -1});
  const double* data = flat.data<double>();
  const int64_t width = flat.size(1);
  for (const int64_t r : rows) {
    double sum = 0;
    for (int64_t j = 0; j < width; ++j) sum += data[r * width + j] * data[r * width + j];
    out.squares += sum;
    out.norms += std::sqrt(sum);
    ++out.rows;
  }
  return out;
}

std::vector<int64_t> complement(int64_t n, const std::vector<int64_t>& rows) {
  std::vector<bool> in(static_cast<size_t>(n), false);
  for (const int64_t r : rows) in[static_cast<size_t>(r)] = true;
  std::vector<int64_t> out;
  for (int64_t i = 0; i < n; ++i)
    if (!in[static_cast<size_t>(i)]) out.push_back(i);
  return out;
}

}  // namespace

TppRegularizer::TppRegularizer(models::Module& model, const PrunePlan& plan, TppOptions options)
    : options_(options), layers_(pruned_layers(model, plan)) {
  TPP_CHECK(!layers_.empty(), "tpp: the plan prunes no layer; give `stage_pr` ratios above 0");
  options_.schedule.check(plan);
  // Made once, on the weights' device: the penalties reuse them every iteration.
  for (const PrunedLayer& l : layers_)
    references_.push_back(options_.target == GramTarget::diagonal
                              ? diagonal_penalty_target(l.weight.size(0), l.pruned, l.weight.dtype(), l.weight.device())
                              : gram_penalty_mask(l.weight.size(0), l.pruned, l.weight.dtype(), l.weight.device()));
}

std::string TppRegularizer::phase_at(int64_t t) const {
  return options_.schedule.stabilizing(t) ? "stabilize" : "regularize";
}

Tensor TppRegularizer::layer_penalty(size_t i) const {
  const PrunedLayer& l = layers_[i];
  return options_.target == GramTarget::diagonal ? diagonal_penalty_with_target(l.weight, references_[i])
                                                 : gram_penalty_with_mask(l.weight, references_[i]);
}

Tensor TppRegularizer::loss_term(int64_t t) const {
  const double lambda = options_.schedule.lambda(t);
  if (!options_.gram || lambda == 0) return {};
  Tensor sum;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Tensor r = layer_penalty(i);
    sum = sum.defined() ? sum + r : r;
  }
  return sum * (options_.gram_weight * lambda);
}

void TppRegularizer::add_gradients(int64_t t) const {
  const double lambda = options_.schedule.lambda(t);
  if (lambda == 0) return;
  for (const PrunedLayer& l : layers_) add_pruned_l2_grads(l, lambda, /*weights=*/true, options_.bn);
}

void TppRegularizer::after_step(int64_t t) const {
  for (const PrunedLayer& l : layers_)
    if (options_.schedule.zero_out_due(t, l.exec_index)) zero_out_pruned(l);
}

PenaltyTerms TppRegularizer::terms(int64_t t) const {
  PenaltyTerms out;
  out.lambda = options_.schedule.lambda(t);
  double l2 = 0, bn = 0, kept = 0, pruned = 0;
  int64_t kept_rows = 0, pruned_rows = 0;
  {
    const NoGradGuard no_grad;
    for (size_t i = 0; i < layers_.size(); ++i) {
      const PrunedLayer& l = layers_[i];
      if (options_.gram) out.gram += layer_penalty(i).to(DType::f64).item();
      const RowNorms p = row_norms(l.weight, l.pruned);
      const RowNorms k = row_norms(l.weight, complement(l.weight.size(0), l.pruned));
      l2 += p.squares + row_norms(l.bias, l.pruned).squares;
      if (options_.bn) bn += row_norms(l.bn_weight, l.pruned).squares + row_norms(l.bn_bias, l.pruned).squares;
      pruned += p.norms, pruned_rows += p.rows;
      kept += k.norms, kept_rows += k.rows;
    }
  }
  out.l2 = 0.5 * out.lambda * l2;
  out.bn = 0.5 * out.lambda * bn;
  out.kept_norm = kept_rows > 0 ? kept / static_cast<double>(kept_rows) : 0;
  out.pruned_norm = pruned_rows > 0 ? pruned / static_cast<double>(pruned_rows) : 0;
  return out;
}

}  // namespace tpp::prune
