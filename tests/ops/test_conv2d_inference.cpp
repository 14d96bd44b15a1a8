// conv2d_inference: the inference-only convolution that folds in a residual
// sum and a ReLU, and hands channels-last activations from layer to layer.
// Its values are conv2d's (+ residual, then ReLU) on both CPU paths, whatever
// the layouts of its input and residual; its output is channels-last where
// oneDNN's kernel works so.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "engine/autograd.h"
#include "engine/philox.h"
#include "ops/conv2d.h"
#include "ops/cpu/conv_path.h"
#include "ops/cpu/onednn/conv.h"
#include "ops/elementwise.h"
#include "ops/layout.h"
#include "ops/reduce.h"

using namespace tpp;
using ops::CpuConvPath;
using ops::CpuConvPathOverride;

namespace {

Tensor to_channels_last(const Tensor& t) { return t.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2}); }

double max_relative_difference(const Tensor& a, const Tensor& b) {
  const double scale = ops::max(ops::abs(b)).item();
  return ops::max(ops::abs(ops::sub(a, b))).item() / std::max(scale, 1e-12);
}

// The unfused definition: conv2d, + residual, ReLU, each op on its own.
Tensor unfused(const Tensor& x, const Tensor& w, const Tensor& b, const ops::Conv2dOptions& o, bool relu,
               const Tensor& residual) {
  Tensor y = ops::conv2d(x, w, b, o);
  if (residual.defined()) y = ops::add(y, residual);
  return relu ? ops::relu(y) : y;
}

struct Operands {
  Tensor x, w, b, residual;
  ops::Conv2dOptions o;
};

// A ResNet block's second convolution: 16 -> 16 channels, 3x3, padding 1.
Operands block_conv(int64_t batch = 3) {
  return {.x = randn({batch, 16, 9, 9}),
          .w = randn({16, 16, 3, 3}) * 0.1,
          .b = randn({16}),
          .residual = randn({batch, 16, 9, 9}),
          .o = {.padding = {1, 1}}};
}

const char* path_name(CpuConvPath path) { return path == CpuConvPath::onednn ? "onednn" : "reference"; }

}  // namespace

TEST_SUITE("conv2d_inference") {
  TEST_CASE("the residual is added before the ReLU, on both CPU paths and from either input layout") {
    manual_seed(41);
    const Operands a = block_conv();
    const NoGradGuard no_grad;
    const Tensor want = unfused(a.x, a.w, a.b, a.o, true, a.residual);
    for (const CpuConvPath path : {CpuConvPath::onednn, CpuConvPath::reference}) {
      const CpuConvPathOverride on(path);
      for (const Tensor& x : {a.x, to_channels_last(a.x)})
        for (const Tensor& residual : {a.residual, to_channels_last(a.residual)}) {
          const Tensor y = ops::conv2d_inference(x, a.w, a.b, a.o, true, residual);
          CAPTURE(path_name(path));
          CHECK(max_relative_difference(y, want) < 1e-5);
          CHECK(ops::max(ops::neg(y)).item() <= 0);
        }
    }
  }

  TEST_CASE("without a ReLU the residual is added and negative values stay") {
    manual_seed(42);
    const Operands a = block_conv();
    const NoGradGuard no_grad;
    const Tensor y = ops::conv2d_inference(a.x, a.w, a.b, a.o, false, a.residual);
    CHECK(max_relative_difference(y, unfused(a.x, a.w, a.b, a.o, false, a.residual)) < 1e-5);
    CHECK(ops::max(ops::neg(y)).item() > 0);
  }

  TEST_CASE("on oneDNN the output of a ResNet-block shape is channels-last, and the next layer reads it as it is") {
    manual_seed(43);
    const CpuConvPathOverride on(CpuConvPath::onednn);
    const Operands a = block_conv(8);
    const NoGradGuard no_grad;
    const ops::Conv2dGeometry g{.batch = 8, .in_channels = 16, .in_h = 9, .in_w = 9, .out_channels = 16,
                                .kernel_h = 3, .kernel_w = 3, .out_h = 9, .out_w = 9, .pad_h = 1, .pad_w = 1};
    const bool channels_last = ops::cpu::onednn::inference_works_channels_last(g, true);
    MESSAGE("oneDNN's inference kernel for this shape works channels-last: ", channels_last);
    const Tensor h = ops::conv2d_inference(a.x, a.w, a.b, a.o, true);
    CHECK(ops::is_channels_last(h) == channels_last);
    const Tensor y = ops::conv2d_inference(h, a.w, a.b, a.o, true, h);  // the identity shortcut: h itself
    const Tensor h_want = unfused(a.x, a.w, a.b, a.o, true, Tensor());
    CHECK(max_relative_difference(y, unfused(h_want, a.w, a.b, a.o, true, h_want)) < 1e-5);
    CHECK(max_relative_difference(h, h_want) < 1e-5);  // the residual read, not overwritten
  }

  TEST_CASE("a NaN in the residual reaches the output as NaN, through the ReLU") {
    manual_seed(44);
    const Operands a = block_conv();
    a.residual.select(0, 2).select(0, 5).select(0, 4).select(0, 7).fill_(std::numeric_limits<double>::quiet_NaN());
    const NoGradGuard no_grad;
    for (const CpuConvPath path : {CpuConvPath::onednn, CpuConvPath::reference}) {
      const CpuConvPathOverride on(path);
      const Tensor y = ops::conv2d_inference(to_channels_last(a.x), a.w, a.b, a.o, true, a.residual);
      CAPTURE(path_name(path));
      CHECK(std::isnan(y.contiguous().to_vector<float>()[((2 * 16 + 5) * 9 + 4) * 9 + 7]));
      CHECK(ops::sum(ops::abs(y)).item() != ops::sum(ops::abs(y)).item());  // exactly one NaN makes the sum NaN
    }
  }

  TEST_CASE("f64 takes the reference path with a residual") {
    manual_seed(45);
    const Operands a = block_conv();
    const auto f64 = [](const Tensor& t) { return t.to(DType::f64); };
    const NoGradGuard no_grad;
    const Tensor y = ops::conv2d_inference(f64(a.x), f64(a.w), f64(a.b), a.o, true, f64(a.residual));
    CHECK(y.dtype() == DType::f64);
    CHECK(max_relative_difference(y, unfused(f64(a.x), f64(a.w), f64(a.b), a.o, true, f64(a.residual))) < 1e-12);
  }

  TEST_CASE("a residual whose shape is not the output's is refused, naming both") {
    manual_seed(46);
    const Operands a = block_conv();
    const NoGradGuard no_grad;
    CHECK_THROWS_WITH(ops::conv2d_inference(a.x, a.w, a.b, a.o, true, randn({3, 16, 9, 8})),
                      "conv2d_inference: residual of shape [3, 16, 9, 8] does not match the output shape [3, 16, 9, 9]");
  }

  TEST_CASE("a residual that requires a gradient is refused while autograd records") {
    manual_seed(47);
    const Operands a = block_conv();
    Tensor residual = a.residual;
    residual.set_requires_grad(true);
    CHECK_THROWS_WITH(ops::conv2d_inference(a.x, a.w, a.b, a.o, true, residual),
                      "conv2d_inference: an operand requires a gradient, which this op does not record; use conv2d, "
                      "or run under NoGradGuard");
  }
}
