#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <numeric>

#include "engine/autograd.h"
#include "engine/philox.h"
#include "ops/elementwise.h"
#include "ops/layout.h"
#include "ops/pool.h"
#include "tests/gradcheck.h"

using namespace tpp;
using tpp::testing::gradcheck;
using tpp::testing::random_input;

namespace {
Tensor plane(int64_t h, int64_t w) {  // [1, 1, h, w] holding 0, 1, 2, ... row by row
  return arange(0, static_cast<double>(h * w), 1, {.dtype = DType::f64}).reshape({1, 1, h, w});
}
}  // namespace

TEST_SUITE("pool") {
  TEST_CASE("max_pool2d 2x2 picks the largest of each window") {
    const Tensor y = ops::max_pool2d(plane(4, 4), {.kernel = {2, 2}});
    CHECK(y.sizes() == Shape{1, 1, 2, 2});
    CHECK(y.to_vector<double>() == std::vector<double>{5, 7, 13, 15});
  }

  TEST_CASE("max_pool2d pads with -inf") {
    // Kernel 3, stride 2, padding 1 on 5x5: windows cover rows/cols {0,1}, {1,2,3}, {3,4}.
    const Tensor neg = plane(5, 5) * -1.0;
    const Tensor y = ops::max_pool2d(neg, {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}});
    CHECK(y.sizes() == Shape{1, 1, 3, 3});
    CHECK(y.to_vector<double>() == std::vector<double>{0, -1, -3, -5, -6, -8, -15, -16, -18});
  }

  TEST_CASE("ceil_mode adds a partial window") {
    CHECK(ops::max_pool2d(plane(5, 5), {.kernel = {2, 2}}).sizes() == Shape{1, 1, 2, 2});
    const Tensor y = ops::max_pool2d(plane(5, 5), {.kernel = {2, 2}, .ceil_mode = true});
    CHECK(y.sizes() == Shape{1, 1, 3, 3});
    CHECK(y.to_vector<double>() == std::vector<double>{6, 8, 9, 16, 18, 19, 21, 23, 24});
    CHECK(ops::max_pool2d(plane(6, 6), {.kernel = {3, 3}, .stride = {2, 2}, .ceil_mode = true}).sizes() ==
          Shape{1, 1, 3, 3});
  }

  TEST_CASE("ceil_mode drops a last window that would start in the right padding") {
    // 5 + 2*1 - 2 = 5 -> ceil(5/2) + 1 = 4 windows, but the 4th starts at 6 - 1 = 5 >= 5. PyTorch gives 3.
    const Tensor y = ops::max_pool2d(plane(5, 5), {.kernel = {2, 2}, .padding = {1, 1}, .ceil_mode = true});
    CHECK(y.sizes() == Shape{1, 1, 3, 3});
    CHECK(y.to_vector<double>() == std::vector<double>{0, 2, 4, 10, 12, 14, 20, 22, 24});
  }

  TEST_CASE("rectangular kernels and strides") {
    const Tensor y = ops::max_pool2d(plane(4, 6), {.kernel = {2, 3}, .stride = {1, 3}});
    CHECK(y.sizes() == Shape{1, 1, 3, 2});
    CHECK(y.to_vector<double>() == std::vector<double>{8, 11, 14, 17, 20, 23});
  }

  TEST_CASE("max_pool2d backward routes the gradient to each window's maximum") {
    Tensor x = from_vector<double>({1, 4, 2, 0, 3, 0, 8, 1, 5, 6, 0, 2, 7, 1, 3, 9}, {1, 1, 4, 4});
    x.set_requires_grad(true);
    ops::max_pool2d(x, {.kernel = {2, 2}}).backward(from_vector<double>({1, 2, 3, 4}, {1, 1, 2, 2}));
    CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 3, 0, 0, 4});
  }

  TEST_CASE("overlapping max windows accumulate the gradient") {
    Tensor x = from_vector<double>({0, 0, 0, 0, 9, 0, 0, 0, 0}, {1, 1, 3, 3});
    x.set_requires_grad(true);
    ops::max_pool2d(x, {.kernel = {2, 2}, .stride = {1, 1}}).backward(ones({1, 1, 2, 2}, {.dtype = DType::f64}));
    CHECK(x.grad().to_vector<double>()[4] == 4);
  }

  TEST_CASE("avg_pool2d counts padding in the divisor by default") {
    const Tensor x = ones({1, 1, 3, 3});
    const Tensor with = ops::avg_pool2d(x, {.kernel = {3, 3}, .stride = {1, 1}, .padding = {1, 1}});
    const std::vector<float> expect{4.f / 9, 6.f / 9, 4.f / 9, 6.f / 9, 1, 6.f / 9, 4.f / 9, 6.f / 9, 4.f / 9};
    const std::vector<float> got = with.to_vector<float>();
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(expect[i]));
    const Tensor without = ops::avg_pool2d(
        x, {.kernel = {3, 3}, .stride = {1, 1}, .padding = {1, 1}, .count_include_pad = false});
    CHECK(without.to_vector<float>() == std::vector<float>(9, 1.0f));
  }

  TEST_CASE("avg_pool2d leaves the ceil-mode overhang out of the divisor") {
    // PyTorch 1.13: F.avg_pool2d(arange(9.).reshape(1,1,3,3), 2, 2, 0, ceil_mode=True) = [[2, 3.5], [6.5, 8]].
    const Tensor y = ops::avg_pool2d(plane(3, 3), {.kernel = {2, 2}, .ceil_mode = true});
    CHECK(y.to_vector<double>() == std::vector<double>{2, 3.5, 6.5, 8});
  }

  TEST_CASE("global_avg_pool2d averages each plane into [N, C]") {
    const Tensor x = arange(0, 16, 1).reshape({2, 2, 2, 2});
    const Tensor y = ops::global_avg_pool2d(x);
    CHECK(y.sizes() == Shape{2, 2});
    CHECK(y.to_vector<float>() == std::vector<float>{1.5, 5.5, 9.5, 13.5});
  }

  TEST_CASE("gradcheck: max_pool2d") {
    const Tensor x = random_input({2, 2, 5, 5}, 41);  // distinct values: no ties
    gradcheck([](const auto& in) { return ops::max_pool2d(in[0], {.kernel = {2, 2}}); }, {x});
    gradcheck(
        [](const auto& in) {
          return ops::max_pool2d(in[0], {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}, .ceil_mode = true});
        },
        {x});
  }

  TEST_CASE("gradcheck: avg_pool2d with padding, both divisor rules, and ceil mode") {
    const Tensor x = random_input({2, 2, 5, 4}, 42);
    for (const bool include : {true, false}) {
      gradcheck(
          [include](const auto& in) {
            return ops::avg_pool2d(
                in[0], {.kernel = {3, 3}, .stride = {2, 1}, .padding = {1, 1}, .count_include_pad = include});
          },
          {x});
      gradcheck(
          [include](const auto& in) {
            return ops::avg_pool2d(
                in[0], {.kernel = {2, 3}, .stride = {2, 2}, .padding = {1, 1}, .ceil_mode = true,
                        .count_include_pad = include});
          },
          {x});
    }
  }

  TEST_CASE("gradcheck: global_avg_pool2d") {
    gradcheck([](const auto& in) { return ops::global_avg_pool2d(in[0]); }, {random_input({2, 3, 3, 2}, 43)});
  }

  TEST_CASE("pooling needs a 4-d x") {
    CHECK_THROWS_WITH(ops::max_pool2d(zeros({3, 4, 4}), {}), "max_pool2d: expected x to be 4-d but got shape [3, 4, 4]");
    CHECK_THROWS_WITH(ops::global_avg_pool2d(zeros({3, 4})),
                      "global_avg_pool2d: expected x to be 4-d but got shape [3, 4]");
  }

  TEST_CASE("padding may be at most half the kernel") {
    CHECK_THROWS_WITH(ops::avg_pool2d(zeros({1, 1, 4, 4}), {.kernel = {3, 3}, .padding = {2, 1}}),
                      "avg_pool2d: padding [2, 1] must be between 0 and half the kernel [3, 3] (x has shape [1, 1, 4, 4])");
  }

  TEST_CASE("the kernel must fit the padded input") {
    CHECK_THROWS_WITH(ops::max_pool2d(zeros({1, 1, 2, 5}), {.kernel = {3, 3}}),
                      "max_pool2d: kernel [3, 3] is larger than the padded input of x with shape [1, 1, 2, 5] and "
                      "padding [0, 0]");
  }

  TEST_CASE("an input plane with no pixels is refused even when padding would make windows") {
    CHECK_THROWS_WITH(ops::max_pool2d(zeros({1, 1, 0, 4}), {.kernel = {2, 2}, .padding = {1, 1}}),
                      "max_pool2d: x of shape [1, 1, 0, 4] has no pixels to pool");
    CHECK_THROWS_WITH(ops::avg_pool2d(zeros({2, 3, 5, 0}), {.kernel = {2, 2}, .padding = {1, 1}}),
                      "avg_pool2d: x of shape [2, 3, 5, 0] has no pixels to pool");
  }

  TEST_CASE("kernel and stride must be positive") {
    CHECK_THROWS_WITH(ops::max_pool2d(zeros({1, 1, 2, 2}), {.kernel = {0, 2}}),
                      "max_pool2d: kernel [0, 2] and stride [0, 0] must be positive (x has shape [1, 1, 2, 2])");
  }

  TEST_CASE("max_pool2d with dilation 2 takes every other row and column of a 3x3 span (PyTorch)") {
    const Tensor x = from_vector<double>({3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4, 6, 2, 6, 4, 3},
                                         {1, 1, 5, 5});
    // PyTorch 1.13: F.max_pool2d(x, 2, 1, 0, dilation=2)
    CHECK(ops::max_pool2d(x, {.kernel = {2, 2}, .stride = {1, 1}, .dilation = {2, 2}}).to_vector<double>() ==
          std::vector<double>{9, 8, 9, 9, 8, 6, 9, 8, 9});
  }

  TEST_CASE("a dilated window whose taps all fall in the padding gives -inf and no gradient (PyTorch)") {
    const Tensor x = arange(0, 4, 1, {.dtype = DType::f64}).view({1, 1, 2, 2}).set_requires_grad();
    const Tensor y = ops::max_pool2d(x, {.kernel = {2, 2}, .stride = {1, 1}, .padding = {1, 1}, .dilation = {3, 3}});
    REQUIRE(y.sizes() == Shape{1, 1, 1, 1});
    CHECK(y.item() == -std::numeric_limits<double>::infinity());
    y.backward(ones({1, 1, 1, 1}, {.dtype = DType::f64}));
    CHECK(x.grad().to_vector<double>() == std::vector<double>(4, 0.0));
  }

  TEST_CASE("gradcheck: max_pool2d with dilation, padding and ceil mode") {
    const Tensor x = random_input({2, 2, 7, 6}, 43);
    gradcheck(
        [](const auto& in) {
          return ops::max_pool2d(
              in[0], {.kernel = {3, 2}, .stride = {2, 1}, .padding = {1, 1}, .ceil_mode = true, .dilation = {2, 3}});
        },
        {x});
  }

  TEST_CASE("adaptive_avg_pool2d averages PyTorch's windows for any output size") {
    std::vector<double> v;
    for (int i = 0; i < 25; ++i) v.push_back(i * i / 7.0);
    const Tensor x = from_vector<double>(v, {1, 1, 5, 5});
    // PyTorch 1.13: F.adaptive_avg_pool2d(x, (3, 2))
    const std::vector<double> expected{2.7380952380952386, 5.309523809523809, 19.76190476190476,
                                       26.619047619047617, 49.88095238095238, 61.02380952380952};
    const std::vector<double> got = ops::adaptive_avg_pool2d(x, {3, 2}).to_vector<double>();
    REQUIRE(got.size() == expected.size());
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(expected[i]).epsilon(1e-12));
  }

  TEST_CASE("adaptive_avg_pool2d to 1x1 is the global average") {
    const Tensor x = random_input({2, 3, 4, 5}, 44);
    const auto a = ops::adaptive_avg_pool2d(x, {1, 1}).to_vector<double>(), g = ops::global_avg_pool2d(x).to_vector<double>();
    for (size_t i = 0; i < a.size(); ++i) CHECK(a[i] == doctest::Approx(g[i]));
  }

  TEST_CASE("gradcheck: adaptive_avg_pool2d with overlapping windows and larger outputs") {
    const Tensor x = random_input({2, 2, 5, 3}, 45);
    gradcheck([](const auto& in) { return ops::adaptive_avg_pool2d(in[0], {3, 2}); }, {x});
    gradcheck([](const auto& in) { return ops::adaptive_avg_pool2d(in[0], {7, 4}); }, {x});
  }

  TEST_CASE("adaptive_avg_pool2d refuses an output size below 1") {
    CHECK_THROWS_WITH(ops::adaptive_avg_pool2d(zeros({1, 1, 4, 4}), {0, 2}),
                      "adaptive_avg_pool2d: output size [0, 2] must be positive (x has shape [1, 1, 4, 4])");
  }

  TEST_CASE("max_pool2d 2x2 stride 2 takes the first of tied maxima and the last NaN, odd sizes dropping the rest") {
    // The fixed four-tap path: ties go to the first tap in row order, NaN
    // beats any number and a later NaN the earlier one (as the general path).
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const Tensor x = from_vector<double>({3, 3, 1, 1, 9,  //
                                          2, 3, nan, 0, 9,  //
                                          7, 7, 5, 6, 9},
                                         {1, 1, 3, 5})
                         .set_requires_grad();
    const Tensor y = ops::max_pool2d(x, {.kernel = {2, 2}});
    REQUIRE(y.sizes() == Shape{1, 1, 1, 2});
    CHECK(y.to_vector<double>()[0] == 3);
    CHECK(std::isnan(y.to_vector<double>()[1]));
    y.backward(ones({1, 1, 1, 2}, {.dtype = DType::f64}));
    const std::vector<double> dx = x.grad().to_vector<double>();
    CHECK(dx[0] == 1);  // the first 3, not the ones at (0, 1) or (1, 1)
    CHECK(dx[7] == 1);  // the NaN
    CHECK(std::accumulate(dx.begin(), dx.end(), 0.0) == 2);
  }

  TEST_CASE("max_pool2d in inference on channels-last input gives the NCHW path's values, channels-last") {
    manual_seed(31);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const Tensor nchw = randn({2, 5, 7, 6});
    nchw.select(0, 1).select(0, 3).select(0, 2).fill_(nan);  // one NaN, in image 1, channel 3
    const Tensor channels_last = nchw.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2});
    REQUIRE(ops::is_channels_last(channels_last));
    const NoGradGuard no_grad;
    for (const ops::Pool2dOptions& o :
         {ops::Pool2dOptions{.kernel = {2, 2}}, ops::Pool2dOptions{.kernel = {3, 3}, .stride = {2, 1}, .padding = {1, 1}},
          ops::Pool2dOptions{.kernel = {2, 3}, .stride = {1, 2}, .padding = {1, 1}, .ceil_mode = true, .dilation = {2, 1}}}) {
      const Tensor want = ops::max_pool2d(nchw, o), got = ops::max_pool2d(channels_last, o);
      CHECK(ops::is_channels_last(got));
      REQUIRE(got.sizes() == want.sizes());
      const std::vector<float> g = got.contiguous().to_vector<float>(), w = want.to_vector<float>();
      for (size_t i = 0; i < w.size(); ++i)
        REQUIRE_MESSAGE((g[i] == w[i] || (std::isnan(g[i]) && std::isnan(w[i]))), "element ", i);
    }
  }

  TEST_CASE("max_pool2d on channels-last input that requires a gradient records it") {
    manual_seed(32);
    Tensor nchw = randn({2, 3, 4, 6}, {.dtype = DType::f64});
    Tensor channels_last = nchw.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2});
    nchw.set_requires_grad(true);
    channels_last.set_requires_grad(true);
    const Tensor dy = randn({2, 3, 2, 3}, {.dtype = DType::f64});
    ops::max_pool2d(nchw, {.kernel = {2, 2}}).backward(dy);
    ops::max_pool2d(channels_last, {.kernel = {2, 2}}).backward(dy);
    REQUIRE(channels_last.grad().defined());
    CHECK(channels_last.grad().contiguous().to_vector<double>() == nchw.grad().to_vector<double>());
  }

  TEST_CASE("max_pool2d: NaN wins a window, and of several NaNs the last one takes the gradient (PyTorch)") {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const Tensor x = from_vector<double>({1, nan, 5, nan}, {1, 1, 2, 2}).set_requires_grad();
    const Tensor y = ops::max_pool2d(x, {.kernel = {2, 2}});
    CHECK(std::isnan(y.item()));
    y.backward(ones({1, 1, 1, 1}, {.dtype = DType::f64}));
    CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 0, 0, 1});
  }
}
