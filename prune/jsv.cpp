#include "prune/jsv.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "models/layers.h"
#include "models/mlp.h"
#include "prune/linalg.h"

namespace tpp::prune {

namespace {

// Containers whose forward runs their children in registration order.
bool is_sequential_container(models::Module& m) {
  return dynamic_cast<models::Sequential*>(&m) || dynamic_cast<models::Mlp*>(&m);
}

bool is_pass_through(models::Module& m) {
  return dynamic_cast<models::Identity*>(&m) || dynamic_cast<models::Flatten*>(&m);
}

// The Linear layers of a linear chain in forward order, or the reason it is not one.
std::vector<models::Linear*> chain_layers(models::Module& model, std::string* refusal) {
  std::vector<models::Linear*> chain;
  for (auto& [name, module] : model.named_modules()) {
    const std::string where = name.empty() ? std::string("the model") : "'" + name + "'";
    if (auto* linear = dynamic_cast<models::Linear*>(module)) {
      if (!chain.empty() && chain.back()->weight.size(0) != linear->weight.size(1)) {
        if (refusal)
          *refusal = fmt::format("{} takes {} features but the layer before gives {}", where, linear->weight.size(1),
                                 chain.back()->weight.size(0));
        return {};
      }
      chain.push_back(linear);
    } else if (!is_pass_through(*module) && !is_sequential_container(*module)) {
      if (refusal) *refusal = fmt::format("{} is a {}", where, module->type_name());
      return {};
    }
  }
  if (chain.empty() && refusal) *refusal = "it has no Linear layer";
  return chain;
}

// Sets requires_grad off on every parameter for its lifetime, so that a
// Jacobian's backward passes leave the parameters' .grad alone.
class FrozenParameters {
 public:
  explicit FrozenParameters(const models::Module& model) {
    for (Tensor& p : model.parameters()) {
      saved_.emplace_back(p, p.requires_grad());
      p.set_requires_grad(false);
    }
  }
  ~FrozenParameters() {
    for (auto& [p, flag] : saved_) p.set_requires_grad(flag);
  }
  FrozenParameters(const FrozenParameters&) = delete;
  FrozenParameters& operator=(const FrozenParameters&) = delete;

 private:
  std::vector<std::pair<Tensor, bool>> saved_;
};

}  // namespace

bool is_linear_chain(models::Module& model) { return !chain_layers(model, nullptr).empty(); }

JsvStats linear_chain_jsv(models::Module& model) {
  std::string refusal;
  const std::vector<models::Linear*> chain = chain_layers(model, &refusal);
  TPP_CHECK(!chain.empty(), "linear_chain_jsv: the {} is not a chain of Linear layers: {}", model.type_name(), refusal);
  // J = W_L ⋯ W_1, [out_L, in_1]
  std::vector<double> product = chain.front()->weight.contiguous().to_vector<double>();
  const int64_t inputs = chain.front()->weight.size(1);
  int64_t outputs = chain.front()->weight.size(0);
  for (size_t i = 1; i < chain.size(); ++i) {
    const Tensor& w = chain[i]->weight;
    product = linalg::matmul(w.contiguous().to_vector<double>(), product, w.size(0), outputs, inputs);
    outputs = w.size(0);
  }
  return jsv_stats({linalg::singular_values(product, outputs, inputs)});
}

Tensor batch_jacobians(models::Module& model, const Tensor& images) {
  TPP_CHECK(images.defined() && is_floating(images.dtype()) && images.dim() >= 2 && images.size(0) > 0,
            "batch_jacobians: expected a non-empty floating batch [B, ...], got {}",
            images.defined() ? shape_str(images.sizes()) : std::string("an undefined tensor"));
  const FrozenParameters frozen(model);
  Tensor x = images.detach().to(model.device()).contiguous().clone();
  x.set_requires_grad(true);
  Tensor logits;
  {
    const EnableGradGuard grad_on;
    logits = model(x);
  }
  const int64_t batch = x.size(0), features = x.numel() / batch;
  TPP_CHECK(logits.dim() == 2 && logits.size(0) == batch,
            "batch_jacobians: expected logits [{}, classes] for images {}, got {}", batch, shape_str(images.sizes()),
            shape_str(logits.sizes()));
  const int64_t classes = logits.size(1);
  Tensor jacobians = zeros({batch, classes, features});
  if (!logits.requires_grad()) return jacobians;  // the output does not depend on the input

  float* out = jacobians.data<float>();
  for (int64_t c = 0; c < classes; ++c) {
    Tensor one_hot = zeros(logits.sizes(), {.dtype = logits.dtype(), .device = logits.device()});
    one_hot.select(1, c).fill_(1);
    x.set_grad(Tensor());
    logits.backward(one_hot, /*retain_graph=*/c + 1 < classes);
    const Tensor grad = x.grad();
    if (!grad.defined()) continue;
    // Read back to the host for the SVDs (an analysis, not a training step).
    const std::vector<float> rows = grad.to(DType::f32).contiguous().to_vector<float>();  // [B, features]
    for (int64_t b = 0; b < batch; ++b)
      std::memcpy(out + (b * classes + c) * features, rows.data() + b * features,
                  static_cast<size_t>(features) * sizeof(float));
  }
  return jacobians;
}

void JsvAccumulator::add_batch(models::Module& model, const Tensor& images) {
  const Tensor jacobians = batch_jacobians(model, images);
  const int64_t batch = jacobians.size(0), classes = jacobians.size(1), features = jacobians.size(2);
  const float* data = jacobians.data<float>();
  for (int64_t b = 0; b < batch; ++b) {
    const float* first = data + b * classes * features;
    const std::vector<double> jacobian(first, first + classes * features);
    add_sample(linalg::singular_values(jacobian, classes, features));
  }
}

int64_t JsvAccumulator::add_batches(models::Module& model, const ImageBatches& batches, int64_t max_batches) {
  int64_t added = 0;
  while (added < max_batches) {
    const std::optional<Tensor> images = batches();
    if (!images) break;
    add_batch(model, *images);
    ++added;
  }
  return added;
}

JsvStats model_jsv(models::Module& model, const ImageBatches& images, int64_t max_batches) {
  if (is_linear_chain(model)) return linear_chain_jsv(model);
  TPP_CHECK(images != nullptr, "model_jsv: a model that is not a linear chain needs images for its Jacobians");
  const bool was_training = model.is_training();
  model.eval();
  JsvAccumulator jsv;
  const int64_t used = jsv.add_batches(model, images, max_batches);
  model.train(was_training);
  TPP_CHECK(used > 0, "model_jsv: no batch of images");
  return jsv.stats();
}

void JsvAccumulator::add_sample(std::vector<double> singular_values) {
  TPP_CHECK(!singular_values.empty(), "JsvAccumulator: a sample without singular values");
  const auto [lo, hi] = std::minmax_element(singular_values.begin(), singular_values.end());
  condition_sum_ += *lo > 0 ? *hi / *lo : std::numeric_limits<double>::infinity();
  values_.insert(values_.end(), singular_values.begin(), singular_values.end());
  ++samples_;
}

JsvStats JsvAccumulator::stats() const {
  JsvStats s;
  s.samples = samples_;
  s.values = static_cast<int64_t>(values_.size());
  if (values_.empty()) return s;
  const double n = static_cast<double>(values_.size());
  double sum = 0, sq_dev_from_1 = 0;
  for (const double v : values_) {
    sum += v;
    sq_dev_from_1 += (v - 1) * (v - 1);
  }
  s.mean = sum / n;
  double sq_dev = 0;
  for (const double v : values_) sq_dev += (v - s.mean) * (v - s.mean);
  s.std = std::sqrt(sq_dev / n);
  const auto [lo, hi] = std::minmax_element(values_.begin(), values_.end());
  s.min = *lo;
  s.max = *hi;
  s.condition = condition_sum_ / static_cast<double>(samples_);
  s.mean_sq_dev_from_1 = sq_dev_from_1 / n;
  return s;
}

JsvStats jsv_stats(const std::vector<std::vector<double>>& per_sample) {
  JsvAccumulator acc;
  for (const auto& values : per_sample) acc.add_sample(values);
  return acc.stats();
}

nlohmann::ordered_json jsv_json(const JsvStats& s) {
  return {{"mean", s.mean},
          {"std", s.std},
          {"min", s.min},
          {"max", s.max},
          {"condition", s.condition},
          {"mean_sq_dev_from_1", s.mean_sq_dev_from_1},
          {"samples", s.samples}};
}

std::string jsv_text(double value) {
  return value != 0 && std::abs(value) < 1e-3 ? fmt::format("{:.3e}", value) : fmt::format("{:.4f}", value);
}

}  // namespace tpp::prune
