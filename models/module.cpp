#include "models/module.h"

#include <set>

#include "engine/autograd.h"

namespace tpp::models {

namespace {
thread_local const ForwardObserver* current_observer = nullptr;
}  // namespace

ObserveForward::ObserveForward(ForwardObserver observer)
    : observer_(std::move(observer)), previous_(current_observer) {
  current_observer = &observer_;
}

ObserveForward::~ObserveForward() { current_observer = previous_; }

bool forward_observed() { return current_observer != nullptr; }

Tensor Module::operator()(const Tensor& x) {
  Tensor y = forward(x);
  if (current_observer) (*current_observer)(*this, x, y);
  return y;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

Tensor& Module::register_parameter(std::string name, Tensor value) {
  value.set_requires_grad(true);
  params_.emplace_back(std::move(name), std::move(value));
  return params_.back().second;
}

Tensor& Module::register_buffer(std::string name, Tensor value) {
  buffers_.emplace_back(std::move(name), std::move(value));
  return buffers_.back().second;
}

void Module::to(Device device) {
  NoGradGuard no_grad;
  for (auto& [name, t] : state_dict()) {
    if (t.device() == device) continue;
    const Tensor moved = t.detach().to(device).contiguous();
    TensorImpl& impl = t.impl();
    impl.storage = moved.storage();
    impl.strides = moved.strides();
    impl.offset = moved.offset();
    impl.grad.reset();
  }
}

Device Module::device() const { return first_device().value_or(Device::cpu()); }

// state_dict()'s first tensor without building it: trainers ask once per step.
std::optional<Device> Module::first_device() const {
  if (!params_.empty()) return params_.front().second.device();
  if (!buffers_.empty()) return buffers_.front().second.device();
  for (const auto& [name, child] : children_)
    if (const std::optional<Device> found = child->first_device()) return found;
  return std::nullopt;
}

void Module::collect(const std::string& prefix, NamedTensors& out, bool parameters, bool buffers) const {
  if (parameters)
    for (const auto& [name, t] : params_) out.emplace_back(prefix + name, t);
  if (buffers)
    for (const auto& [name, t] : buffers_) out.emplace_back(prefix + name, t);
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", out, parameters, buffers);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", out, true, false);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", out, false, true);
  return out;
}

NamedTensors Module::state_dict() const {
  NamedTensors out;
  collect("", out, true, true);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() {
  std::vector<std::pair<std::string, Module*>> out{{"", this}};
  for (auto& [name, child] : children_)
    for (auto& [sub, module] : child->named_modules()) out.emplace_back(sub.empty() ? name : name + "." + sub, module);
  return out;
}

void Module::load_state_dict(const std::map<std::string, Tensor>& values, bool strict) {
  const NamedTensors own = state_dict();
  std::set<std::string> used;
  NoGradGuard no_grad;
  for (const auto& [name, target] : own) {
    const auto it = values.find(name);
    if (it == values.end()) {
      TPP_CHECK(!strict, "load_state_dict: missing key '{}' (shape {})", name, shape_str(target.sizes()));
      continue;
    }
    const Tensor& src = it->second;
    TPP_CHECK(src.sizes() == target.sizes(), "load_state_dict: '{}' has shape {} but the model expects {}", name,
              shape_str(src.sizes()), shape_str(target.sizes()));
    Tensor dst = target;
    dst.copy_(src);
    used.insert(name);
  }
  if (strict)
    for (const auto& [name, t] : values)
      TPP_CHECK(used.count(name), "load_state_dict: unexpected key '{}' (shape {})", name, shape_str(t.sizes()));
}

void Module::zero_grad() {
  for (auto& [name, p] : named_parameters()) p.zero_grad();
}

}  // namespace tpp::models
