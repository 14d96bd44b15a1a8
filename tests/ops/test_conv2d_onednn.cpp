// The two CPU convolution paths against each other: oneDNN's f32 kernels
// (the default) and the im2col + GEMM reference, which in f64 is the
// definition the gradient checks verify. Random shapes cover groups,
// dilation, stride, padding, odd sizes, batch 1, and 1x1 to 7x7 kernels.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "engine/philox.h"
#include "ops/conv2d.h"
#include "ops/reduce.h"
#include "ops/cpu/conv_path.h"
#include "ops/cpu/onednn/context.h"
#include "ops/cpu/onednn/conv.h"

using namespace tpp;
using ops::CpuConvPath;
using ops::CpuConvPathOverride;

namespace {

struct RandomConv {
  Shape x, w;
  ops::Conv2dOptions o;
  bool bias = false;

  std::string str() const {
    return fmt::format("x {} w {} stride [{}, {}] padding [{}, {}] dilation [{}, {}] groups {}{}", shape_str(x),
                       shape_str(w), o.stride[0], o.stride[1], o.padding[0], o.padding[1], o.dilation[0],
                       o.dilation[1], o.groups, bias ? " bias" : "");
  }
};

int64_t pick(std::mt19937& rng, std::initializer_list<int64_t> values) {
  std::uniform_int_distribution<size_t> index(0, values.size() - 1);
  return *(values.begin() + index(rng));
}

// A valid convolution (non-empty output) of random geometry.
RandomConv random_conv(std::mt19937& rng) {
  while (true) {
    RandomConv c;
    const int64_t groups = pick(rng, {1, 1, 1, 2, 3});
    const int64_t cg = pick(rng, {1, 2, 3, 4, 8}), kg = pick(rng, {1, 2, 5, 8});
    const int64_t kh = pick(rng, {1, 3, 3, 5, 7}), kw = pick(rng, {1, kh, kh, 3});
    c.o.groups = groups;
    c.o.stride = {pick(rng, {1, 1, 2, 3}), pick(rng, {1, 1, 2})};
    c.o.dilation = {pick(rng, {1, 1, 2}), pick(rng, {1, 1, 2})};
    c.o.padding = {pick(rng, {0, 1, 2, 3}), pick(rng, {0, 1, 3})};
    c.x = {pick(rng, {1, 1, 2, 3, 5}), groups * cg, pick(rng, {1, 4, 7, 9, 12, 13}), pick(rng, {3, 5, 8, 11})};
    c.w = {groups * kg, cg, kh, kw};
    c.bias = pick(rng, {0, 1}) == 1;
    const auto fits = [](int64_t in, int64_t pad, int64_t dil, int64_t k) { return in + 2 * pad - dil * (k - 1) >= 1; };
    if (fits(c.x[2], c.o.padding[0], c.o.dilation[0], kh) && fits(c.x[3], c.o.padding[1], c.o.dilation[1], kw))
      return c;
  }
}

struct Results {
  std::vector<double> y, dx, dw, db;
};

// Forward and backward from dy on copies of the inputs in `dtype`.
Results run_conv(const RandomConv& c, const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& dy,
                 DType dtype) {
  const auto leaf = [&](const Tensor& t) {
    if (!t.defined()) return Tensor();
    Tensor copy = t.to(dtype).detach();
    copy.set_requires_grad(true);
    return copy;
  };
  const Tensor xl = leaf(x), wl = leaf(w), bl = leaf(b);
  const Tensor y = ops::conv2d(xl, wl, bl, c.o);
  y.backward(dy.to(dtype));
  return {y.to_vector<double>(), xl.grad().to_vector<double>(), wl.grad().to_vector<double>(),
          bl.defined() ? bl.grad().to_vector<double>() : std::vector<double>{}};
}

// Within f32 rounding of sums of a few hundred products of N(0, 1) values.
void check_close(const std::vector<double>& got, const std::vector<double>& want, const std::string& what,
                 const std::string& conv) {
  REQUIRE(got.size() == want.size());
  double scale = 1;
  for (const double v : want) scale = std::max(scale, std::abs(v));
  for (size_t i = 0; i < got.size(); ++i)
    REQUIRE_MESSAGE(std::abs(got[i] - want[i]) <= 1e-5 * scale, what, " element ", i, ": ", got[i], " vs ", want[i],
                    " for ", conv);
}

}  // namespace

TEST_SUITE("conv2d on oneDNN") {
  TEST_CASE("oneDNN's f32 convolution matches the f64 reference on random shapes, every gradient included") {
    std::mt19937 rng(2024);
    Generator gen(11);
    const CpuConvPathOverride path(CpuConvPath::onednn);
    for (int i = 0; i < 60; ++i) {
      const RandomConv c = random_conv(rng);
      CAPTURE(c.str());
      const Tensor x = randn(c.x, {}, &gen), w = randn(c.w, {}, &gen);
      const Tensor b = c.bias ? randn({c.w[0]}, {}, &gen) : Tensor();
      const Shape y_shape = ops::conv2d(x, w, b, c.o).sizes();
      const Tensor dy = randn(y_shape, {}, &gen);
      const Results ours = run_conv(c, x, w, b, dy, DType::f32);
      const Results reference = run_conv(c, x, w, b, dy, DType::f64);
      check_close(ours.y, reference.y, "output", c.str());
      check_close(ours.dx, reference.dx, "input gradient", c.str());
      check_close(ours.dw, reference.dw, "weight gradient", c.str());
      check_close(ours.db, reference.db, "bias gradient", c.str());
    }
  }

  TEST_CASE("the f32 reference path and oneDNN agree at the paper's ResNet shapes") {
    Generator gen(12);
    for (const RandomConv& c : {RandomConv{{8, 16, 32, 32}, {16, 16, 3, 3}, {.padding = {1, 1}}, false},
                                RandomConv{{8, 16, 32, 32}, {32, 16, 3, 3}, {.stride = {2, 2}, .padding = {1, 1}}, false},
                                RandomConv{{8, 32, 16, 16}, {64, 32, 1, 1}, {.stride = {2, 2}}, false},
                                RandomConv{{8, 3, 32, 32}, {16, 3, 3, 3}, {.padding = {1, 1}}, true}}) {
      CAPTURE(c.str());
      const Tensor x = randn(c.x, {}, &gen), w = randn(c.w, {}, &gen);
      const Tensor b = c.bias ? randn({c.w[0]}, {}, &gen) : Tensor();
      const Tensor dy = randn(ops::conv2d(x, w, b, c.o).sizes(), {}, &gen);
      Results onednn, reference;
      {
        const CpuConvPathOverride path(CpuConvPath::onednn);
        onednn = run_conv(c, x, w, b, dy, DType::f32);
      }
      {
        const CpuConvPathOverride path(CpuConvPath::reference);
        reference = run_conv(c, x, w, b, dy, DType::f32);
      }
      check_close(onednn.y, reference.y, "output", c.str());
      check_close(onednn.dx, reference.dx, "input gradient", c.str());
      check_close(onednn.dw, reference.dw, "weight gradient", c.str());
      check_close(onednn.db, reference.db, "bias gradient", c.str());
    }
  }

  TEST_CASE("oneDNN primitives are made once per shape and pass, then reused") {
    const CpuConvPathOverride path(CpuConvPath::onednn);
    Generator gen(13);
    const auto step = [&] {
      Tensor x = randn({3, 5, 9, 7}, {}, &gen), w = randn({6, 5, 3, 3}, {}, &gen);
      x.set_requires_grad(true);
      w.set_requires_grad(true);
      ops::sum(ops::conv2d(x, w, {}, {.padding = {1, 1}})).backward();
    };
    const size_t before = ops::cpu::onednn::conv_primitive_count();
    step();
    CHECK(ops::cpu::onednn::conv_primitive_count() == before + 3);  // forward, backward-data, backward-weights
    step();
    CHECK(ops::cpu::onednn::conv_primitive_count() == before + 3);
  }

  TEST_CASE("the reference path and f64 convolutions make no oneDNN primitive") {
    Generator gen(14);
    const size_t before = ops::cpu::onednn::conv_primitive_count();
    ops::conv2d(randn({2, 3, 11, 6}, {.dtype = DType::f64}, &gen), randn({4, 3, 2, 2}, {.dtype = DType::f64}, &gen));
    {
      const CpuConvPathOverride path(CpuConvPath::reference);
      ops::conv2d(randn({2, 3, 11, 6}, {}, &gen), randn({4, 3, 2, 2}, {}, &gen));
    }
    CHECK(ops::cpu::onednn::conv_primitive_count() == before);
  }

  TEST_CASE("a NaN weight makes its channel's every output NaN on the default path, zero padding included") {
    // The differential test found oneDNN giving finite values here; operands
    // holding NaN or infinity take the reference path.
    const CpuConvPathOverride path(CpuConvPath::onednn);
    Tensor w = ones({2, 1, 3, 3});
    w.data<float>()[0] = std::nanf("");
    const Tensor y = ops::conv2d(ones({1, 1, 4, 4}), w, {}, {.padding = {1, 1}});
    const std::vector<float> values = y.to_vector<float>();  // [1, 2, 4, 4]: channel 0 has the NaN tap
    for (size_t i = 0; i < values.size(); ++i) CHECK(std::isnan(values[i]) == (i < 16));
  }

  TEST_CASE("a oneDNN error becomes one tpp::Error line naming the op, the shapes and oneDNN's status") {
    const auto describe = [] { return std::string("conv2d forward (oneDNN) of input [1, 2, 3, 4]"); };
    CHECK_THROWS_WITH_AS(
        ops::cpu::onednn::checked(describe, [] { throw dnnl::error(dnnl_invalid_arguments, "bad strides"); }),
        "conv2d forward (oneDNN) of input [1, 2, 3, 4]: oneDNN invalid_arguments (bad strides)", Error);
  }

  TEST_CASE("the CPU convolution path is named onednn or reference, nothing else") {
    CHECK(ops::parse_cpu_conv_path("onednn") == CpuConvPath::onednn);
    CHECK(ops::parse_cpu_conv_path("reference") == CpuConvPath::reference);
    CHECK_THROWS_WITH_AS(ops::parse_cpu_conv_path("gemm"), "cpu-conv: expected onednn or reference but got 'gemm'",
                         Error);
  }
}
