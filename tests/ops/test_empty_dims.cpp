// Tensors with a zero-size dim that is not the innermost one, met together
// with broadcast, transposed or strided operands: every op gives an empty
// result (or the sum of nothing) and never touches memory. Found by the
// differential test against PyTorch (tests/difftest), where each crashed.
#include <doctest/doctest.h>

#include "engine/autograd.h"
#include "engine/finite.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"

using namespace tpp;

namespace {

Tensor leaf(const Shape& shape) { return zeros(shape, {.dtype = DType::f64}).set_requires_grad(); }

}  // namespace

TEST_SUITE("empty dims") {
  TEST_CASE("add of [0, 1] and [2] broadcasts to an empty [0, 2]") {
    const Tensor y = ones({0, 1}) + ones({2});
    CHECK(y.sizes() == Shape{0, 2});
  }

  TEST_CASE("[2, 0, 3] + [2, 1, 3] and [0, 3] * [1, 3] are empty, and so are their gradients") {
    const Tensor a = leaf({2, 0, 3}), b = leaf({2, 1, 3});
    ops::sum(a + b).backward();
    CHECK(a.grad().sizes() == Shape{2, 0, 3});
    CHECK(b.grad().to_vector<double>() == std::vector<double>(6, 0.0));
    const Tensor c = leaf({0, 3}), d = leaf({1, 3});
    ops::sum(c * d).backward();
    CHECK(d.grad().to_vector<double>() == std::vector<double>(3, 0.0));
  }

  TEST_CASE("exp of a transposed [2, 0] is an empty [0, 2]") {
    const Tensor y = ops::exp(zeros({2, 0}).transpose(0, 1));
    CHECK(y.sizes() == Shape{0, 2});
  }

  TEST_CASE("sum and mean over dim 0 of [0, 2] give zeros and NaN, with empty gradients") {
    const Tensor x = leaf({0, 2});
    const Tensor s = ops::sum(x, {0});
    CHECK(s.to_vector<double>() == std::vector<double>{0, 0});
    s.backward(ones({2}, {.dtype = DType::f64}));
    CHECK(x.grad().sizes() == Shape{0, 2});
    const Tensor m = ops::mean(x, {0});
    CHECK(std::isnan(m.to_vector<double>()[0]));
    m.backward(ones({2}, {.dtype = DType::f64}));
  }

  TEST_CASE("sum of [3, 0, 2] over dim 1 is zeros of [3, 2]") {
    const Tensor y = ops::sum(zeros({3, 0, 2}), {1});
    CHECK(y.to_vector<float>() == std::vector<float>(6, 0.0f));
  }

  TEST_CASE("fill_, copy_ and the finite scan of empty strided views do nothing") {
    Tensor x = zeros({2, 0, 3}).transpose(0, 2);
    x.fill_(1);
    x.copy_(zeros({3, 0, 2}, {.dtype = DType::f64}));
    CHECK(all_finite(x));
    CHECK(sum_to_shape(zeros({4, 0, 3}).transpose(0, 2), {3, 1, 1}).to_vector<float>() ==
          std::vector<float>(3, 0.0f));
  }
}
