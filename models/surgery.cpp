#include "models/surgery.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <set>
#include <unordered_map>

#include "engine/autograd.h"
#include "models/layers.h"

namespace tpp::models {

namespace {

constexpr int64_t kTraceBatch = 2;  // 2 so that the batch dim never passes for a channel dim
constexpr int64_t kTraceResolution = 32;

bool is_conv_or_linear(Module& m) { return dynamic_cast<Conv2d*>(&m) || dynamic_cast<Linear*>(&m); }

int64_t out_width(Module& m) {
  if (auto* conv = dynamic_cast<Conv2d*>(&m)) return conv->spec.out_channels;
  return dynamic_cast<Linear&>(m).weight.size(0);
}

int64_t product(Shape::const_iterator begin, Shape::const_iterator end) {
  int64_t p = 1;
  for (auto it = begin; it != end; ++it) p *= *it;
  return p;
}

// ---- the traced forward pass ----

struct ForwardGraph {
  Tensor output;                   // keeps every node alive
  std::vector<std::string> order;  // conv/linear layers, first call order
  std::set<std::string> ran_twice;
  std::unordered_map<const Node*, std::string> layer_at;  // conv/linear output node -> layer
  std::unordered_map<const Node*, std::string> bn_at;     // BN output node -> BN layer
  std::map<std::string, const Node*> output_of;           // layer -> its output node
  std::unordered_map<const Node*, std::vector<std::pair<const Node*, size_t>>> users;  // node -> (user, input slot)
};

Shape trace_input(Module& model) {
  for (auto& [name, module] : model.named_modules()) {
    if (auto* conv = dynamic_cast<Conv2d*>(module))
      return {kTraceBatch, conv->spec.in_channels, kTraceResolution, kTraceResolution};
    if (auto* linear = dynamic_cast<Linear*>(module)) return {kTraceBatch, linear->weight.size(1)};
  }
  TPP_CHECK(false, "trace_layer_links: the model has no conv or linear layer");
  return {};
}

ForwardGraph trace_forward(Module& model) {
  std::unordered_map<const Module*, std::string> names;
  for (auto& [name, module] : model.named_modules()) names.emplace(module, name);

  ForwardGraph g;
  struct EvalScope {  // restores the mode even when the forward throws
    Module& model;
    bool was_training = model.is_training();
    explicit EvalScope(Module& m) : model(m) { model.eval(); }
    ~EvalScope() { model.train(was_training); }
  } eval_mode(model);
  const EnableGradGuard record;
  const Shape input = trace_input(model);
  {
    ObserveForward observe([&](Module& m, const Tensor&, const Tensor& y) {
      const auto named = names.find(&m);
      const bool bn = dynamic_cast<BatchNorm2d*>(&m) != nullptr;
      if (named == names.end() || !(bn || is_conv_or_linear(m)) || !y.grad_fn()) return;
      const Node* node = y.grad_fn().get();
      if (bn) {
        g.bn_at.emplace(node, named->second);
        return;
      }
      if (g.output_of.count(named->second)) {
        g.ran_twice.insert(named->second);
        return;
      }
      g.order.push_back(named->second);
      g.layer_at.emplace(node, named->second);
      g.output_of.emplace(named->second, node);
    });
    Tensor x = zeros(input, {.device = model.device()});
    x.set_requires_grad(true);
    try {
      g.output = model(x);
    } catch (const Error& e) {
      TPP_CHECK(false, "trace_layer_links: the model does not run on a {} input: {}", shape_str(input), e.what());
    }
  }
  TPP_CHECK(g.output.grad_fn(), "trace_layer_links: the model output of shape {} does not depend on its input",
            shape_str(g.output.sizes()));

  std::set<const Node*> seen{g.output.grad_fn().get()};
  std::vector<const Node*> stack{g.output.grad_fn().get()};
  while (!stack.empty()) {
    const Node* node = stack.back();
    stack.pop_back();
    for (size_t slot = 0; slot < node->inputs.size(); ++slot) {
      const Node* input = node->inputs[slot].node.get();
      if (!input) continue;
      g.users[input].emplace_back(node, slot);
      if (seen.insert(input).second) stack.push_back(input);
    }
  }
  return g;
}

// ---- following a layer's output channels ----

bool is_elementwise_on_channels(const std::string& op) {
  static const std::set<std::string> ops{"batch_norm2d", "relu",       "max_pool2d", "avg_pool2d", "clone", "to",
                                         "mask_mul",     "mul_scalar", "add_scalar", "neg",        "abs",   "exp",
                                         "log",          "sqrt",       "pow",        "slice"};
  return ops.count(op) > 0;
}

// The features per channel after `user` when its input `from` holds
// `block` features per channel; nullopt when `user` mixes channels.
std::optional<int64_t> channels_through(const Node& user, const Node& from, int64_t block) {
  const Shape& in = from.output_sizes;
  const Shape& out = user.output_sizes;
  if (in.size() < 2 || out.size() < 2 || out[0] != in[0]) return std::nullopt;
  const bool same_channels = out[1] == in[1];
  if (is_elementwise_on_channels(user.name)) return same_channels ? std::optional(block) : std::nullopt;
  if (user.name == "view") {
    if (same_channels && product(out.begin() + 2, out.end()) == product(in.begin() + 2, in.end())) return block;
    if (block == 1 && out.size() == 2 && out[1] == in[1] * product(in.begin() + 2, in.end()))
      return product(in.begin() + 2, in.end());  // flatten(1) of a [C, H, W] map
    return std::nullopt;
  }
  if (user.name == "mean" || user.name == "sum") {  // global pooling: [N, C, H, W] -> [N, C] or [N, C, 1, 1]
    const bool pooled = in.size() == 4 && block == 1 && same_channels &&
                        (out.size() == 2 || (out.size() == 4 && out[2] == 1 && out[3] == 1));
    return pooled ? std::optional<int64_t>(1) : std::nullopt;
  }
  return std::nullopt;
}

std::string reason_for(const Node& user) {
  if (user.name == "add" || user.name == "sub") return fmt::format("its output feeds a residual sum ('{}')", user.name);
  return fmt::format("its output reaches op '{}', which mixes or reorders channels", user.name);
}

struct Walk {
  LayerLink& link;
  const ForwardGraph& graph;
  std::set<const Node*> visited;

  void refuse(std::string why) {
    if (link.refusal.empty()) link.refusal = std::move(why);
  }

  void add_consumer(const std::string& layer, size_t slot, int64_t block) {
    if (slot != 0) return refuse(fmt::format("its output reaches '{}' other than as its input", layer));
    if (std::find(link.consumers.begin(), link.consumers.end(), layer) == link.consumers.end())
      link.consumers.push_back(layer);
    if (link.consumers.size() == 1) link.features_per_channel = block;
    if (link.features_per_channel != block)
      refuse(fmt::format("its output reaches '{}' both flattened and per channel", layer));
  }

  void follow(const Node* node, int64_t block) {
    if (node == graph.output.grad_fn().get()) return refuse("its output channels are the model's outputs");
    const auto users = graph.users.find(node);
    if (users == graph.users.end()) return;
    for (const auto& [user, slot] : users->second) {
      if (!link.refusal.empty()) return;
      if (const auto layer = graph.layer_at.find(user); layer != graph.layer_at.end()) {
        add_consumer(layer->second, slot, block);
        continue;
      }
      if (!visited.insert(user).second) continue;
      const auto next = channels_through(*user, *node, block);
      if (!next) return refuse(reason_for(*user));
      if (const auto bn = graph.bn_at.find(user); bn != graph.bn_at.end()) link.batch_norms.push_back(bn->second);
      follow(user, *next);
    }
  }
};

std::map<std::string, Module*> modules_by_name(Module& model) {
  std::map<std::string, Module*> out;
  for (auto& [name, module] : model.named_modules()) out.emplace(name, module);
  return out;
}

std::vector<LayerLink> links_of(Module& model, const ForwardGraph& graph) {
  const auto modules = modules_by_name(model);
  const auto grouped = [&](const std::string& name) {
    const auto* conv = dynamic_cast<const Conv2d*>(modules.at(name));
    return conv && conv->spec.groups != 1;
  };
  std::vector<LayerLink> links;
  for (const std::string& name : graph.order) {
    LayerLink link;
    link.name = name;
    link.exec_index = static_cast<int64_t>(links.size());
    Walk walk{link, graph, {}};
    if (graph.ran_twice.count(name)) walk.refuse("it runs more than once in a forward pass");
    if (grouped(name)) walk.refuse("it is a grouped convolution");
    walk.follow(graph.output_of.at(name), 1);
    if (link.consumers.empty()) walk.refuse("its output does not reach the model's output");
    const auto position = [&](const std::string& layer) {
      return std::find(graph.order.begin(), graph.order.end(), layer) - graph.order.begin();
    };
    std::sort(link.consumers.begin(), link.consumers.end(),
              [&](const std::string& a, const std::string& b) { return position(a) < position(b); });
    for (const std::string& consumer : link.consumers) {
      if (grouped(consumer)) walk.refuse(fmt::format("its output feeds the grouped convolution '{}'", consumer));
      if (graph.ran_twice.count(consumer))
        walk.refuse(fmt::format("its output feeds '{}', which runs twice", consumer));
    }
    links.push_back(std::move(link));
  }
  for (auto& [name, module] : model.named_modules())
    if (is_conv_or_linear(*module) && !graph.output_of.count(name)) {
      LayerLink& link = links.emplace_back();
      link.name = name;
      link.exec_index = -1;
      link.refusal = "it takes no part in the forward pass";
    }
  return links;
}

// ---- surgery ----

// Gives `target`'s TensorImpl the data of `value`, so that every handle to
// the parameter sees the new shape; its gradient no longer fits and goes.
void assign_in_place(const Tensor& target, const Tensor& value) {
  TensorImpl& impl = target.impl();
  impl.storage = value.storage();
  impl.sizes = value.sizes();
  impl.strides = value.strides();
  impl.offset = value.offset();
  impl.grad.reset();
}

void take(const Tensor& t, int64_t dim, const Tensor& index) {
  if (t.defined()) assign_in_place(t, t.detach().index_select(dim, index).contiguous());
}

// Channel c -> input features [c·block, (c + 1)·block) of a flattened map.
Tensor feature_index(const Tensor& kept, int64_t block) {
  if (block == 1) return kept;
  std::vector<int64_t> features;
  for (const int64_t c : kept.to_vector<int64_t>())
    for (int64_t j = 0; j < block; ++j) features.push_back(c * block + j);
  return from_vector<int64_t>(features, {static_cast<int64_t>(features.size())});
}

void check_kept(const std::string& layer, const Tensor& kept, int64_t width) {
  TPP_CHECK(kept.defined() && kept.dtype() == DType::i64 && kept.dim() == 1,
            "keep_filters: the kept indices of '{}' must be a 1-d i64 tensor, got {} of shape {}", layer,
            kept.defined() ? std::string(dtype_name(kept.dtype())) : std::string("undefined"),
            kept.defined() ? shape_str(kept.sizes()) : "[]");
  TPP_CHECK(kept.numel() > 0, "keep_filters: '{}' must keep at least one of its {} filters", layer, width);
  const std::vector<int64_t> ids = kept.to_vector<int64_t>();
  for (size_t i = 0; i < ids.size(); ++i) {
    TPP_CHECK(ids[i] >= 0 && ids[i] < width, "keep_filters: kept index {} of '{}' is out of range for its {} filters",
              ids[i], layer, width);
    TPP_CHECK(i == 0 || ids[i] > ids[i - 1],
              "keep_filters: the kept indices of '{}' must be sorted and distinct ({} follows {})", layer, ids[i],
              ids[i - 1]);
  }
}

int64_t in_width(Module& m) {
  if (auto* conv = dynamic_cast<Conv2d*>(&m)) return conv->spec.in_channels;
  return dynamic_cast<Linear&>(m).weight.size(1);
}

void narrow_outputs(Module& m, const Tensor& kept) {
  if (auto* conv = dynamic_cast<Conv2d*>(&m)) {
    take(conv->weight, 0, kept);
    take(conv->bias, 0, kept);
    conv->spec.out_channels = kept.numel();
    return;
  }
  auto& linear = dynamic_cast<Linear&>(m);
  take(linear.weight, 0, kept);
  take(linear.bias, 0, kept);
}

void narrow_inputs(Module& m, const Tensor& index) {
  if (auto* conv = dynamic_cast<Conv2d*>(&m)) {
    take(conv->weight, 1, index);
    conv->spec.in_channels = index.numel();
    return;
  }
  take(dynamic_cast<Linear&>(m).weight, 1, index);
}

void narrow_bn(BatchNorm2d& bn, const Tensor& kept) {
  for (const Tensor* t : {&bn.weight, &bn.bias, &bn.running_mean, &bn.running_var}) take(*t, 0, kept);
}

Module& conv_or_linear(const std::map<std::string, Module*>& modules, const std::string& layer, const char* op) {
  const auto it = modules.find(layer);
  TPP_CHECK(it != modules.end() && is_conv_or_linear(*it->second), "{}: no conv or linear layer named '{}'", op, layer);
  return *it->second;
}

}  // namespace

std::map<std::string, int64_t> layer_widths(Module& model) {
  std::map<std::string, int64_t> widths;
  for (auto& [name, module] : model.named_modules())
    if (is_conv_or_linear(*module)) widths.emplace(name, out_width(*module));
  return widths;
}

std::vector<LayerLink> trace_layer_links(Module& model) {
  const ForwardGraph graph = trace_forward(model);
  return links_of(model, graph);
}

void keep_filters(Module& model, const std::string& layer, const Tensor& kept) {
  keep_filters(model, std::map<std::string, Tensor>{{layer, kept}});
}

void keep_filters(Module& model, const std::map<std::string, Tensor>& kept_by_layer) {
  const auto modules = modules_by_name(model);
  std::map<std::string, Tensor> changes;
  for (const auto& [layer, kept] : kept_by_layer) {
    Module& m = conv_or_linear(modules, layer, "keep_filters");
    check_kept(layer, kept, out_width(m));
    if (kept.numel() < out_width(m)) changes.emplace(layer, kept);
  }
  if (changes.empty()) return;

  std::map<std::string, LayerLink> links;
  for (LayerLink& link : trace_layer_links(model)) links.emplace(link.name, std::move(link));
  // Every check before the first change, so that a refusal leaves the model whole.
  for (const auto& [layer, kept] : changes) {
    const LayerLink& link = links.at(layer);
    TPP_CHECK(link.prunable(), "keep_filters: cannot remove filters of '{}': {}", layer, link.refusal);
    const int64_t width = out_width(*modules.at(layer));
    for (const std::string& bn : link.batch_norms)
      TPP_CHECK(dynamic_cast<BatchNorm2d&>(*modules.at(bn)).running_mean.numel() == width,
                "keep_filters: BN '{}' after '{}' has {} channels, not {}", bn, layer,
                dynamic_cast<BatchNorm2d&>(*modules.at(bn)).running_mean.numel(), width);
    for (const std::string& consumer : link.consumers)
      TPP_CHECK(in_width(*modules.at(consumer)) == width * link.features_per_channel,
                "keep_filters: '{}' reads {} inputs, not the {} x {} of '{}'", consumer,
                in_width(*modules.at(consumer)), width, link.features_per_channel, layer);
  }

  const NoGradGuard no_grad;
  for (const auto& [layer, kept] : changes) {
    const LayerLink& link = links.at(layer);
    narrow_outputs(*modules.at(layer), kept);
    for (const std::string& bn : link.batch_norms) narrow_bn(dynamic_cast<BatchNorm2d&>(*modules.at(bn)), kept);
    const Tensor inputs = feature_index(kept, link.features_per_channel);
    for (const std::string& consumer : link.consumers) narrow_inputs(*modules.at(consumer), inputs);
  }
}

void apply_widths(Module& model, const std::map<std::string, int64_t>& widths) {
  const auto modules = modules_by_name(model);
  std::map<std::string, Tensor> kept;
  for (const auto& [layer, width] : widths) {
    const int64_t current = out_width(conv_or_linear(modules, layer, "apply_widths"));
    TPP_CHECK(width >= 1 && width <= current, "apply_widths: '{}' has {} filters; cannot make it {} wide", layer,
              current, width);
    if (width < current) kept.emplace(layer, arange(width));
  }
  keep_filters(model, kept);
}

}  // namespace tpp::models
