// Module: named parameters, buffers and children, train/eval, state_dict
// with PyTorch's key names ("layer1.0.conv1.weight", "bn1.running_mean").
// Layers register what they own in their constructor; order of registration
// is the order of state_dict(), as in PyTorch.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace tpp::models {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }

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

  NamedTensors params_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace tpp::models
