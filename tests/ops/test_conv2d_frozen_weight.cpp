// conv2d's backward when only the input needs a gradient (a frozen model's input Jacobian).
#include <doctest/doctest.h>

#include "engine/philox.h"
#include "ops/conv2d.h"
#include "ops/reduce.h"

using namespace tpp;

TEST_SUITE("ops") {
  TEST_CASE("conv2d backward with a weight that needs no gradient gives the input gradient") {
    manual_seed(3);
    const Tensor w = randn({2, 1, 3, 3});
    Tensor x = zeros({1, 1, 3, 3});
    x.set_requires_grad();
    ops::sum(ops::conv2d(x, w)).backward();  // one output per filter: d/dx = Σ_filters w
    const std::vector<float> expected = ops::sum(w, {0}).to_vector<float>();
    const std::vector<float> got = x.grad().to_vector<float>();
    REQUIRE(got.size() == expected.size());
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(expected[i]));
  }
}
