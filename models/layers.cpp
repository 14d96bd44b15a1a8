#include "models/layers.h"

#include <algorithm>
#include <cmath>

#include "engine/autograd.h"
#include "engine/init.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"

namespace tpp::models {

namespace {

thread_local bool skip_init = false;

// PyTorch's reset_parameters() for Linear and Conv2d.
void init_like_pytorch(Tensor& weight, Tensor& bias) {
  NoGradGuard no_grad;
  if (skip_init) {
    weight.fill_(0);
    if (bias.defined()) bias.fill_(0);
    return;
  }
  kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(compute_fans(weight.sizes()).in));
    uniform_(bias, -bound, bound);
  }
}

}  // namespace

SkipInit::SkipInit() : previous_(skip_init) { skip_init = true; }
SkipInit::~SkipInit() { skip_init = previous_; }
bool init_skipped() { return skip_init; }

Linear::Linear(int64_t in_features, int64_t out_features, bool with_bias) {
  TPP_CHECK(in_features > 0 && out_features > 0, "Linear: features must be positive, got {} -> {}", in_features,
            out_features);
  weight = register_parameter("weight", empty({out_features, in_features}));
  if (with_bias) bias = register_parameter("bias", empty({out_features}));
  init_like_pytorch(weight, bias);
}

Tensor Linear::forward(const Tensor& x) { return ops::linear(x, weight, bias); }

Conv2d::Conv2d(const Conv2dSpec& s) : spec(s) {
  TPP_CHECK(s.in_channels > 0 && s.out_channels > 0 && s.kernel_size > 0 && s.groups > 0 &&
                s.in_channels % s.groups == 0 && s.out_channels % s.groups == 0,
            "Conv2d: invalid spec in={} out={} kernel={} groups={}", s.in_channels, s.out_channels, s.kernel_size,
            s.groups);
  weight = register_parameter("weight", empty({s.out_channels, s.in_channels / s.groups, s.kernel_size, s.kernel_size}));
  if (s.bias) bias = register_parameter("bias", empty({s.out_channels}));
  init_like_pytorch(weight, bias);
}

ops::Conv2dOptions Conv2d::options() const {
  return {.stride = {spec.stride, spec.stride},
          .padding = {spec.padding, spec.padding},
          .dilation = {spec.dilation, spec.dilation},
          .groups = spec.groups};
}

Tensor Conv2d::forward(const Tensor& x) { return ops::conv2d(x, weight, bias, options()); }

BatchNorm2d::BatchNorm2d(int64_t channels, double eps_, std::optional<double> momentum_)
    : eps(eps_), momentum(momentum_) {
  TPP_CHECK(channels > 0, "BatchNorm2d: channels must be positive, got {}", channels);
  weight = register_parameter("weight", ones({channels}));
  bias = register_parameter("bias", zeros({channels}));
  running_mean = register_buffer("running_mean", zeros({channels}));
  running_var = register_buffer("running_var", ones({channels}));
  num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, {.dtype = DType::i64}));
}

ops::BatchNormOptions BatchNorm2d::options_for_this_call() {
  if (is_training()) num_batches_tracked.fill_(num_batches_tracked.item() + 1);
  const double batches = std::max(num_batches_tracked.item(), 1.0);
  return {.training = is_training(), .momentum = momentum.value_or(1.0 / batches), .eps = eps};
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  const ops::BatchNormOptions options = options_for_this_call();
  if (sync) return ops::sync_batch_norm2d(x, weight, bias, running_mean, running_var, sync, options);
  return ops::batch_norm2d(x, weight, bias, running_mean, running_var, options);
}

Tensor BatchNorm2d::forward_relu(const Tensor& x) {
  const ops::BatchNormOptions options = options_for_this_call();
  if (sync) return ops::relu(ops::sync_batch_norm2d(x, weight, bias, running_mean, running_var, sync, options));
  return ops::batch_norm2d_relu(x, weight, bias, running_mean, running_var, options);
}

Tensor batch_norm_relu(BatchNorm2d& bn, const Tensor& x) {
  return forward_observed() ? ops::relu(bn(x)) : bn.forward_relu(x);
}

bool may_fold_batch_norm(const Conv2d& conv, const BatchNorm2d& bn, const Tensor& x) {
  if (conv.is_training() || bn.is_training() || grad_enabled() || forward_observed() || !x.device().is_cpu() ||
      x.dtype() != DType::f32 || x.dim() != 4)
    return false;
  // Folding reads and writes the weights once per call; it saves BN's and the
  // ReLU's passes over the output. It pays where the output is the larger:
  // not in VGG's last layers at small batches (512 x 512 x 3 x 3 weights, 2 x 2 maps).
  const int64_t stride = conv.spec.stride;
  const int64_t out_elements = x.size(0) * conv.weight.size(0) * ((x.size(2) + stride - 1) / stride) *
                               ((x.size(3) + stride - 1) / stride);
  return 2 * out_elements >= conv.weight.numel();
}

Tensor conv_bn_inference(const Conv2d& conv, const BatchNorm2d& bn, const Tensor& x, bool relu, const Tensor& residual) {
  const int64_t k = conv.weight.size(0);
  const Tensor scale = ops::div(bn.weight, ops::sqrt(ops::add(bn.running_var, bn.eps)));
  const Tensor weight = ops::mul(conv.weight, scale.reshape({k, 1, 1, 1}));
  Tensor bias = ops::sub(bn.bias, ops::mul(bn.running_mean, scale));
  if (conv.bias.defined()) bias = ops::add(bias, ops::mul(conv.bias, scale));
  return ops::conv2d_inference(x, weight, bias, conv.options(), relu, residual);
}

void reset_parameters(Linear& layer) {
  const bool previous = skip_init;
  skip_init = false;
  init_like_pytorch(layer.weight, layer.bias);
  skip_init = previous;
}

void reset_parameters(Conv2d& layer) {
  const bool previous = skip_init;
  skip_init = false;
  init_like_pytorch(layer.weight, layer.bias);
  skip_init = previous;
}

void reset_parameters(BatchNorm2d& layer) {
  const NoGradGuard no_grad;
  layer.weight.fill_(1);
  layer.bias.fill_(0);
  layer.running_mean.fill_(0);
  layer.running_var.fill_(1);
  layer.num_batches_tracked.fill_(0);
}

Tensor ReLU::forward(const Tensor& x) { return ops::relu(x); }

MaxPool2d::MaxPool2d(int64_t kernel, int64_t stride, int64_t padding)
    : options{.kernel = {kernel, kernel}, .stride = {stride, stride}, .padding = {padding, padding}} {}

Tensor MaxPool2d::forward(const Tensor& x) { return ops::max_pool2d(x, options); }

Tensor GlobalAvgPool2d::forward(const Tensor& x) { return ops::global_avg_pool2d(x); }

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (size_t i = 0; i < layers_.size(); ++i) {
    // Conv2d → BatchNorm2d (→ ReLU) runs as one convolution where it may (VGG's features).
    const auto* conv = dynamic_cast<const Conv2d*>(layers_[i].get());
    const auto* bn = i + 1 < layers_.size() ? dynamic_cast<const BatchNorm2d*>(layers_[i + 1].get()) : nullptr;
    if (conv && bn && may_fold_batch_norm(*conv, *bn, h)) {
      const bool relu = i + 2 < layers_.size() && dynamic_cast<const ReLU*>(layers_[i + 2].get()) != nullptr;
      h = conv_bn_inference(*conv, *bn, h, relu);
      i += relu ? 2 : 1;
      continue;
    }
    // BatchNorm2d → ReLU runs as one op where no observer would miss the calls.
    auto* own_bn = dynamic_cast<BatchNorm2d*>(layers_[i].get());
    if (own_bn && !forward_observed() && i + 1 < layers_.size() &&
        dynamic_cast<const ReLU*>(layers_[i + 1].get()) != nullptr) {
      h = own_bn->forward_relu(h);
      ++i;
      continue;
    }
    h = (*layers_[i])(h);
  }
  return h;
}

}  // namespace tpp::models
