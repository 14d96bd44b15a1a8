#include <doctest/doctest.h>

#include <array>

#include "engine/philox.h"
#include "ops/matmul.h"
#include "tests/gradcheck.h"

using namespace tpp;
using tpp::testing::gradcheck;
using tpp::testing::random_input;

namespace {

// Plain triple loop over row-major [m,k] x [k,n].
std::vector<double> naive_matmul(const std::vector<double>& a, const std::vector<double>& b, int64_t m, int64_t k,
                                 int64_t n) {
  std::vector<double> c(static_cast<size_t>(m * n), 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t p = 0; p < k; ++p) c[i * n + j] += a[i * k + p] * b[p * n + j];
  return c;
}

}  // namespace

TEST_SUITE("matmul") {
  TEST_CASE("matmul multiplies a 2x3 by a 3x2 matrix") {
    const Tensor a = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
    const Tensor b = from_vector<float>({7, 8, 9, 10, 11, 12}, {3, 2});
    const Tensor c = ops::matmul(a, b);
    CHECK(c.sizes() == Shape{2, 2});
    CHECK(c.to_vector<float>() == std::vector<float>{58, 64, 139, 154});
  }

  TEST_CASE("matmul reads transposed views in place") {
    const Tensor a = from_vector<double>({1, 4, 2, 5, 3, 6}, {3, 2});     // aᵀ = [[1,2,3],[4,5,6]]
    const Tensor b = from_vector<double>({7, 9, 11, 8, 10, 12}, {2, 3});  // bᵀ = [[7,8],[9,10],[11,12]]
    CHECK(ops::matmul(a.transpose(0, 1), b.transpose(0, 1)).to_vector<double>() ==
          std::vector<double>{58, 64, 139, 154});
  }

  TEST_CASE("matmul reads a column slice with a leading dimension") {
    const Tensor a = from_vector<double>({1, 2, 0, 3, 4, 0}, {2, 3}).slice(1, 0, 2);  // [[1,2],[3,4]]
    const Tensor eye = from_vector<double>({1, 0, 0, 1}, {2, 2});
    CHECK(ops::matmul(a, eye).to_vector<double>() == std::vector<double>{1, 2, 3, 4});
  }

  TEST_CASE("matmul treats 1-d operands as a row, a column, or a dot product") {
    const Tensor m = from_vector<double>({1, 2, 3, 4, 5, 6}, {2, 3});
    const Tensor v3 = from_vector<double>({1, 0, -1}, {3});
    const Tensor v2 = from_vector<double>({1, 1}, {2});
    const Tensor mv = ops::matmul(m, v3);
    CHECK(mv.sizes() == Shape{2});
    CHECK(mv.to_vector<double>() == std::vector<double>{-2, -2});
    const Tensor vm = ops::matmul(v2, m);
    CHECK(vm.sizes() == Shape{3});
    CHECK(vm.to_vector<double>() == std::vector<double>{5, 7, 9});
    const Tensor dot = ops::matmul(v3, v3);
    CHECK(dot.dim() == 0);
    CHECK(dot.item() == 2);
  }

  TEST_CASE("matmul with an empty inner dimension gives zeros") {
    const Tensor c = ops::matmul(zeros({2, 0}), zeros({0, 3}));
    CHECK(c.to_vector<float>() == std::vector<float>(6, 0.0f));
  }

  TEST_CASE("f32 matmul matches a naive product on sizes big enough to split over threads") {
    Generator gen(3);
    // [130,100]·[100,90] splits the rows of the result, [70,100]·[100,200] its columns.
    for (const auto& row : {std::array<int64_t, 3>{130, 100, 90}, {70, 100, 200}, {67, 129, 33}}) {
      const int64_t m = row[0];
      const int64_t k = row[1];
      const int64_t n = row[2];
      CAPTURE(m);
      const Tensor a = randn({m, k}, {}, &gen), b = randn({k, n}, {}, &gen);
      const std::vector<double> expected = naive_matmul(a.to_vector<double>(), b.to_vector<double>(), m, k, n);
      const std::vector<float> got = ops::matmul(a, b).to_vector<float>();
      for (size_t i = 0; i < got.size(); ++i) REQUIRE(got[i] == doctest::Approx(expected[i]).epsilon(1e-4));
      // The same product from transposed views of transposed copies.
      const Tensor at = a.transpose(0, 1).contiguous().transpose(0, 1);
      const Tensor bt = b.transpose(0, 1).contiguous().transpose(0, 1);
      const std::vector<float> got_t = ops::matmul(at, bt).to_vector<float>();
      for (size_t i = 0; i < got.size(); ++i) REQUIRE(got_t[i] == doctest::Approx(expected[i]).epsilon(1e-4));
    }
  }

  TEST_CASE("linear computes x wᵀ + b") {
    const Tensor x = from_vector<float>({1, 2, 3, 4}, {2, 2});
    const Tensor w = from_vector<float>({1, 0, 0, 1, 1, 1}, {3, 2});
    const Tensor b = from_vector<float>({10, 20, 30}, {3});
    CHECK(ops::linear(x, w, b).to_vector<float>() == std::vector<float>{11, 22, 33, 13, 24, 37});
    CHECK(ops::linear(x, w).to_vector<float>() == std::vector<float>{1, 2, 3, 3, 4, 7});
  }

  TEST_CASE("linear keeps the leading dims of its input") {
    const Tensor x = ones({2, 3, 4});
    const Tensor y = ops::linear(x, ones({5, 4}), full({5}, 1.0));
    CHECK(y.sizes() == Shape{2, 3, 5});
    CHECK(y.to_vector<float>() == std::vector<float>(30, 5.0f));
    CHECK(ops::linear(ones({4}), ones({5, 4})).sizes() == Shape{5});
  }

  TEST_CASE("gradcheck: matmul, including transposed operands") {
    const Tensor a = random_input({3, 4}, 1), b = random_input({4, 5}, 2);
    gradcheck([](const auto& in) { return ops::matmul(in[0], in[1]); }, {a, b});
    const Tensor at = random_input({4, 3}, 3), bt = random_input({5, 4}, 4);
    gradcheck([](const auto& in) { return ops::matmul(in[0].transpose(0, 1), in[1].transpose(0, 1)); }, {at, bt});
  }

  TEST_CASE("gradcheck: matmul with 1-d operands") {
    const Tensor m = random_input({3, 4}, 5), v4 = random_input({4}, 6), v3 = random_input({3}, 7);
    gradcheck([](const auto& in) { return ops::matmul(in[0], in[1]); }, {m, v4});
    gradcheck([](const auto& in) { return ops::matmul(in[0], in[1]); }, {v3, m});
    gradcheck([](const auto& in) { return ops::matmul(in[0], in[1]); }, {v4, random_input({4}, 8)});
  }

  TEST_CASE("gradcheck: linear with bias") {
    gradcheck([](const auto& in) { return ops::linear(in[0], in[1], in[2]); },
              {random_input({5, 4}, 9), random_input({3, 4}, 10), random_input({3}, 11)});
  }

  TEST_CASE("gradcheck: linear without bias, on a 3-d input") {
    gradcheck([](const auto& in) { return ops::linear(in[0], in[1]); },
              {random_input({2, 3, 4}, 12), random_input({6, 4}, 13)});
  }

  TEST_CASE("linear computes only the gradients that are wanted") {
    const Tensor x = random_input({4, 3}, 14);
    Tensor w = random_input({2, 3}, 15).detach();
    Tensor b = random_input({2}, 16);
    ops::linear(x, w, b).backward(ones({4, 2}, {.dtype = DType::f64}));
    CHECK(x.grad().defined());
    CHECK_FALSE(w.grad().defined());
    CHECK(b.grad().to_vector<double>() == std::vector<double>{4, 4});
  }

  TEST_CASE("matmul refuses shapes that do not chain") {
    CHECK_THROWS_WITH(ops::matmul(zeros({2, 3}), zeros({4, 5})),
                      "matmul: shapes [2, 3] and [4, 5] cannot be multiplied (3 != 4)");
  }

  TEST_CASE("batched matmul refuses batch dims that do not broadcast") {
    CHECK_THROWS_WITH(ops::matmul(zeros({2, 3, 4}), zeros({3, 4, 5})),
                      "matmul: shapes [2] and [3] cannot be broadcast together");
    CHECK_THROWS_WITH(ops::matmul(zeros({2, 3, 4}), zeros({3, 5})),
                      "matmul: shapes [2, 3, 4] and [3, 5] cannot be multiplied (4 != 3)");
  }

  TEST_CASE("matmul refuses mixed dtypes") {
    CHECK_THROWS_WITH(ops::matmul(zeros({2, 3}), zeros({3, 2}, {.dtype = DType::f64})),
                      "matmul: dtype mismatch: f32 with shape [2, 3] and f64 with shape [3, 2]");
  }

  TEST_CASE("linear names both shapes when the features do not match") {
    CHECK_THROWS_WITH(ops::linear(zeros({8, 5}), zeros({10, 4})),
                      "linear: input [8, 5] has 5 features but weight [10, 4] expects 4");
  }

  TEST_CASE("linear refuses a bias of the wrong size") {
    CHECK_THROWS_WITH(ops::linear(zeros({8, 4}), zeros({10, 4}), zeros({3})),
                      "linear: bias of shape [3] does not match weight [10, 4] (expected [10])");
  }

  TEST_CASE("linear refuses a weight that is not 2-d") {
    CHECK_THROWS_WITH(ops::linear(zeros({8, 4}), zeros({4})), "linear: expected weight to be 2-d but got shape [4]");
  }

  TEST_CASE("linear refuses mixed dtypes") {
    CHECK_THROWS_WITH(ops::linear(zeros({8, 4}), zeros({2, 4}, {.dtype = DType::f64})),
                      "linear: dtype mismatch: f32 with shape [8, 4] and f64 with shape [2, 4]");
  }

  TEST_CASE("batched matmul: [2, 3, 4] x [4, 5] multiplies each batch entry by the matrix") {
    const Tensor a = random_input({2, 3, 4}, 61), b = random_input({4, 5}, 62);
    const Tensor y = ops::matmul(a, b);
    REQUIRE(y.sizes() == Shape{2, 3, 5});
    for (int64_t i = 0; i < 2; ++i) {
      const auto expected = ops::matmul(a.select(0, i), b).to_vector<double>(), got = y.select(0, i).contiguous().to_vector<double>();
      for (size_t j = 0; j < got.size(); ++j) CHECK(got[j] == doctest::Approx(expected[j]));
    }
  }

  TEST_CASE("batched matmul broadcasts batch dims: [2, 1, 3, 4] x [3, 4, 2] is [2, 3, 3, 2]") {
    const Tensor a = random_input({2, 1, 3, 4}, 63), b = random_input({3, 4, 2}, 64);
    const Tensor y = ops::matmul(a, b);
    REQUIRE(y.sizes() == Shape{2, 3, 3, 2});
    const auto expected = ops::matmul(a.select(0, 1).select(0, 0), b.select(0, 2)).to_vector<double>();
    const auto got = y.select(0, 1).select(0, 2).contiguous().to_vector<double>();
    for (size_t j = 0; j < got.size(); ++j) CHECK(got[j] == doctest::Approx(expected[j]));
  }

  TEST_CASE("batched matmul with a 1-d operand: [5] x [2, 5, 3] is [2, 3], [2, 3, 4] x [4] is [2, 3]") {
    CHECK(ops::matmul(zeros({5}), zeros({2, 5, 3})).sizes() == Shape{2, 3});
    CHECK(ops::matmul(zeros({2, 3, 4}), zeros({4})).sizes() == Shape{2, 3});
  }

  TEST_CASE("gradcheck: batched matmul with broadcast batch dims and 1-d operands") {
    gradcheck([](const auto& in) { return ops::matmul(in[0], in[1]); }, {random_input({2, 3, 4}, 65), random_input({4, 5}, 66)});
    gradcheck([](const auto& in) { return ops::matmul(in[0], in[1]); },
              {random_input({2, 1, 3, 4}, 67), random_input({3, 4, 2}, 68)});
    gradcheck([](const auto& in) { return ops::matmul(in[0], in[1]); }, {random_input({5}, 69), random_input({2, 5, 3}, 70)});
  }

  TEST_CASE("linear with 0 input features gives the bias, and empty weight gradients") {
    const Tensor x = zeros({3, 0}, {.dtype = DType::f64}).set_requires_grad();
    const Tensor w = zeros({2, 0}, {.dtype = DType::f64}).set_requires_grad();
    const Tensor b = from_vector<double>({1.5, -2}, {2}).set_requires_grad();
    const Tensor y = ops::linear(x, w, b);
    CHECK(y.to_vector<double>() == std::vector<double>{1.5, -2, 1.5, -2, 1.5, -2});
    y.backward(ones({3, 2}, {.dtype = DType::f64}));
    CHECK(b.grad().to_vector<double>() == std::vector<double>{3, 3});
    CHECK(w.grad().sizes() == Shape{2, 0});
    CHECK(ops::linear(zeros({3, 0}), zeros({2, 0})).to_vector<float>() == std::vector<float>(6, 0.0f));
  }
}
