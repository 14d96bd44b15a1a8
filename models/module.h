// Module: named parameters, buffers and children, train/eval, state_dict
// with PyTorch's key names ("layer1.0.conv1.weight", "bn1.running_mean").
// Layers register what they own in their constructor; order of registration
// is the order of state_dict(), as in PyTorch.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace tpp::models {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module;

// Sees every module call made through Module::operator() while installed
// (summaries, shape tracing). Composite modules call their children through
// operator() so that each layer is seen; forward() itself is never observed.
using ForwardObserver = std::function<void(Module& module, const Tensor& input, const Tensor& output)>;

// Installs `observer` for this thread for the guard's lifetime (nests: the
// previous observer comes back on destruction).
class ObserveForward {
 public:
  explicit ObserveForward(ForwardObserver observer);
  ~ObserveForward();
  ObserveForward(const ObserveForward&) = delete;
  ObserveForward& operator=(const ObserveForward&) = delete;

 private:
  ForwardObserver observer_;
  const ForwardObserver* previous_;
};

// Whether a ForwardObserver is installed on this thread: a module that would
// skip its children's operator() (a fused inference path) must not then.
bool forward_observed();

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  virtual Tensor forward(const Tensor& x) = 0;
  // forward(x), seen by the installed ForwardObserver if any.
  Tensor operator()(const Tensor& x);

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  NamedTensors named_parameters() const;  // recursive, "child.name"
  NamedTensors named_buffers() const;
  std::vector<Tensor> parameters() const;
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }
  std::vector<std::pair<std::string, Module*>> named_modules();  // this module first, as ""

  // Parameters then buffers per module, depth first: PyTorch's order.
  NamedTensors state_dict() const;
  // Copies values in (shapes and dtypes must match). Strict: every key of
  // the model must be present and no extra key may be given.
  void load_state_dict(const std::map<std::string, Tensor>& values, bool strict = true);

  void zero_grad();
  // Moves every parameter and buffer to `device` in place: each tensor keeps
  // its identity (layers, optimizers and arenas made later see the moved
  // values) and loses its gradient. Make optimizers after moving.
  void to(Device device);
  Device device() const;  // of the first parameter (or buffer); cpu when there is none
  virtual std::string type_name() const = 0;

 protected:
  Tensor& register_parameter(std::string name, Tensor value);
  Tensor& register_buffer(std::string name, Tensor value);
  template <class M>
  std::shared_ptr<M> register_module(std::string name, std::shared_ptr<M> child) {
    children_.emplace_back(std::move(name), child);
    return child;
  }

 private:
  void collect(const std::string& prefix, NamedTensors& out, bool parameters, bool buffers) const;
  std::optional<Device> first_device() const;

  NamedTensors params_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace tpp::models
