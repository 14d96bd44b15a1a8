#include <doctest/doctest.h>

#include <cmath>

#include "ops/elementwise.h"
#include "tests/gradcheck.h"

using namespace tpp;
using tpp::testing::gradcheck;
using tpp::testing::random_input;

TEST_SUITE("elementwise") {
  TEST_CASE("add broadcasts a row over a matrix") {
    const Tensor a = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
    const Tensor b = from_vector<float>({10, 20, 30}, {3});
    CHECK((a + b).to_vector<float>() == std::vector<float>{11, 22, 33, 14, 25, 36});
  }

  TEST_CASE("sub, mul and div broadcast a column") {
    const Tensor a = from_vector<float>({2, 4, 6, 8}, {2, 2});
    const Tensor b = from_vector<float>({1, 2}, {2, 1});
    CHECK((a - b).to_vector<float>() == std::vector<float>{1, 3, 4, 6});
    CHECK((a * b).to_vector<float>() == std::vector<float>{2, 4, 12, 16});
    CHECK((a / b).to_vector<float>() == std::vector<float>{2, 4, 3, 4});
  }

  TEST_CASE("ops on a transposed view read through strides") {
    const Tensor a = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
    const Tensor t = a.transpose(0, 1);  // [[1,4],[2,5],[3,6]]
    CHECK((t * 2.0).to_vector<float>() == std::vector<float>{2, 8, 4, 10, 6, 12});
  }

  TEST_CASE("unary ops compute their functions") {
    const Tensor x = from_vector<double>({-2, 0.5, 4}, {3});
    CHECK(ops::relu(x).to_vector<double>() == std::vector<double>{0, 0.5, 4});
    CHECK(ops::abs(x).to_vector<double>() == std::vector<double>{2, 0.5, 4});
    CHECK(ops::neg(x).to_vector<double>() == std::vector<double>{2, -0.5, -4});
    CHECK(ops::pow(x, 2).to_vector<double>() == std::vector<double>{4, 0.25, 16});
    CHECK(ops::sqrt(ops::abs(x)).to_vector<double>()[2] == doctest::Approx(2));
    CHECK(ops::exp(ops::log(ops::abs(x))).to_vector<double>()[0] == doctest::Approx(2));
  }

  TEST_CASE("mismatched shapes name the op and both shapes") {
    CHECK_THROWS_WITH(zeros({2, 3}) + zeros({4}), "add: shapes [2, 3] and [4] cannot be broadcast together");
  }

  TEST_CASE("mismatched dtypes name the op, dtypes and shapes") {
    CHECK_THROWS_WITH(zeros({2}) * zeros({2}, {.dtype = DType::f64}),
                      "mul: dtype mismatch: f32 with shape [2] and f64 with shape [2]");
  }

  TEST_CASE("integer tensors are refused by math ops") {
    CHECK_THROWS_WITH(ops::exp(zeros({3}, {.dtype = DType::i64})),
                      "exp: expected a floating tensor (f32 or f64) but got i64 with shape [3]");
  }

  TEST_CASE("gradcheck: binary ops with broadcasting") {
    const Tensor a = random_input({3, 4}, 1), b = random_input({4}, 2, 0.5, 2);
    gradcheck([](const auto& in) { return in[0] + in[1]; }, {a, b});
    gradcheck([](const auto& in) { return in[0] - in[1]; }, {a, b});
    gradcheck([](const auto& in) { return in[0] * in[1]; }, {a, b});
    gradcheck([](const auto& in) { return in[0] / in[1]; }, {a, b});
    gradcheck([](const auto& in) { return in[1] / in[0].slice(0, 0, 1); }, {random_input({3, 4}, 3, 0.5, 1), b});
  }

  TEST_CASE("gradcheck: scalar variants") {
    const Tensor x = random_input({5}, 4, 0.5, 2);
    gradcheck([](const auto& in) { return in[0] * 3.0 + 1.0; }, {x});
    gradcheck([](const auto& in) { return 2.0 - in[0]; }, {x});
    gradcheck([](const auto& in) { return 2.0 / in[0]; }, {x});
    gradcheck([](const auto& in) { return ops::pow(in[0], 3); }, {x});
    gradcheck([](const auto& in) { return ops::pow(in[0], -0.5); }, {x});
  }

  TEST_CASE("gradcheck: unary ops") {
    const Tensor x = random_input({2, 5}, 5), pos = random_input({2, 5}, 6, 0.1, 3);
    gradcheck([](const auto& in) { return ops::neg(in[0]); }, {x});
    gradcheck([](const auto& in) { return ops::exp(in[0]); }, {x});
    gradcheck([](const auto& in) { return ops::log(in[0]); }, {pos});
    gradcheck([](const auto& in) { return ops::sqrt(in[0]); }, {pos});
    gradcheck([](const auto& in) { return ops::abs(in[0]); }, {x});
    gradcheck([](const auto& in) { return ops::relu(in[0]); }, {x});
  }

  TEST_CASE("relu gradcheck tolerates inputs exactly on the kink") {
    Tensor x = from_vector<double>({-1, 0, 0, 2}, {4});
    x.set_requires_grad(true);
    gradcheck([](const auto& in) { return ops::relu(in[0]); }, {x}, {.max_kink_fraction = 0.5});
  }

  TEST_CASE("mask_mul zeroes masked elements and their gradients") {
    Tensor x = random_input({2, 3}, 7);
    const Tensor mask = from_vector<uint8_t>({1, 0, 1}, {3});
    const Tensor y = ops::mask_mul(x, mask);
    CHECK(y.to_vector<double>()[1] == 0);
    gradcheck([mask](const auto& in) { return ops::mask_mul(in[0], mask); }, {x});
  }

  TEST_CASE("relu passes NaN through, forward and backward, as PyTorch") {
    const Tensor x = from_vector<double>({std::nan(""), -1, 2, 0}, {4}).set_requires_grad();
    const Tensor y = ops::relu(x);
    const std::vector<double> v = y.to_vector<double>();
    CHECK(std::isnan(v[0]));
    CHECK(v[1] == 0);
    y.backward(from_vector<double>({5, 6, 7, 8}, {4}));
    CHECK(x.grad().to_vector<double>() == std::vector<double>{5, 0, 7, 0});
  }

  TEST_CASE("the gradient of pow(x, 0) is 0, also at x = 0 (not 0 * inf)") {
    const Tensor x = from_vector<double>({0, 2, -3}, {3}).set_requires_grad();
    const Tensor y = ops::pow(x, 0);
    CHECK(y.to_vector<double>() == std::vector<double>{1, 1, 1});
    y.backward(from_vector<double>({1, 1, 1}, {3}));
    CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 0, 0});
  }
}
