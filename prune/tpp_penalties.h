// TPP's penalties and schedule (TPP-METHOD §3, §4), as primitives for the
// regularised phase (prune/tpp_regularizer.h assembles them into one phase):
//
//   loss  = CE + α·λ(t)·Σ_l R_l(W_l)                      gram_penalty (§3.2), α = 1000
//   grads += λ(t)·w on pruned rows, pruned biases           add_rows_to_grad (§3.4)
//   grads += λ(t)·γ_j, λ(t)·β_j on the pruned BN channels   add_rows_to_grad (§3.5)
//   SGD step, then while stabilising: hard-zero each pruned layer
//   once its turn has come                                   PenaltySchedule::zero_out_due, zero_rows (§4.2)
//
// A weight's rows are its output filters: a conv weight [N, C, k, k] is read
// as the [N, C·k·k] matrix W, so the gram G = W Wᵀ is filter by filter.
#pragma once

#include <string>
#include <vector>

#include "models/module.h"
#include "prune/plan.h"

namespace tpp::prune {

// M [n, n] of `dtype` on `device`: 1 where row i or column j is pruned, else 0.
Tensor gram_penalty_mask(int64_t n, const std::vector<int64_t>& pruned, DType dtype = DType::f32,
                         Device device = Device::cpu());

// R = (1/N²)·||(W Wᵀ) ⊙ M||_F² (the reference code's mean squared error
// against the gram with pruned rows and columns zeroed), a 0-d tensor,
// differentiable in `weight`: ∂R/∂W = (4/N²)·(M ⊙ W Wᵀ)·W. f32 or f64.
Tensor gram_penalty_with_mask(const Tensor& weight, const Tensor& mask);  // mask from gram_penalty_mask, reused
Tensor gram_penalty(const Tensor& weight, const std::vector<int64_t>& pruned);

// The "diagonal" ablation (§3.7): (1/N²)·||W Wᵀ − Ĩ||_F² over all entries,
// Ĩ the identity with zeros at the pruned diagonal entries;
// ∂/∂W = (4/N²)·(W Wᵀ − Ĩ)·W.
Tensor diagonal_penalty(const Tensor& weight, const std::vector<int64_t>& pruned);
// Ĩ [n, n] of `dtype` on `device`, and the penalty against it (reused every
// iteration: no upload per step).
Tensor diagonal_penalty_target(int64_t n, const std::vector<int64_t>& pruned, DType dtype = DType::f32,
                               Device device = Device::cpu());
Tensor diagonal_penalty_with_target(const Tensor& weight, const Tensor& target);

// param.grad[i] += scale · param[i] for every i in `rows` (rows along dim 0):
// the gradient of (scale/2)·Σ_i ||param[i]||². A parameter without a
// gradient gets a zero one first. Tensor ops on the parameter's device (one
// per run of consecutive rows), no host access.
void add_rows_to_grad(const Tensor& param, const std::vector<int64_t>& rows, double scale);

// param[i] = 0 for every i in `rows`, outside autograd.
void zero_rows(const Tensor& param, const std::vector<int64_t>& rows);

// Handles to the tensors of one layer that loses filters.
struct PrunedLayer {
  std::string name;
  int64_t exec_index = 0;       // among all conv/linear layers, forward order (the zero-out turn)
  Tensor weight, bias;          // bias undefined when the layer has none
  Tensor bn_weight, bn_bias;    // undefined when no BN follows the layer (MLP)
  std::vector<int64_t> pruned;  // sorted
};

// The layers of `plan` that lose filters, in forward order, with handles into `model`.
std::vector<PrunedLayer> pruned_layers(models::Module& model, const PrunePlan& plan);

// §3.4 (pruned rows of the weight and the pruned biases) and §3.5 (γ and β
// of the pruned BN channels): λ·x added to their gradients.
void add_pruned_l2_grads(const PrunedLayer& layer, double lambda, bool weights = true, bool batch_norm = true);

// §4.2 step 6: the pruned rows, pruned biases and the BN γ, β of the pruned
// channels set to exactly 0 (BN running statistics are left alone).
void zero_out_pruned(const PrunedLayer& layer);

// The growing penalty λ(t) and the phases of the regularised training
// (§4.1, §4.2). Iterations count from 0, one mini-batch each.
struct PenaltySchedule {
  double step = 1e-4;         // Δ, --reg_granularity_prune
  double ceiling = 1.0;       // τ, --reg_upper_limit
  int64_t interval = 10;      // K_u, --update_reg_interval (5 on ImageNet)
  int64_t stabilize = 10000;  // S, --stabilize_reg_interval (40,000 on ImageNet)
  int64_t zero_out_interval = 100;

  // t*: the first update iteration (a multiple of K_u) at which λ reaches τ;
  // from there on the phase is "stabilize". 100,000 with the defaults.
  int64_t switch_iteration() const;
  // Δ·⌊t/K_u⌋ up to t*, then frozen at its t* value (exactly τ when τ/Δ is
  // an integer, as with every released config; the code freezes, it does not clip).
  double lambda(int64_t t) const;
  bool stabilizing(int64_t t) const { return t >= switch_iteration(); }
  // Whether the layer at forward index q is hard-zeroed after the step of
  // iteration t: while stabilising, once t − t* ≥ zero_out_interval·(q + 1).
  bool zero_out_due(int64_t t, int64_t exec_index) const;
  // The iteration after whose step the pruned filters are removed: t* + S.
  int64_t removal_iteration() const { return switch_iteration() + stabilize; }
  // Every pruned layer of `plan` is hard-zeroed before removal: the last one
  // in forward order (turn q) needs S ≥ zero_out_interval·(q + 1). (The
  // reference code asks S ≥ zero_out_interval × all conv/linear layers; only
  // the pruned ones have anything to zero.) Throws SettingError naming the
  // pipeline's settings (`stabilize_iters`, `zero_out_interval`, ...).
  void check(const PrunePlan& plan) const;
};

}  // namespace tpp::prune
