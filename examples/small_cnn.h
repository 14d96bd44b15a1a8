// A small CNN for 28x28 grey images, written with the library's layers
// (models/layers.h): two conv-BN-ReLU-pool stages and a linear classifier.
// Shared by train_cnn.cpp (which trains and saves it) and
// prune_checkpoint.cpp (which loads and prunes it).
#pragma once

#include <tpp/tpp.h>

#include <map>
#include <memory>
#include <string>

class SmallCnn : public tpp::models::Module {
 public:
  SmallCnn(int64_t in_channels, int64_t classes) {
    using namespace tpp::models;
    conv1 = register_module("conv1", std::make_shared<Conv2d>(Conv2dSpec{
                                         .in_channels = in_channels, .out_channels = 32, .kernel_size = 3,
                                         .padding = 1, .bias = false}));
    bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(32));
    conv2 = register_module("conv2", std::make_shared<Conv2d>(Conv2dSpec{
                                         .in_channels = 32, .out_channels = 64, .kernel_size = 3, .padding = 1,
                                         .bias = false}));
    bn2 = register_module("bn2", std::make_shared<BatchNorm2d>(64));
    fc = register_module("fc", std::make_shared<Linear>(64, classes));
  }

  tpp::Tensor forward(const tpp::Tensor& x) override {
    using namespace tpp::ops;
    tpp::Tensor h = max_pool2d(relu((*bn1)((*conv1)(x))), {});
    h = max_pool2d(relu((*bn2)((*conv2)(h))), {});
    return (*fc)(global_avg_pool2d(h));
  }
  std::string type_name() const override { return "SmallCnn"; }

  std::shared_ptr<tpp::models::Conv2d> conv1, conv2;
  std::shared_ptr<tpp::models::BatchNorm2d> bn1, bn2;
  std::shared_ptr<tpp::models::Linear> fc;
};

// The weights of `model` (its state dict: parameters and BN statistics) as a
// safetensors file.
inline void save_weights(const tpp::models::Module& model, const std::string& path, const std::string& description) {
  std::map<std::string, tpp::Tensor> weights;
  for (const auto& [name, tensor] : model.state_dict()) weights.emplace(name, tensor);
  tpp::save_safetensors(path, weights, {{"model", description}});
}
