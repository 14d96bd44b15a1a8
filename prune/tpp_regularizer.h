// TPP's regularised phase as one object (TPP-METHOD §3.6, §4.2): given the
// model and its plan, what each iteration t adds to the loss, to the
// gradients and, while stabilising, to the weights after the step; and the
// penalty terms for the log. The pruning pipeline (prune/pipeline.h)
// calls it from the trainer's hooks:
//
//   loss  += loss_term(t)          α·λ(t)·Σ_l R_l(W_l)   (gram or diagonal target)
//   grads += add_gradients(t)      λ(t)·(pruned rows, biases, BN γ and β)
//   step, then after_step(t)       hard zeroing, layer by layer, once stabilising
//
// Ablations (§3.7): target = diagonal; bn = false ("gram ✓, BN ✗");
// gram = false ("gram ✗, BN ✓": GReg-1 plus the BN penalty).
#pragma once

#include <string>
#include <vector>

#include "models/module.h"
#include "prune/plan.h"
#include "prune/tpp_penalties.h"

namespace tpp::prune {

enum class GramTarget { decorrelate, diagonal };

struct TppOptions {
  PenaltySchedule schedule{};
  double gram_weight = 1000;  // α, --lw_opp
  GramTarget target = GramTarget::decorrelate;
  bool gram = true;  // false: --no-gram
  bool bn = true;    // false: --no-bn-reg
};

// The values behind one iteration's log line.
struct PenaltyTerms {
  double lambda = 0;
  double gram = 0;  // Σ_l R_l, before the α·λ weight
  double l2 = 0;    // (λ/2)·Σ ||pruned rows and biases||²
  double bn = 0;    // (λ/2)·Σ (γ_j² + β_j²) over the pruned channels
  double kept_norm = 0, pruned_norm = 0;  // mean L2 norm of a kept / a pruned filter, over the pruned layers
};

class TppRegularizer {
 public:
  // `model` must outlive the regularizer and keep its parameters (no removal
  // while it lives). Throws when the schedule cannot zero every layer before
  // removal (PenaltySchedule::check).
  TppRegularizer(models::Module& model, const PrunePlan& plan, TppOptions options);

  const TppOptions& options() const { return options_; }
  // Iterations of the whole phase, t = 0 .. removal_iteration().
  int64_t iterations() const { return options_.schedule.removal_iteration() + 1; }
  // "regularize" while λ grows, "stabilize" once it is at its ceiling.
  std::string phase_at(int64_t t) const;

  // α·λ(t)·Σ R_l, a 0-d tensor differentiable in the weights; undefined when
  // it is zero (λ = 0 or the gram term is off).
  Tensor loss_term(int64_t t) const;
  void add_gradients(int64_t t) const;
  void after_step(int64_t t) const;
  PenaltyTerms terms(int64_t t) const;

 private:
  Tensor layer_penalty(size_t i) const;

  TppOptions options_;
  std::vector<PrunedLayer> layers_;
  // Per layer: the gram_penalty_mask (decorrelate) or diagonal_penalty_target (diagonal).
  std::vector<Tensor> references_;
};

}  // namespace tpp::prune
