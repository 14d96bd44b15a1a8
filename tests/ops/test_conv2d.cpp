#include <doctest/doctest.h>

#include "engine/philox.h"
#include "ops/conv2d.h"
#include "tests/gradcheck.h"

using namespace tpp;
using tpp::testing::gradcheck;
using tpp::testing::random_input;

namespace {

// Direct seven-loop convolution in f64: the definition, nothing clever.
std::vector<double> naive_conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const ops::Conv2dOptions& o,
                                 Shape& out_shape) {
  const std::vector<double> xv = x.to_vector<double>(), wv = w.to_vector<double>();
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t K = w.size(0), Cg = w.size(1), KH = w.size(2), KW = w.size(3), Kg = K / o.groups;
  const int64_t OH = (H + 2 * o.padding[0] - o.dilation[0] * (KH - 1) - 1) / o.stride[0] + 1;
  const int64_t OW = (W + 2 * o.padding[1] - o.dilation[1] * (KW - 1) - 1) / o.stride[1] + 1;
  out_shape = {N, K, OH, OW};
  std::vector<double> y(static_cast<size_t>(N * K * OH * OW), 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double s = bias.defined() ? bias.to_vector<double>()[k] : 0.0;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t i = 0; i < KH; ++i)
              for (int64_t j = 0; j < KW; ++j) {
                const int64_t ih = oh * o.stride[0] - o.padding[0] + i * o.dilation[0];
                const int64_t iw = ow * o.stride[1] - o.padding[1] + j * o.dilation[1];
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                const int64_t cin = (k / Kg) * Cg + c;
                s += xv[((n * C + cin) * H + ih) * W + iw] * wv[((k * Cg + c) * KH + i) * KW + j];
              }
          y[((n * K + k) * OH + oh) * OW + ow] = s;
        }
  return y;
}

struct Config {
  const char* name;
  Shape x, w;
  ops::Conv2dOptions opts;
  bool bias;
};

// Small shapes that between them reach every path of the kernels: padding
// 0/1/2, stride 2, dilation 2, groups 2, depthwise, pointwise (1x1), batch 1,
// odd image sizes, and batches that split into uneven chunks of images.
const std::vector<Config> kConfigs = {
    {"3x3 pad 1, bias", {3, 2, 5, 7}, {4, 2, 3, 3}, {.padding = {1, 1}}, true},
    {"3x3 pad 0, no bias", {2, 3, 5, 6}, {2, 3, 3, 3}, {}, false},
    {"3x3 stride 2 pad 1", {3, 2, 7, 5}, {3, 2, 3, 3}, {.stride = {2, 2}, .padding = {1, 1}}, true},
    {"3x3 pad 2, batch 1", {1, 2, 4, 5}, {3, 2, 3, 3}, {.padding = {2, 2}}, false},
    {"dilation 2", {2, 2, 6, 7}, {2, 2, 3, 3}, {.padding = {1, 2}, .dilation = {2, 2}}, true},
    {"groups 2", {2, 4, 5, 5}, {6, 2, 3, 3}, {.padding = {1, 1}, .groups = 2}, true},
    {"depthwise", {2, 3, 5, 6}, {3, 1, 3, 3}, {.stride = {2, 1}, .padding = {1, 1}, .groups = 3}, false},
    {"pointwise 1x1", {3, 4, 3, 5}, {5, 4, 1, 1}, {}, true},
    {"1x1 stride 2", {2, 3, 5, 5}, {2, 3, 1, 1}, {.stride = {2, 2}}, false},
    {"2x3 kernel, mixed stride and padding", {2, 2, 6, 7}, {3, 2, 2, 3}, {.stride = {1, 2}, .padding = {0, 1}}, true},
};

}  // namespace

TEST_SUITE("conv2d") {
  TEST_CASE("conv2d of a 3x3 image with a 2x2 kernel, no padding") {
    const Tensor x = from_vector<float>({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
    const Tensor w = from_vector<float>({1, 0, 0, -1}, {1, 1, 2, 2});
    const Tensor y = ops::conv2d(x, w);
    CHECK(y.sizes() == Shape{1, 1, 2, 2});
    CHECK(y.to_vector<float>() == std::vector<float>{-4, -4, -4, -4});
  }

  TEST_CASE("conv2d with padding 1 and stride 2 sums the clipped windows") {
    const Tensor x = arange(1, 17, 1, {}).view({1, 1, 4, 4});  // rows 1..4, 5..8, 9..12, 13..16
    const Tensor y = ops::conv2d(x, ones({1, 1, 3, 3}), {}, {.stride = {2, 2}, .padding = {1, 1}});
    CHECK(y.sizes() == Shape{1, 1, 2, 2});
    // windows centred on (0,0), (0,2), (2,0), (2,2)
    CHECK(y.to_vector<float>() == std::vector<float>{1 + 2 + 5 + 6, 2 + 3 + 4 + 6 + 7 + 8, 5 + 6 + 9 + 10 + 13 + 14,
                                                     6 + 7 + 8 + 10 + 11 + 12 + 14 + 15 + 16});
  }

  TEST_CASE("conv2d adds the bias per output channel") {
    const Tensor y = ops::conv2d(ones({2, 1, 2, 2}), ones({2, 1, 1, 1}), from_vector<float>({10, -1}, {2}));
    CHECK(y.to_vector<float>() == std::vector<float>{11, 11, 11, 11, 0, 0, 0, 0, 11, 11, 11, 11, 0, 0, 0, 0});
  }

  TEST_CASE("conv2d with groups keeps channel groups apart") {
    const Tensor x = from_vector<double>({1, 2, 3, 4}, {1, 2, 1, 2});  // channel 0: [1,2], channel 1: [3,4]
    const Tensor w = from_vector<double>({2, 3, 5, 7}, {4, 1, 1, 1});  // two filters per group
    const Tensor y = ops::conv2d(x, w, {}, {.groups = 2});
    CHECK(y.to_vector<double>() == std::vector<double>{2, 4, 3, 6, 15, 20, 21, 28});
  }

  TEST_CASE("conv2d with dilation 2 skips every other pixel") {
    const Tensor x = arange(0, 5, 1, {.dtype = DType::f64}).view({1, 1, 1, 5});
    const Tensor w = from_vector<double>({1, 10, 100}, {1, 1, 1, 3});
    const Tensor y = ops::conv2d(x, w, {}, {.dilation = {1, 2}});
    CHECK(y.to_vector<double>() == std::vector<double>{0 + 20 + 400});
  }

  TEST_CASE("conv2d matches a direct convolution on every configuration") {
    Generator gen(7);
    for (const Config& c : kConfigs) {
      CAPTURE(c.name);
      const Tensor x = randn(c.x, {}, &gen), w = randn(c.w, {}, &gen);
      const Tensor b = c.bias ? randn({c.w[0]}, {}, &gen) : Tensor();
      Shape expected_shape;
      const std::vector<double> expected = naive_conv2d(x, w, b, c.opts, expected_shape);
      const Tensor y = ops::conv2d(x, w, b, c.opts);
      REQUIRE(y.sizes() == expected_shape);
      const std::vector<float> got = y.to_vector<float>();
      for (size_t i = 0; i < got.size(); ++i) REQUIRE(got[i] == doctest::Approx(expected[i]).epsilon(1e-5));
    }
  }

  TEST_CASE("conv2d matches a direct convolution at a ResNet shape with many images per chunk") {
    Generator gen(8);
    const Tensor x = randn({5, 16, 8, 8}, {}, &gen), w = randn({16, 16, 3, 3}, {}, &gen);
    const ops::Conv2dOptions o{.padding = {1, 1}};
    Shape shape;
    const std::vector<double> expected = naive_conv2d(x, w, Tensor(), o, shape);
    const std::vector<float> got = ops::conv2d(x, w, {}, o).to_vector<float>();
    for (size_t i = 0; i < got.size(); ++i) REQUIRE(got[i] == doctest::Approx(expected[i]).epsilon(1e-4));
  }

  TEST_CASE("conv2d reads non-contiguous inputs") {
    Generator gen(9);
    const Tensor x = randn({2, 3, 5, 4}, {.dtype = DType::f64}, &gen);
    const Tensor w = randn({2, 3, 3, 3}, {.dtype = DType::f64}, &gen);
    const Tensor xt = x.transpose(2, 3).contiguous().transpose(2, 3);  // same values, strided
    CHECK(ops::conv2d(xt, w).to_vector<double>() == ops::conv2d(x, w).to_vector<double>());
  }

  TEST_CASE("gradcheck: conv2d over every configuration") {
    for (const Config& c : kConfigs) {
      CAPTURE(c.name);
      std::vector<Tensor> inputs = {random_input(c.x, 21), random_input(c.w, 22)};
      if (c.bias) inputs.push_back(random_input({c.w[0]}, 23));
      const ops::Conv2dOptions o = c.opts;
      gradcheck([o](const auto& in) { return ops::conv2d(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), o); }, inputs);
    }
  }

  TEST_CASE("conv2d of a batch equals conv2d of each image, gradients included") {
    // Batch 2 runs one chunk per thread; batch 1 splits each GEMM over the threads instead.
    const Tensor x = random_input({2, 32, 12, 12}, 41), w = random_input({32, 32, 3, 3}, 42);
    const Tensor b = random_input({32}, 43);
    const Tensor dy = random_input({2, 32, 12, 12}, 44).detach();
    const ops::Conv2dOptions o{.padding = {1, 1}};
    const Tensor y = ops::conv2d(x, w, b, o);
    y.backward(dy);
    const std::vector<double> y_batch = y.to_vector<double>(), dx_batch = x.grad().to_vector<double>();
    const std::vector<double> dw_batch = w.grad().to_vector<double>(), db_batch = b.grad().to_vector<double>();
    std::vector<double> dw_sum(dw_batch.size(), 0.0), db_sum(db_batch.size(), 0.0);
    for (int64_t n = 0; n < 2; ++n) {
      const Tensor xn = x.detach().slice(0, n, n + 1).contiguous().set_requires_grad(true);
      Tensor wn = w.detach().clone(), bn = b.detach().clone();
      wn.set_requires_grad(true);
      bn.set_requires_grad(true);
      const Tensor yn = ops::conv2d(xn, wn, bn, o);
      yn.backward(dy.slice(0, n, n + 1).contiguous());
      const size_t image = static_cast<size_t>(yn.numel());
      const std::vector<double> yv = yn.to_vector<double>(), dxv = xn.grad().to_vector<double>();
      for (size_t i = 0; i < image; ++i) REQUIRE(yv[i] == doctest::Approx(y_batch[n * image + i]).epsilon(1e-12));
      for (size_t i = 0; i < dxv.size(); ++i)
        REQUIRE(dxv[i] == doctest::Approx(dx_batch[n * dxv.size() + i]).epsilon(1e-12));
      const std::vector<double> dwv = wn.grad().to_vector<double>(), dbv = bn.grad().to_vector<double>();
      for (size_t i = 0; i < dwv.size(); ++i) dw_sum[i] += dwv[i];
      for (size_t i = 0; i < dbv.size(); ++i) db_sum[i] += dbv[i];
    }
    for (size_t i = 0; i < dw_sum.size(); ++i) REQUIRE(dw_sum[i] == doctest::Approx(dw_batch[i]).epsilon(1e-12));
    for (size_t i = 0; i < db_sum.size(); ++i) REQUIRE(db_sum[i] == doctest::Approx(db_batch[i]).epsilon(1e-12));
  }

  TEST_CASE("conv2d computes only the gradients that are wanted") {
    const Tensor x = random_input({2, 2, 4, 4}, 31).detach();
    const Tensor w = random_input({3, 2, 3, 3}, 32), b = random_input({3}, 33);
    ops::conv2d(x, w, b).backward(ones({2, 3, 2, 2}, {.dtype = DType::f64}));
    CHECK_FALSE(x.grad().defined());
    CHECK(w.grad().sizes() == w.sizes());
    CHECK(b.grad().to_vector<double>() == std::vector<double>{8, 8, 8});
  }

  TEST_CASE("conv2d names both shapes when channels do not match") {
    CHECK_THROWS_WITH(ops::conv2d(zeros({2, 3, 8, 8}), zeros({16, 4, 3, 3})),
                      "conv2d: input has 3 channels but weight [16, 4, 3, 3] expects 4 (groups 1)");
    CHECK_THROWS_WITH(ops::conv2d(zeros({2, 4, 8, 8}), zeros({16, 4, 3, 3}), {}, {.groups = 2}),
                      "conv2d: input has 4 channels but weight [16, 4, 3, 3] expects 8 (groups 2)");
  }

  TEST_CASE("conv2d refuses inputs and weights that are not 4-d") {
    CHECK_THROWS_WITH(ops::conv2d(zeros({3, 8, 8}), zeros({16, 3, 3, 3})),
                      "conv2d: expected input to be 4-d [N, C, H, W] but got shape [3, 8, 8]");
    CHECK_THROWS_WITH(ops::conv2d(zeros({1, 3, 8, 8}), zeros({16, 3, 3})),
                      "conv2d: expected weight to be 4-d [out, in / groups, kh, kw] but got shape [16, 3, 3]");
  }

  TEST_CASE("conv2d refuses groups that do not divide the channels") {
    CHECK_THROWS_WITH(ops::conv2d(zeros({1, 4, 8, 8}), zeros({6, 1, 3, 3}), {}, {.groups = 3}),
                      "conv2d: groups 3 does not divide the 4 input channels of input [1, 4, 8, 8]");
    CHECK_THROWS_WITH(ops::conv2d(zeros({1, 6, 8, 8}), zeros({4, 2, 3, 3}), {}, {.groups = 3}),
                      "conv2d: groups 3 does not divide the 4 output channels of weight [4, 2, 3, 3]");
  }

  TEST_CASE("conv2d refuses an empty output") {
    CHECK_THROWS_WITH(ops::conv2d(zeros({1, 3, 2, 2}), zeros({4, 3, 3, 3})),
                      "conv2d: input [1, 3, 2, 2] is too small for weight [4, 3, 3, 3] with padding [0, 0], "
                      "dilation [1, 1] and stride [1, 1]: the output would be 0x0");
    CHECK_THROWS_WITH(ops::conv2d(zeros({1, 3, 4, 4}), zeros({4, 3, 3, 3}), {}, {.dilation = {2, 1}}),
                      "conv2d: input [1, 3, 4, 4] is too small for weight [4, 3, 3, 3] with padding [0, 0], "
                      "dilation [2, 1] and stride [1, 1]: the output would be 0x2");
  }

  TEST_CASE("conv2d refuses mixed dtypes") {
    CHECK_THROWS_WITH(ops::conv2d(zeros({1, 3, 8, 8}), zeros({4, 3, 3, 3}, {.dtype = DType::f64})),
                      "conv2d: dtype mismatch: f32 with shape [1, 3, 8, 8] and f64 with shape [4, 3, 3, 3]");
    CHECK_THROWS_WITH(ops::conv2d(zeros({1, 3, 8, 8}), zeros({4, 3, 3, 3}), zeros({4}, {.dtype = DType::f64})),
                      "conv2d: dtype mismatch: f32 with shape [1, 3, 8, 8] and f64 with shape [4]");
  }

  TEST_CASE("conv2d refuses a bias of the wrong size") {
    CHECK_THROWS_WITH(ops::conv2d(zeros({1, 3, 8, 8}), zeros({4, 3, 3, 3}), zeros({3})),
                      "conv2d: bias of shape [3] does not match weight [4, 3, 3, 3] (expected [4])");
  }

  TEST_CASE("conv2d refuses non-positive stride, dilation and groups, and negative padding") {
    const Tensor x = zeros({1, 3, 8, 8}), w = zeros({4, 3, 3, 3});
    CHECK_THROWS_WITH(ops::conv2d(x, w, {}, {.stride = {0, 1}}), "conv2d: stride must be positive but got [0, 1]");
    CHECK_THROWS_WITH(ops::conv2d(x, w, {}, {.padding = {1, -1}}),
                      "conv2d: padding must be non-negative but got [1, -1]");
    CHECK_THROWS_WITH(ops::conv2d(x, w, {}, {.dilation = {0, 0}}), "conv2d: dilation must be positive but got [0, 0]");
    CHECK_THROWS_WITH(ops::conv2d(x, w, {}, {.groups = 0}), "conv2d: groups must be positive but got 0");
  }
}
