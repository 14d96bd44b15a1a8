#include <doctest/doctest.h>

#include "ops/norm.h"
#include "tests/gradcheck.h"

using namespace tpp;
using tpp::testing::gradcheck;
using tpp::testing::random_input;

TEST_SUITE("norm") {
  TEST_CASE("frobenius_norm is the root of the sum of squares") {
    const Tensor y = ops::frobenius_norm(from_vector<float>({3, 0, 0, -4}, {2, 2}));
    CHECK(y.dim() == 0);
    CHECK(y.item() == 5);
  }

  TEST_CASE("the gradient is x / ||x||") {
    Tensor x = from_vector<double>({3, -4}, {2});
    x.set_requires_grad(true);
    ops::frobenius_norm(x).backward();
    CHECK(x.grad().to_vector<double>()[0] == doctest::Approx(0.6).epsilon(1e-15));
    CHECK(x.grad().to_vector<double>()[1] == doctest::Approx(-0.8).epsilon(1e-15));
  }

  TEST_CASE("the gradient at zero is zero") {
    Tensor x = zeros({2, 3}, {.dtype = DType::f64});
    x.set_requires_grad(true);
    ops::frobenius_norm(x).backward();
    CHECK(x.grad().to_vector<double>() == std::vector<double>(6, 0.0));
  }

  TEST_CASE("gradcheck: frobenius_norm") {
    gradcheck([](const auto& in) { return ops::frobenius_norm(in[0]); }, {random_input({3, 2, 2}, 81)});
  }

  TEST_CASE("integer tensors are refused") {
    CHECK_THROWS_WITH(ops::frobenius_norm(zeros({2}, {.dtype = DType::i64})),
                      "frobenius_norm: expected a floating tensor (f32 or f64) but got i64 with shape [2]");
  }
}
