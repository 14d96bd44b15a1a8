#include <doctest/doctest.h>

#include "ops/pad.h"
#include "tests/gradcheck.h"

using namespace tpp;
using tpp::testing::gradcheck;
using tpp::testing::random_input;

TEST_SUITE("pad") {
  TEST_CASE("pads the last dim before and after") {
    const Tensor y = ops::constant_pad(from_vector<float>({1, 2, 3, 4}, {2, 2}), {1, 2});
    CHECK(y.sizes() == Shape{2, 5});
    CHECK(y.to_vector<float>() == std::vector<float>{0, 1, 2, 0, 0, 0, 3, 4, 0, 0});
  }

  TEST_CASE("pads the last two dims with a value, last dim first") {
    const Tensor y = ops::constant_pad(from_vector<float>({1, 2}, {1, 1, 1, 2}), {0, 1, 1, 0}, -1);
    CHECK(y.sizes() == Shape{1, 1, 2, 3});
    CHECK(y.to_vector<float>() == std::vector<float>{-1, -1, -1, 1, 2, -1});
  }

  TEST_CASE("pads the channel dim of an NCHW tensor") {
    const Tensor x = from_vector<float>({1, 2, 3, 4}, {1, 2, 1, 2});
    const Tensor y = ops::constant_pad(x, {0, 0, 0, 0, 1, 2});
    CHECK(y.sizes() == Shape{1, 5, 1, 2});
    CHECK(y.to_vector<float>() == std::vector<float>{0, 0, 1, 2, 3, 4, 0, 0, 0, 0});
  }

  TEST_CASE("the ResNet option-A shortcut: subsample, then zero-pad channels") {
    const Tensor x = arange(0, 32, 1).reshape({1, 2, 4, 4});
    const Tensor shortcut = ops::constant_pad(x.slice(2, 0, 4, 2).slice(3, 0, 4, 2), {0, 0, 0, 0, 1, 1});
    CHECK(shortcut.sizes() == Shape{1, 4, 2, 2});
    CHECK(shortcut.to_vector<float>() ==
          std::vector<float>{0, 0, 0, 0, 0, 2, 8, 10, 16, 18, 24, 26, 0, 0, 0, 0});
  }

  TEST_CASE("an empty pad list copies x") {
    const Tensor x = from_vector<float>({1, 2}, {2});
    const Tensor y = ops::constant_pad(x, {});
    CHECK(y.to_vector<float>() == std::vector<float>{1, 2});
    CHECK_FALSE(y.shares_storage_with(x));
  }

  TEST_CASE("the gradient is the unpadded part of dy") {
    Tensor x = from_vector<double>({1, 2}, {1, 2});
    x.set_requires_grad(true);
    ops::constant_pad(x, {1, 1, 1, 0}).backward(arange(0, 8, 1, {.dtype = DType::f64}).reshape({2, 4}));
    CHECK(x.grad().to_vector<double>() == std::vector<double>{5, 6});
  }

  TEST_CASE("gradcheck: constant_pad over one, two and the channel dim") {
    const Tensor x = random_input({2, 3, 2, 2}, 51);
    gradcheck([](const auto& in) { return ops::constant_pad(in[0], {1, 2}, 0.5); }, {x});
    gradcheck([](const auto& in) { return ops::constant_pad(in[0], {1, 0, 0, 2}); }, {x});
    gradcheck([](const auto& in) { return ops::constant_pad(in[0], {0, 0, 0, 0, 2, 1}); }, {x});
    gradcheck([](const auto& in) { return ops::constant_pad(in[0].slice(2, 0, 2, 2).slice(3, 0, 2, 2), {0, 0, 0, 0, 1, 1}); },
              {x});
  }

  TEST_CASE("negative pads crop, as PyTorch") {
    const Tensor x = from_vector<double>({1, 2, 3, 4, 5, 6}, {2, 3});
    CHECK(ops::constant_pad(x, {-1, 0}).to_vector<double>() == std::vector<double>{2, 3, 5, 6});
    CHECK(ops::constant_pad(x, {1, -2}, 9).to_vector<double>() == std::vector<double>{9, 1, 9, 4});
    CHECK(ops::constant_pad(x, {-1, -2}).sizes() == Shape{2, 0});
    // A cut longer than x eats into the other end's padding: [9 | 1 2 3] minus 4 from the end.
    CHECK(ops::constant_pad(x, {1, -4}, 9).sizes() == Shape{2, 0});
    CHECK(ops::constant_pad(x, {-3, 1}, 9).to_vector<double>() == std::vector<double>{9, 9});
    CHECK(ops::constant_pad(x, {0, 0, -1, 1}).to_vector<double>() == std::vector<double>{4, 5, 6, 0, 0, 0});
  }

  TEST_CASE("gradcheck: constant_pad with crops and pads together") {
    const Tensor x = random_input({2, 3, 4}, 31);
    gradcheck([](const auto& in) { return ops::constant_pad(in[0], {-1, 2, 1, -2}, 0.5); }, {x});
  }

  TEST_CASE("a crop below size 0 is refused, naming the dim") {
    CHECK_THROWS_WITH(ops::constant_pad(zeros({2, 3}), {-2, -2}),
                      "constant_pad: pad [-2, -2] leaves dim 1 of x with shape [2, 3] a negative size");
  }

  TEST_CASE("the pad list must be even and cover at most every dim") {
    CHECK_THROWS_WITH(ops::constant_pad(zeros({2, 3}), {1, 1, 1}),
                      "constant_pad: pad [1, 1, 1] must have an even length of at most twice the dims of x with shape "
                      "[2, 3]");
    CHECK_THROWS_WITH(ops::constant_pad(zeros({3}), {1, 1, 1, 1}),
                      "constant_pad: pad [1, 1, 1, 1] must have an even length of at most twice the dims of x with "
                      "shape [3]");
  }
}
