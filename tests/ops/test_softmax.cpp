#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "ops/softmax.h"
#include "tests/gradcheck.h"

using namespace tpp;
using tpp::testing::gradcheck;
using tpp::testing::random_input;

TEST_SUITE("softmax") {
  TEST_CASE("softmax of a row") {
    const std::vector<double> y = ops::softmax(from_vector<double>({1, 2, 3}, {3}), 0).to_vector<double>();
    const double total = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
    CHECK(y[0] == doctest::Approx(std::exp(1.0) / total).epsilon(1e-14));
    CHECK(y[1] == doctest::Approx(std::exp(2.0) / total).epsilon(1e-14));
    CHECK(y[2] == doctest::Approx(std::exp(3.0) / total).epsilon(1e-14));
  }

  TEST_CASE("log_softmax is x minus log-sum-exp") {
    const std::vector<double> y = ops::log_softmax(from_vector<double>({1, 2, 3}, {1, 3}), 1).to_vector<double>();
    const double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
    CHECK(y[0] == doctest::Approx(1 - lse).epsilon(1e-14));
    CHECK(y[2] == doctest::Approx(3 - lse).epsilon(1e-14));
  }

  TEST_CASE("large inputs do not overflow") {
    const std::vector<float> big = ops::softmax(from_vector<float>({1000, 1001, 1002}, {3}), 0).to_vector<float>();
    const std::vector<float> small = ops::softmax(from_vector<float>({0, 1, 2}, {3}), 0).to_vector<float>();
    for (size_t i = 0; i < 3; ++i) CHECK(big[i] == doctest::Approx(small[i]));
    const std::vector<float> log_big = ops::log_softmax(from_vector<float>({-1000, 0}, {2}), 0).to_vector<float>();
    CHECK(log_big[0] == doctest::Approx(-1000));
    CHECK(log_big[1] == 0);
  }

  TEST_CASE("-inf entries get probability zero") {
    const float inf = std::numeric_limits<float>::infinity();
    CHECK(ops::softmax(from_vector<float>({-inf, 0, 0}, {3}), 0).to_vector<float>() ==
          std::vector<float>{0, 0.5, 0.5});
  }

  TEST_CASE("softmax over a leading dim runs down the columns") {
    const Tensor x = from_vector<double>({1, 5, 2, 4, 3, 6}, {3, 2});
    const std::vector<double> down = ops::softmax(x, 0).to_vector<double>();
    const std::vector<double> across = ops::softmax(x.transpose(0, 1), 1).to_vector<double>();  // [2, 3]
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 2; ++j) CHECK(down[i * 2 + j] == doctest::Approx(across[j * 3 + i]).epsilon(1e-14));
  }

  TEST_CASE("each slice along the dim sums to one") {
    const Tensor x = random_input({3, 4, 5}, 61).detach();
    for (const int64_t dim : {0, 1, 2}) {
      const Tensor y = ops::softmax(x, dim);
      const std::vector<double> v = y.to_vector<double>();
      const int64_t stride = y.strides()[dim];
      double first_slice = 0;
      for (int64_t k = 0; k < y.size(dim); ++k) first_slice += v[k * stride];
      CHECK(first_slice == doctest::Approx(1).epsilon(1e-14));
    }
  }

  TEST_CASE("gradcheck: softmax and log_softmax over every dim") {
    const Tensor x = random_input({3, 4, 5}, 62, -3, 3);
    for (const int64_t dim : {0, 1, -1}) {
      gradcheck([dim](const auto& in) { return ops::softmax(in[0], dim); }, {x});
      gradcheck([dim](const auto& in) { return ops::log_softmax(in[0], dim); }, {x});
    }
  }

  TEST_CASE("bad dim names the op") {
    CHECK_THROWS_WITH(ops::softmax(zeros({2, 3}), 2), "softmax: dim 2 is out of range for a 2-d tensor");
    CHECK_THROWS_WITH(ops::log_softmax(zeros({2, 3}, {.dtype = DType::i64}), 1),
                      "log_softmax: expected a floating tensor (f32 or f64) but got i64 with shape [2, 3]");
  }

  TEST_CASE("a 0-d tensor takes dim 0 and -1: softmax is 1, log_softmax 0 (PyTorch)") {
    const Tensor x = from_vector<double>({2.5}, {}).set_requires_grad();
    CHECK(ops::softmax(x, -1).item() == 1);
    CHECK(ops::softmax(x, 0).item() == 1);
    const Tensor y = ops::log_softmax(x, -1);
    CHECK(y.item() == 0);
    CHECK(y.sizes() == Shape{});
    y.backward(from_vector<double>({3}, {}));
    CHECK(x.grad().item() == 0);
  }
}
