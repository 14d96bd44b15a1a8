#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "tests/gradcheck.h"

using namespace tpp;
using tpp::testing::gradcheck;
using tpp::testing::random_input;

namespace {
Tensor arange_f64(int64_t n, const Shape& shape) { return arange(0, static_cast<double>(n), 1, {.dtype = DType::f64}).reshape(shape); }
}  // namespace

TEST_SUITE("reduce") {
  TEST_CASE("sum over all elements is a 0-d tensor") {
    const Tensor y = ops::sum(from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3}));
    CHECK(y.dim() == 0);
    CHECK(y.item() == 21);
  }

  TEST_CASE("sum over one dim drops it, or keeps it as size 1") {
    const Tensor x = from_vector<double>({1, 2, 3, 4, 5, 6}, {2, 3});
    CHECK(ops::sum(x, {1}).sizes() == Shape{2});
    CHECK(ops::sum(x, {1}).to_vector<double>() == std::vector<double>{6, 15});
    CHECK(ops::sum(x, {0}, true).sizes() == Shape{1, 3});
    CHECK(ops::sum(x, {0}, true).to_vector<double>() == std::vector<double>{5, 7, 9});
    CHECK(ops::sum(x, {-1}).to_vector<double>() == std::vector<double>{6, 15});
  }

  TEST_CASE("sum over dims that are not adjacent") {
    // x[i, j, k] = 12 i + 4 j + k; summing over i and k gives 60 + 32 j.
    const Tensor y = ops::sum(arange_f64(24, {2, 3, 4}), {0, 2});
    CHECK(y.sizes() == Shape{3});
    CHECK(y.to_vector<double>() == std::vector<double>{60, 92, 124});
    CHECK(ops::sum(arange_f64(24, {2, 3, 4}), {2, 0}, true).sizes() == Shape{1, 3, 1});
  }

  TEST_CASE("sum over the batch and spatial dims of NCHW (three dims, two runs)") {
    // x[n, c, h, w] = 8 n + 4 c + 2 h + w; over n, h, w that sums to 32 + 32 c + 8 + 4.
    const Tensor x = arange_f64(16, {2, 2, 2, 2});
    CHECK(ops::sum(x, {0, 2, 3}).to_vector<double>() == std::vector<double>{44, 76});
    CHECK(ops::mean(x, {0, 2, 3}, true).sizes() == Shape{1, 2, 1, 1});
    CHECK(ops::mean(x, {0, 2, 3}, true).to_vector<double>() == std::vector<double>{5.5, 9.5});
  }

  TEST_CASE("summing over an empty dim gives zeros") {
    const Tensor y = ops::sum(zeros({2, 0, 3}), {1});
    CHECK(y.sizes() == Shape{2, 3});
    CHECK(y.to_vector<float>() == std::vector<float>(6, 0.0f));
  }

  TEST_CASE("size-1 dims between reduced dims do not matter") {
    const Tensor x = arange_f64(6, {2, 1, 3});
    CHECK(ops::sum(x, {0, 2}).to_vector<double>() == std::vector<double>{15});
    CHECK(ops::sum(x, {0, 2}).sizes() == Shape{1});
  }

  TEST_CASE("an empty dim list reduces every dim") {
    CHECK(ops::sum(arange_f64(6, {2, 3}), {}).item() == 15);
    CHECK(ops::mean(arange_f64(6, {2, 3}), {}).item() == 2.5);
  }

  TEST_CASE("sum reads a transposed view through its strides") {
    const Tensor x = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3}).transpose(0, 1);  // [[1,4],[2,5],[3,6]]
    CHECK(ops::sum(x, {1}).to_vector<float>() == std::vector<float>{5, 7, 9});
  }

  TEST_CASE("f32 sums accumulate in double") {
    // 10^6 copies of 0.1f: a float accumulator drifts by about 1%.
    const Tensor x = full({1000, 1000}, 0.1, {.dtype = DType::f32});
    CHECK(ops::sum(x).to_vector<float>()[0] == 100000.0f);
    CHECK(ops::sum(x, {0}).to_vector<float>()[7] == doctest::Approx(100.0).epsilon(1e-7));
    CHECK(ops::sum(x, {1}).to_vector<float>()[7] == doctest::Approx(100.0).epsilon(1e-7));
  }

  TEST_CASE("mean divides by the number of reduced elements") {
    const Tensor x = arange_f64(24, {2, 3, 4});
    CHECK(ops::mean(x).item() == 11.5);
    CHECK(ops::mean(x, {0, 2}).to_vector<double>() == std::vector<double>{7.5, 11.5, 15.5});
    CHECK(ops::mean(x, {1}, true).sizes() == Shape{2, 1, 4});
  }

  TEST_CASE("max over all elements") {
    CHECK(ops::max(from_vector<float>({3, -1, 7, 2}, {2, 2})).item() == 7);
    CHECK(ops::max(from_vector<float>({3, -1, 7, 2}, {2, 2})).dim() == 0);
  }

  TEST_CASE("max propagates NaN") {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    CHECK(std::isnan(ops::max(from_vector<float>({1, nan, 3}, {3})).item()));
    const ops::MaxResult r = ops::max(from_vector<float>({1, nan, 3}, {3}), 0);
    CHECK(std::isnan(r.values.item()));
    CHECK(r.indices.item() == 1);
  }

  TEST_CASE("max over a dim returns values and the first index of ties") {
    const Tensor x = from_vector<double>({1, 5, 5, 2, 9, 0, 9, 3}, {2, 4});
    const ops::MaxResult r = ops::max(x, 1);
    CHECK(r.values.to_vector<double>() == std::vector<double>{5, 9});
    CHECK(r.indices.dtype() == DType::i64);
    CHECK(r.indices.to_vector<int64_t>() == std::vector<int64_t>{1, 0});
    const ops::MaxResult cols = ops::max(x, 0, true);
    CHECK(cols.values.sizes() == Shape{1, 4});
    CHECK(cols.values.to_vector<double>() == std::vector<double>{9, 5, 9, 3});
    CHECK(cols.indices.to_vector<int64_t>() == std::vector<int64_t>{1, 0, 1, 1});
  }

  TEST_CASE("max over a middle dim") {
    // x[i, j, k] = 12 i + 4 j + k is largest at j = 2.
    const ops::MaxResult r = ops::max(arange_f64(24, {2, 3, 4}), 1);
    CHECK(r.values.sizes() == Shape{2, 4});
    CHECK(r.values.to_vector<double>() == std::vector<double>{8, 9, 10, 11, 20, 21, 22, 23});
    CHECK(r.indices.to_vector<int64_t>() == std::vector<int64_t>(8, 2));
  }

  TEST_CASE("max over a dim sends the gradient to the first of tied maxima") {
    Tensor x = from_vector<double>({1, 3, 3, 2}, {1, 4});
    x.set_requires_grad(true);
    ops::sum(ops::max(x, 1).values).backward();
    CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 1, 0, 0});
  }

  TEST_CASE("max over all shares the gradient between tied maxima, as PyTorch") {
    Tensor x = from_vector<double>({1, 3, 3, 2}, {4});
    x.set_requires_grad(true);
    ops::max(x).backward();
    CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 0.5, 0.5, 0});
  }

  TEST_CASE("sum backward spreads the output gradient over the reduced dims") {
    Tensor x = arange_f64(6, {2, 3});
    x.set_requires_grad(true);
    ops::sum(x, {0}).backward(from_vector<double>({1, 2, 3}, {3}));
    CHECK(x.grad().to_vector<double>() == std::vector<double>{1, 2, 3, 1, 2, 3});
  }

  TEST_CASE("gradcheck: sum and mean over all and over dims") {
    const Tensor x = random_input({2, 3, 4}, 11);
    gradcheck([](const auto& in) { return ops::sum(in[0]); }, {x});
    gradcheck([](const auto& in) { return ops::mean(in[0]); }, {x});
    gradcheck([](const auto& in) { return ops::sum(in[0], {1}); }, {x});
    gradcheck([](const auto& in) { return ops::sum(in[0], {0, 2}, true); }, {x});
    gradcheck([](const auto& in) { return ops::mean(in[0], {-1}); }, {x});
    gradcheck([](const auto& in) { return ops::mean(in[0], {0, 2}); }, {x});
    gradcheck([](const auto& in) { return ops::mean(in[0], {1, 2}, true); }, {x});
    gradcheck([](const auto& in) { return ops::mean(in[0], {0, 2, 3}); }, {random_input({2, 3, 2, 2}, 13)});
  }

  TEST_CASE("gradcheck: max over all and over a dim") {
    const Tensor x = random_input({3, 4, 5}, 12);  // distinct values: no ties
    gradcheck([](const auto& in) { return ops::max(in[0]); }, {x});
    gradcheck([](const auto& in) { return ops::max(in[0], 0).values; }, {x});
    gradcheck([](const auto& in) { return ops::max(in[0], 1, true).values; }, {x});
    gradcheck([](const auto& in) { return ops::max(in[0], -1).values; }, {x});
  }

  TEST_CASE("bad dims name the op and the dims") {
    const Tensor x = zeros({2, 3});
    CHECK_THROWS_WITH(ops::sum(x, {1, -1}), "sum: dim 1 appears more than once in [1, -1]");
    CHECK_THROWS_WITH(ops::mean(x, {2}), "mean: dim 2 is out of range for a 2-d tensor");
    CHECK_THROWS_WITH(ops::max(x, -3), "max: dim -3 is out of range for a 2-d tensor");
  }

  TEST_CASE("max refuses empty input") {
    CHECK_THROWS_WITH(ops::max(zeros({0, 3})), "max: cannot reduce an empty tensor of shape [0, 3]");
    CHECK_THROWS_WITH(ops::max(zeros({0, 3}), 0), "max: cannot reduce dim 0 of size 0 in shape [0, 3]");
  }

  TEST_CASE("reductions refuse integer tensors") {
    CHECK_THROWS_WITH(ops::sum(zeros({3}, {.dtype = DType::i64})),
                      "sum: expected a floating tensor (f32 or f64) but got i64 with shape [3]");
  }

  TEST_CASE("sum and mean of a 0-d tensor over dim -1 or 0 are the value itself (PyTorch)") {
    const Tensor x = from_vector<double>({2.5}, {}).set_requires_grad();
    CHECK(ops::sum(x, {-1}).item() == 2.5);
    CHECK(ops::mean(x, {0}, true).sizes() == Shape{});
    ops::sum(x, {-1}).backward();
    CHECK(x.grad().item() == 1);
    CHECK_THROWS_WITH(ops::sum(x, {1}), "sum: dim 1 is out of range for a 0-d tensor");
  }
}
