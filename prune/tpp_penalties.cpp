#include "prune/tpp_penalties.h"

#include <fmt/format.h>

#include <cmath>
#include <utility>

#include "engine/autograd.h"
#include "engine/text.h"
#include "models/layers.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/reduce.h"

namespace tpp::prune {

namespace {

// The weight as the [N, D] matrix of its filters, outside autograd.
Tensor filter_matrix(const Tensor& weight, const char* op) {
  TPP_CHECK(weight.defined() && weight.dim() >= 2 && is_floating(weight.dtype()),
            "{}: expected a floating conv or linear weight, got {}", op,
            weight.defined() ? shape_str(weight.sizes()) : std::string("an undefined tensor"));
  return weight.detach().contiguous().reshape({weight.size(0), -1});
}

void check_rows(const std::vector<int64_t>& rows, int64_t n, const char* op) {
  for (const int64_t r : rows) TPP_CHECK(r >= 0 && r < n, "{}: row {} is out of range for {} rows", op, r, n);
}

// `rows` as runs [begin, end) of consecutive rows, in their order (a
// repeated row starts a new run, so it counts again): one tensor op per run.
std::vector<std::pair<int64_t, int64_t>> row_runs(const std::vector<int64_t>& rows) {
  std::vector<std::pair<int64_t, int64_t>> runs;
  for (const int64_t r : rows) {
    if (!runs.empty() && runs.back().second == r)
      ++runs.back().second;
    else
      runs.emplace_back(r, r + 1);
  }
  return runs;
}

// (1/N²)·||E||_F² for E = `residual` (N×N), with ∂/∂W = (4/N²)·E·W: the
// shared shape of the gram and diagonal penalties, E being symmetric.
Tensor mean_square_of_gram_residual(const Tensor& weight, const Tensor& matrix, const Tensor& residual,
                                    const char* op) {
  const double n = static_cast<double>(matrix.size(0));
  Tensor penalty;
  {
    const NoGradGuard no_grad;
    penalty = ops::mul(ops::sum(ops::mul(residual, residual)), 1.0 / (n * n));
  }
  record_grad(penalty, op, {weight}, [matrix, residual, n, sizes = weight.sizes()](const Tensor& dy) {
    const Tensor dw = ops::mul(ops::mul(ops::matmul(residual, matrix), 4.0 / (n * n)), dy);
    return Grads{dw.reshape(sizes)};
  });
  return penalty;
}

Tensor gram_of(const Tensor& matrix) {
  const NoGradGuard no_grad;
  return ops::matmul(matrix, matrix.transpose(0, 1));
}

models::Module& module_named(models::Module& model, const std::string& name) {
  for (auto& [n, m] : model.named_modules())
    if (n == name) return *m;
  TPP_CHECK(false, "pruned_layers: the model has no layer '{}'", name);
  return model;
}

}  // namespace

Tensor gram_penalty_mask(int64_t n, const std::vector<int64_t>& pruned, DType dtype, Device device) {
  check_rows(pruned, n, "gram_penalty_mask");
  std::vector<char> is_pruned(static_cast<size_t>(n), 0);
  for (const int64_t p : pruned) is_pruned[static_cast<size_t>(p)] = 1;
  std::vector<double> mask(static_cast<size_t>(n * n));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      mask[static_cast<size_t>(i * n + j)] = is_pruned[static_cast<size_t>(i)] || is_pruned[static_cast<size_t>(j)];
  return from_vector<double>(mask, {n, n}).to(dtype).to(device);
}

Tensor gram_penalty_with_mask(const Tensor& weight, const Tensor& mask) {
  const Tensor w = filter_matrix(weight, "gram_penalty");
  const int64_t n = w.size(0);
  TPP_CHECK(mask.defined() && mask.sizes() == Shape({n, n}) && mask.dtype() == weight.dtype(),
            "gram_penalty_with_mask: the mask must be {} [{}, {}] for a weight of shape {}, got {} {}",
            dtype_name(weight.dtype()), n, n, shape_str(weight.sizes()),
            mask.defined() ? dtype_name(mask.dtype()) : "undefined", mask.defined() ? shape_str(mask.sizes()) : "");
  Tensor masked_gram;
  {
    const NoGradGuard no_grad;
    masked_gram = ops::mul(mask, gram_of(w));
  }
  return mean_square_of_gram_residual(weight, w, masked_gram, "gram_penalty");
}

Tensor gram_penalty(const Tensor& weight, const std::vector<int64_t>& pruned) {
  TPP_CHECK(weight.defined() && weight.dim() >= 2, "gram_penalty: expected a conv or linear weight");
  return gram_penalty_with_mask(weight, gram_penalty_mask(weight.size(0), pruned, weight.dtype(), weight.device()));
}

Tensor diagonal_penalty_target(int64_t n, const std::vector<int64_t>& pruned, DType dtype, Device device) {
  check_rows(pruned, n, "diagonal_penalty");
  std::vector<double> target(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) target[static_cast<size_t>(i * n + i)] = 1;
  for (const int64_t p : pruned) target[static_cast<size_t>(p * n + p)] = 0;
  return from_vector<double>(target, {n, n}).to(dtype).to(device);
}

Tensor diagonal_penalty_with_target(const Tensor& weight, const Tensor& target) {
  const Tensor w = filter_matrix(weight, "diagonal_penalty");
  const int64_t n = w.size(0);
  TPP_CHECK(target.defined() && target.sizes() == Shape({n, n}) && target.dtype() == weight.dtype() &&
                target.device() == weight.device(),
            "diagonal_penalty_with_target: the target must be {} [{}, {}] on {} for a weight of shape {}, got {}",
            dtype_name(weight.dtype()), n, n, weight.device().str(), shape_str(weight.sizes()),
            target.defined() ? fmt::format("{} {} on {}", dtype_name(target.dtype()), shape_str(target.sizes()),
                                           target.device().str())
                             : std::string("an undefined tensor"));
  Tensor residual;
  {
    const NoGradGuard no_grad;
    residual = ops::sub(gram_of(w), target);
  }
  return mean_square_of_gram_residual(weight, w, residual, "diagonal_penalty");
}

Tensor diagonal_penalty(const Tensor& weight, const std::vector<int64_t>& pruned) {
  const Tensor w = filter_matrix(weight, "diagonal_penalty");
  return diagonal_penalty_with_target(weight, diagonal_penalty_target(w.size(0), pruned, weight.dtype(),
                                                                      weight.device()));
}

void add_rows_to_grad(const Tensor& param, const std::vector<int64_t>& rows, double scale) {
  TPP_CHECK(param.defined() && param.dim() >= 1 && is_floating(param.dtype()),
            "add_rows_to_grad: expected a floating parameter");
  check_rows(rows, param.size(0), "add_rows_to_grad");
  Tensor grad = param.grad();
  if (!grad.defined()) {
    grad = zeros_like(param);
    Tensor(param).set_grad(grad);
  }
  TPP_CHECK(grad.sizes() == param.sizes() && grad.is_contiguous() && grad.dtype() == param.dtype() &&
                grad.device() == param.device(),
            "add_rows_to_grad: the gradient {} does not fit the parameter {}", shape_str(grad.sizes()),
            shape_str(param.sizes()));
  const NoGradGuard no_grad;
  const Tensor values = param.detach().contiguous();
  // g += T(scale)·w elementwise: the same rounding as one fused loop on the host.
  for (const auto& [begin, end] : row_runs(rows))
    accumulate_(grad.slice(0, begin, end), ops::mul(values.slice(0, begin, end), scale));
}

void zero_rows(const Tensor& param, const std::vector<int64_t>& rows) {
  TPP_CHECK(param.defined() && param.dim() >= 1, "zero_rows: expected a defined parameter");
  check_rows(rows, param.size(0), "zero_rows");
  const NoGradGuard no_grad;
  for (const auto& [begin, end] : row_runs(rows)) param.slice(0, begin, end).fill_(0);
}

std::vector<PrunedLayer> pruned_layers(models::Module& model, const PrunePlan& plan) {
  std::vector<PrunedLayer> out;
  for (const LayerPlan& l : plan.layers) {
    if (l.pruned.empty()) continue;
    PrunedLayer& p = out.emplace_back();
    p.name = l.name;
    p.exec_index = l.exec_index;
    p.pruned = l.pruned;
    models::Module& m = module_named(model, l.name);
    if (auto* conv = dynamic_cast<models::Conv2d*>(&m)) {
      p.weight = conv->weight;
      p.bias = conv->bias;
    } else {
      auto& linear = dynamic_cast<models::Linear&>(m);
      p.weight = linear.weight;
      p.bias = linear.bias;
    }
    TPP_CHECK(p.weight.size(0) == l.total, "pruned_layers: '{}' has {} filters but the plan was made for {}", l.name,
              p.weight.size(0), l.total);
    if (!l.batch_norm.empty()) {
      auto& bn = dynamic_cast<models::BatchNorm2d&>(module_named(model, l.batch_norm));
      p.bn_weight = bn.weight;
      p.bn_bias = bn.bias;
    }
  }
  return out;
}

void add_pruned_l2_grads(const PrunedLayer& layer, double lambda, bool weights, bool batch_norm) {
  const auto add = [&](const Tensor& t) {
    if (t.defined()) add_rows_to_grad(t, layer.pruned, lambda);
  };
  if (weights) {
    add(layer.weight);
    add(layer.bias);
  }
  if (batch_norm) {
    add(layer.bn_weight);
    add(layer.bn_bias);
  }
}

void zero_out_pruned(const PrunedLayer& layer) {
  for (const Tensor* t : {&layer.weight, &layer.bias, &layer.bn_weight, &layer.bn_bias})
    if (t->defined()) zero_rows(*t, layer.pruned);
}

int64_t PenaltySchedule::switch_iteration() const {
  TPP_CHECK(step > 0 && ceiling > 0 && interval > 0,
            "penalty schedule: needs a positive step, ceiling and interval, got {}, {}, {}", step, ceiling, interval);
  // The smallest k with step·k ≥ ceiling, in the same double arithmetic as lambda().
  int64_t k = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(ceiling / step)));
  while (k > 1 && step * static_cast<double>(k - 1) >= ceiling) --k;
  while (step * static_cast<double>(k) < ceiling) ++k;
  return k * interval;
}

double PenaltySchedule::lambda(int64_t t) const {
  const int64_t last = switch_iteration();
  return step * static_cast<double>(std::min(t, last) / interval);
}

bool PenaltySchedule::zero_out_due(int64_t t, int64_t exec_index) const {
  return stabilizing(t) && t - switch_iteration() >= zero_out_interval * (exec_index + 1);
}

void PenaltySchedule::check(const PrunePlan& plan) const {
  if (!(step > 0 && ceiling > 0 && interval > 0))
    setting_fail("`reg_granularity`, `reg_ceiling` and `reg_interval` must be positive, got {:g}, {:g} and {}", step,
                 ceiling, interval);
  if (zero_out_interval <= 0 || stabilize < 0)
    setting_fail("`zero_out_interval` must be positive and `stabilize_iters` not negative, got {} and {}",
                 zero_out_interval, stabilize);
  const LayerPlan* last = nullptr;
  int64_t pruned = 0;
  for (const LayerPlan& l : plan.layers) {
    if (l.pruned.empty()) continue;
    ++pruned;
    if (last == nullptr || l.exec_index > last->exec_index) last = &l;
  }
  if (last == nullptr) return;  // nothing to zero (the regularizer refuses such a plan itself)
  const int64_t needed = zero_out_interval * (last->exec_index + 1);
  if (stabilize < needed)
    setting_fail(
        "`stabilize_iters` {} is too short for `zero_out_interval` {}: {}, '{}' (conv/linear layer "
        "{} of {} in forward order), is zeroed {} iterations into stabilisation; give `stabilize_iters` {} or more, "
        "or a smaller `zero_out_interval`",
        stabilize, zero_out_interval,
        pruned == 1 ? std::string("the pruned layer") : fmt::format("the last of the {} pruned layers", pruned), last->name, last->exec_index + 1,
        plan.layers.size(), needed, needed);
}

}  // namespace tpp::prune
