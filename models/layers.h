// The layers the model zoo is built from, with PyTorch's parameter names and
// default initialisation (nn.Linear / nn.Conv2d: kaiming_uniform(a=sqrt(5))
// weights and U(±1/sqrt(fan_in)) biases; BatchNorm2d: γ=1, β=0).
#pragma once

#include <functional>
#include <optional>

#include "models/module.h"
#include "ops/batch_norm.h"
#include "ops/conv2d.h"
#include "ops/pool.h"

namespace tpp::models {

// While alive, layers and zoo models built on this thread skip their random
// initialisation and hold zeros instead (as torch.nn.utils.skip_init): for
// models whose values come from a checkpoint next, or that are only inspected
// (summaries, `tpp info`). Nests.
class SkipInit {
 public:
  SkipInit();
  ~SkipInit();
  SkipInit(const SkipInit&) = delete;
  SkipInit& operator=(const SkipInit&) = delete;

 private:
  bool previous_;
};
bool init_skipped();

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Linear"; }
  Tensor weight, bias;  // [out, in], [out] (undefined without bias)
};

struct Conv2dSpec {
  int64_t in_channels, out_channels, kernel_size;
  int64_t stride = 1, padding = 0, dilation = 1, groups = 1;
  bool bias = true;
};

class Conv2d : public Module {
 public:
  explicit Conv2d(const Conv2dSpec& spec);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Conv2d"; }
  ops::Conv2dOptions options() const;
  Conv2dSpec spec;
  Tensor weight, bias;  // [out, in/groups, k, k], [out]
};

class BatchNorm2d : public Module {
 public:
  // momentum = std::nullopt (PyTorch's momentum=None): the running statistics
  // are the cumulative average over the batches seen, r += (stat - r) / n.
  explicit BatchNorm2d(int64_t channels, double eps = 1e-5, std::optional<double> momentum = 0.1);
  Tensor forward(const Tensor& x) override;
  // relu(forward(x)), the ReLU fused into batch norm's passes (see
  // ops::batch_norm2d_relu). Not a module call: forward observers do not see
  // it (batch_norm_relu() below takes care of that).
  Tensor forward_relu(const Tensor& x);
  std::string type_name() const override { return "BatchNorm2d"; }
  double eps;
  std::optional<double> momentum;
  Tensor weight, bias, running_mean, running_var, num_batches_tracked;
  // When set, training uses statistics over every rank of `sync`
  // (ops::sync_batch_norm2d; see models::set_sync_batch_norm).
  std::shared_ptr<dist::Communicator> sync;

 private:
  // Counts a training call and gives its options (momentum None: 1 / calls).
  ops::BatchNormOptions options_for_this_call();
};

// relu(bn(x)): fused (BatchNorm2d::forward_relu) unless a forward observer is
// installed, which must see batch norm's own output.
Tensor batch_norm_relu(BatchNorm2d& bn, const Tensor& x);

// Inference without autograd: a convolution followed by batch norm in eval
// mode (and a ReLU) runs as one convolution, BN's affine map folded into its
// weights: w·s and β − μ·s (+ the conv's bias·s), s = γ / √(var + ε).
// may_fold_batch_norm(): the conv and BN are in eval mode, autograd does not
// record, no forward observer is installed (it would miss the skipped calls),
// x is f32 on the CPU (where the ReLU fuses into the convolution; other
// devices keep their own numerics) and the output is at least half the
// weights' size (else folding them costs more than it saves).
// conv_bn_inference(): with a residual (a ResNet block's shortcut), it is
// added before the ReLU, inside the same kernel. The result may be
// channels-last in memory (see ops::conv2d_inference).
bool may_fold_batch_norm(const Conv2d& conv, const BatchNorm2d& bn, const Tensor& x);
Tensor conv_bn_inference(const Conv2d& conv, const BatchNorm2d& bn, const Tensor& x, bool relu,
                         const Tensor& residual = {});

// PyTorch's reset_parameters(): Linear and Conv2d kaiming_uniform(a=√5) and a
// uniform bias; BatchNorm2d γ = 1, β = 0, running statistics reset.
void reset_parameters(Linear& layer);
void reset_parameters(Conv2d& layer);
void reset_parameters(BatchNorm2d& layer);

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "ReLU"; }
};

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(int64_t kernel, int64_t stride = 0, int64_t padding = 0);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "MaxPool2d"; }
  ops::Pool2dOptions options;
};

// [N, C, H, W] -> [N, C] (adaptive average pool to 1x1, then flatten).
class GlobalAvgPool2d : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "GlobalAvgPool2d"; }
};

class Flatten : public Module {
 public:
  Tensor forward(const Tensor& x) override { return x.flatten(1); }
  std::string type_name() const override { return "Flatten"; }
};

// Passes its input through (MLP-7-Linear's activation, as nn.Identity).
class Identity : public Module {
 public:
  Tensor forward(const Tensor& x) override { return x; }
  std::string type_name() const override { return "Identity"; }
};

// Children named "0", "1", ... as torch.nn.Sequential.
class Sequential : public Module {
 public:
  Sequential() = default;
  template <class M>
  std::shared_ptr<M> add(std::shared_ptr<M> layer) {
    layers_.push_back(layer);
    return register_module(std::to_string(layers_.size() - 1), std::move(layer));
  }
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Sequential"; }
  size_t size() const { return layers_.size(); }
  Module& operator[](size_t i) { return *layers_.at(i); }

 private:
  std::vector<std::shared_ptr<Module>> layers_;
};

}  // namespace tpp::models
