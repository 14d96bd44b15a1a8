// Inference without autograd folds batch norm into the convolution before it
// (and runs the ReLU after it inside oneDNN's kernel): the logits are the
// unfused forward's to rounding, the fused path is taken only where it may,
// and the fused op refuses to stand in for a recorded convolution.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "engine/autograd.h"
#include "engine/philox.h"
#include "models/layers.h"
#include "models/zoo.h"
#include "ops/cpu/conv_path.h"
#include "ops/cpu/onednn/conv.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"

using namespace tpp;
using namespace tpp::models;

namespace {

// BN with the statistics and affine maps of a trained net, not the identity
// of a fresh one.
void randomise_batch_norms(Module& model) {
  for (const auto& [name, module] : model.named_modules()) {
    auto* bn = dynamic_cast<BatchNorm2d*>(module);
    if (!bn) continue;
    const int64_t c = bn->weight.size(0);
    NoGradGuard no_grad;
    bn->weight.copy_(uniform({c}, 0.5, 1.5));
    bn->bias.copy_(uniform({c}, -0.5, 0.5));
    bn->running_mean.copy_(uniform({c}, -0.3, 0.3));
    bn->running_var.copy_(uniform({c}, 0.2, 2.0));
  }
}

double max_relative_difference(const Tensor& a, const Tensor& b) {
  const double scale = ops::max(ops::abs(b)).item();
  return ops::max(ops::abs(ops::sub(a, b))).item() / std::max(scale, 1e-12);
}

// The logits in eval mode with autograd recording (every layer on its own)
// and without (BN folded), and how many convolution primitives the second
// forward made (the inference ones are new: the first forward made the
// training ones).
struct Forwards {
  Tensor unfused, fused;
  size_t new_primitives = 0;
};

Forwards both_forwards(Module& model, const Tensor& x) {
  model.train(false);
  Forwards f;
  f.unfused = model(x).detach();
  const size_t before = ops::cpu::onednn::conv_primitive_count();
  {
    NoGradGuard no_grad;
    f.fused = model(x);
  }
  f.new_primitives = ops::cpu::onednn::conv_primitive_count() - before;
  return f;
}

bool on_onednn() { return ops::cpu_conv_path() == ops::CpuConvPath::onednn; }

}  // namespace

TEST_SUITE("models") {
  TEST_CASE("resnet20 in eval mode without autograd gives the unfused logits with BN folded into its convolutions") {
    manual_seed(21);
    const auto model = make_model("resnet20", 10, 3);
    randomise_batch_norms(*model);
    const Forwards f = both_forwards(*model, randn({4, 3, 32, 32}));
    MESSAGE("max |fused - unfused| / max |unfused| = ", max_relative_difference(f.fused, f.unfused));
    CHECK(max_relative_difference(f.fused, f.unfused) < 1e-5);
    if (on_onednn()) CHECK(f.new_primitives > 0);  // the fused path ran
  }

  TEST_CASE("a Sequential's Conv2d, BatchNorm2d and ReLU (VGG's features) run as one convolution in inference") {
    manual_seed(22);
    const auto model = make_model("vgg_small", 10, 1);
    randomise_batch_norms(*model);
    const Forwards f = both_forwards(*model, randn({3, 1, 28, 28}));
    CHECK(max_relative_difference(f.fused, f.unfused) < 1e-5);
    if (on_onednn()) CHECK(f.new_primitives > 0);
  }

  TEST_CASE("a convolution whose weights outweigh its output (VGG's last layers, one image) is not folded") {
    manual_seed(24);
    const auto conv = std::make_shared<Conv2d>(
        Conv2dSpec{.in_channels = 64, .out_channels = 64, .kernel_size = 3, .stride = 1, .padding = 1, .bias = false});
    const auto bn = std::make_shared<BatchNorm2d>(64);
    conv->train(false);
    bn->train(false);
    NoGradGuard no_grad;
    // One 2x2 image: 256 outputs against 36,864 weights; a batch of 64 at 8x8: 262,144 outputs.
    CHECK_FALSE(may_fold_batch_norm(*conv, *bn, randn({1, 64, 2, 2})));
    CHECK(may_fold_batch_norm(*conv, *bn, randn({64, 64, 8, 8})));
  }

  TEST_CASE("with a forward observer installed every layer is called and seen: nothing is folded") {
    manual_seed(23);
    const auto model = make_model("resnet20", 10, 3);
    model->train(false);
    int batch_norm_calls = 0;
    NoGradGuard no_grad;
    const ObserveForward observe([&](Module& m, const Tensor&, const Tensor&) {
      if (m.type_name() == "BatchNorm2d") ++batch_norm_calls;
    });
    (*model)(randn({2, 3, 32, 32}));
    CHECK(batch_norm_calls == 19);
  }

  TEST_CASE("conv2d_inference refuses an operand that requires a gradient while autograd records") {
    const Tensor x = randn({1, 2, 5, 5});
    Tensor w = randn({3, 2, 3, 3});
    w.set_requires_grad(true);
    CHECK_THROWS_WITH(ops::conv2d_inference(x, w, Tensor(), {}, true),
                      "conv2d_inference: an operand requires a gradient, which this op does not record; use conv2d, "
                      "or run under NoGradGuard");
    NoGradGuard no_grad;
    const Tensor y = ops::conv2d_inference(x, w, Tensor(), {.padding = {1, 1}}, true);
    const Tensor expected = ops::relu(ops::conv2d(x, w, Tensor(), {.padding = {1, 1}}));
    CHECK(max_relative_difference(y, expected) < 1e-6);
    CHECK(ops::max(ops::neg(y)).item() <= 0);  // no negative output
  }
}
