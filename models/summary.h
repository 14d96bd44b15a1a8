// Per-layer statistics of a model and its totals, counted the way the paper's
// code counts them (TPP-METHOD §2.8):
//   params         = Σ over conv and linear layers of weight + bias counts
//   params_with_bn = params + BN γ and β
//   flops          = 2 · [Σ_conv weight count · H_out · W_out / groups + Σ_linear weight count]
// Output sizes come from one forward pass of a single zero sample in eval
// mode, observed through ObserveForward.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "models/module.h"

namespace tpp::models {

struct LayerStats {
  std::string name;  // "layer1.0.conv1"
  std::string type;  // "Conv2d", "Linear" or "BatchNorm2d"
  int64_t in_channels = 0, out_channels = 0;  // features for Linear
  int64_t kernel = 0, stride = 0;             // conv only, 0 elsewhere
  Shape output;                               // one sample: [C, H, W] or [features]
  int64_t params = 0;                         // weight + bias (γ + β for BN)
  int64_t flops = 0;                          // 0 for BN, which §2.8 does not count
};

struct ModelSummary {
  Shape input;                    // one sample, [C, H, W]
  std::vector<LayerStats> layers;  // conv, linear and BN layers in named_modules() order
  int64_t params = 0, params_with_bn = 0, flops = 0;
};

// Runs `model` once on a zero batch of one `input` ([C, H, W]) without
// gradients in eval mode; the model's train/eval mode is restored afterwards.
// Every conv, linear and BN layer must take part in that forward.
ModelSummary summarize(Module& model, const Shape& input);

// A table with one row per layer, then the three totals.
std::string format_summary(const ModelSummary& summary);

// {"input": [...], "layers": [{"name", "type", "in_channels", "out_channels",
// "kernel", "stride", "output", "params", "flops"}, ...], "params",
// "params_with_bn", "flops"}
nlohmann::ordered_json summary_json(const ModelSummary& summary);

}  // namespace tpp::models
