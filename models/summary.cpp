#include "models/summary.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "engine/text.h"
#include "models/layers.h"

namespace tpp::models {

namespace {

int64_t numel_or_zero(const Tensor& t) { return t.defined() ? t.numel() : 0; }

Shape without_batch(const Tensor& t) { return Shape(t.sizes().begin() + 1, t.sizes().end()); }

bool is_counted(Module& m) {
  return dynamic_cast<Conv2d*>(&m) || dynamic_cast<Linear*>(&m) || dynamic_cast<BatchNorm2d*>(&m);
}

// One conv, linear or BN layer; `output` is its output for one sample.
LayerStats layer_stats(const std::string& name, Module& module, const Shape& output) {
  LayerStats row;
  row.name = name;
  row.type = module.type_name();
  row.output = output;
  if (auto* conv = dynamic_cast<Conv2d*>(&module)) {
    row.in_channels = conv->spec.in_channels;
    row.out_channels = conv->spec.out_channels;
    row.kernel = conv->spec.kernel_size;
    row.stride = conv->spec.stride;
    row.params = conv->weight.numel() + numel_or_zero(conv->bias);
    // §2.8 as the reference code has it: the weight count already holds the
    // 1/groups, and the code divides by groups once more.
    row.flops = 2 * conv->weight.numel() * output.at(1) * output.at(2) / conv->spec.groups;
  } else if (auto* linear = dynamic_cast<Linear*>(&module)) {
    row.in_channels = linear->weight.size(1);
    row.out_channels = linear->weight.size(0);
    row.params = linear->weight.numel() + numel_or_zero(linear->bias);
    row.flops = 2 * linear->weight.numel();
  } else if (auto* bn = dynamic_cast<BatchNorm2d*>(&module)) {
    row.in_channels = row.out_channels = bn->running_mean.numel();
    row.params = numel_or_zero(bn->weight) + numel_or_zero(bn->bias);
  }
  return row;
}

std::string shape_text(const Shape& shape) { return fmt::format("{}", fmt::join(shape, "x")); }

}  // namespace

ModelSummary summarize(Module& model, const Shape& input) {
  std::map<const Module*, Shape> outputs;  // first call of each module
  struct EvalScope {  // restores the mode even when the forward throws
    Module& model;
    bool was_training = model.is_training();
    explicit EvalScope(Module& m) : model(m) { model.eval(); }
    ~EvalScope() { model.train(was_training); }
  };
  {
    const EvalScope eval_mode(model);
    NoGradGuard no_grad;
    ObserveForward observe([&](Module& m, const Tensor&, const Tensor& y) { outputs.try_emplace(&m, without_batch(y)); });
    Shape batch_shape{1};
    batch_shape.insert(batch_shape.end(), input.begin(), input.end());
    model(zeros(batch_shape, {.device = model.device()}));
  }

  ModelSummary summary;
  summary.input = input;
  for (auto& [name, module] : model.named_modules()) {
    if (!is_counted(*module)) continue;
    const auto seen = outputs.find(module);
    TPP_CHECK(seen != outputs.end(), "summarize: layer '{}' ({}) took no part in the forward of input {}", name,
              module->type_name(), shape_str(input));
    const LayerStats row = layer_stats(name, *module, seen->second);
    summary.layers.push_back(row);
    summary.params_with_bn += row.params;
    if (!dynamic_cast<BatchNorm2d*>(module)) summary.params += row.params;
    summary.flops += row.flops;
  }
  return summary;
}

std::string format_summary(const ModelSummary& s) {
  size_t name_width = 5;
  for (const LayerStats& row : s.layers) name_width = std::max(name_width, row.name.size());
  std::string out = fmt::format("{:<{}}  {:<11} {:>5} {:>5} {:>6} {:>6}  {:<10} {:>11} {:>15}\n", "layer", name_width,
                                "type", "in", "out", "kernel", "stride", "output", "params", "FLOPs");
  for (const LayerStats& row : s.layers) {
    const bool conv = row.kernel > 0;
    out += fmt::format("{:<{}}  {:<11} {:>5} {:>5} {:>6} {:>6}  {:<10} {:>11} {:>15}\n", row.name, name_width, row.type,
                       row.in_channels, row.out_channels, conv ? fmt::format("{0}x{0}", row.kernel) : "-",
                       conv ? std::to_string(row.stride) : "-", shape_text(row.output), with_commas(row.params),
                       with_commas(row.flops));
  }
  out += fmt::format("\ninput           {}\n", shape_text(s.input));
  out += fmt::format("params          {:>15}  ({:.3f} M; conv and linear weights and biases)\n",
                     with_commas(s.params), s.params / 1e6);
  out += fmt::format("params_with_bn  {:>15}  ({:.3f} M; plus BN gamma and beta)\n", with_commas(s.params_with_bn),
                     s.params_with_bn / 1e6);
  const bool giga = s.flops >= 100'000'000;  // the paper quotes GFLOPs; the MLP's are better read in M
  out += fmt::format("flops           {:>15}  ({:.3f} {}FLOPs; 2 per multiply-accumulate of conv and linear layers)\n",
                     with_commas(s.flops), s.flops / (giga ? 1e9 : 1e6), giga ? "G" : "M");
  return out;
}

nlohmann::ordered_json summary_json(const ModelSummary& s) {
  nlohmann::ordered_json layers = nlohmann::ordered_json::array();
  for (const LayerStats& row : s.layers)
    layers.push_back({{"name", row.name},
                      {"type", row.type},
                      {"in_channels", row.in_channels},
                      {"out_channels", row.out_channels},
                      {"kernel", row.kernel},
                      {"stride", row.stride},
                      {"output", row.output},
                      {"params", row.params},
                      {"flops", row.flops}});
  return {{"input", s.input},
          {"layers", layers},
          {"params", s.params},
          {"params_with_bn", s.params_with_bn},
          {"flops", s.flops}};
}

}  // namespace tpp::models
