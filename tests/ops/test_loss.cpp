#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "ops/loss.h"
#include "ops/softmax.h"
#include "tests/gradcheck.h"

using namespace tpp;
using tpp::testing::gradcheck;
using tpp::testing::random_input;

namespace {
Tensor labels(std::initializer_list<int64_t> v) { return from_vector<int64_t>(v, {static_cast<int64_t>(v.size())}); }
}  // namespace

TEST_SUITE("loss") {
  TEST_CASE("cross_entropy is the mean negative log-probability of the targets") {
    const Tensor logits = from_vector<double>({1, 2, 3, 1, 1, 1}, {2, 3});
    const Tensor loss = ops::cross_entropy(logits, labels({2, 0}));
    CHECK(loss.dim() == 0);
    const double row0 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 3, row1 = std::log(3.0);
    CHECK(loss.item() == doctest::Approx((row0 + row1) / 2).epsilon(1e-14));
    // PyTorch 1.13: F.cross_entropy(logits, tensor([2, 0])) in float64.
    CHECK(loss.item() == doctest::Approx(0.7531091265562451).epsilon(1e-14));
  }

  TEST_CASE("label smoothing mixes in the mean over classes of -log p") {
    const Tensor logits = from_vector<double>({1, 2, 3, 1, 1, 1}, {2, 3});
    const Tensor loss = ops::cross_entropy(logits, labels({2, 0}), {.label_smoothing = 0.1});
    const double lse0 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
    const double row0 = 0.9 * (lse0 - 3) + 0.1 * (lse0 - 2), row1 = std::log(3.0);  // row 1 is uniform
    CHECK(loss.item() == doctest::Approx((row0 + row1) / 2).epsilon(1e-14));
    // PyTorch 1.13: F.cross_entropy(logits, tensor([2, 0]), label_smoothing=0.1) in float64.
    CHECK(loss.item() == doctest::Approx(0.8031091265562451).epsilon(1e-14));
  }

  TEST_CASE("the gradient is (softmax - smoothed one-hot) / N") {
    Tensor logits = from_vector<double>({1, 2, 3, 0, 0, 0}, {2, 3});
    logits.set_requires_grad(true);
    ops::cross_entropy(logits, labels({0, 1}), {.label_smoothing = 0.3}).backward();
    const std::vector<double> p = ops::softmax(logits.detach(), 1).to_vector<double>();
    const std::vector<double> g = logits.grad().to_vector<double>();
    const double on = 0.7 + 0.1, off = 0.1;
    const std::vector<double> target{on, off, off, off, on, off};
    for (size_t i = 0; i < 6; ++i) CHECK(g[i] == doctest::Approx((p[i] - target[i]) / 2).epsilon(1e-14));
  }

  TEST_CASE("large f32 logits stay finite") {
    const Tensor loss = ops::cross_entropy(from_vector<float>({1000, 0, -1000}, {1, 3}), labels({1}));
    CHECK(loss.item() == doctest::Approx(1000));
  }

  TEST_CASE("a logit of -inf off the target leaves the loss finite without smoothing, infinite with it (PyTorch)") {
    // The fused kernel added 0 * the infinite smoothing term: NaN (difftest seed 222).
    const double inf = std::numeric_limits<double>::infinity();
    const Tensor logits = from_vector<double>({0, -inf, 0}, {1, 3});
    CHECK(ops::cross_entropy(logits, labels({0})).item() == doctest::Approx(std::log(2.0)).epsilon(1e-15));
    CHECK(ops::cross_entropy(logits, labels({0}), {.label_smoothing = 0.1}).item() == inf);
  }

  TEST_CASE("a tiny loss keeps its digits when the target's logit is the row's large maximum") {
    // log sum exp(x) - x_t rounded at the size of x_t first: 6e-10 off (difftest seed 321).
    const double a = 9.55896903175967338, b = -3.98582145770569340;
    const Tensor logits = from_vector<double>({a, b}, {1, 2});
    CHECK(ops::cross_entropy(logits, labels({0})).item() == doctest::Approx(std::log1p(std::exp(b - a))).epsilon(1e-14));
  }

  TEST_CASE("gradcheck: cross_entropy with and without label smoothing") {
    const Tensor logits = random_input({4, 5}, 71, -2, 2);
    const Tensor target = labels({0, 4, 2, 2});
    gradcheck([&](const auto& in) { return ops::cross_entropy(in[0], target); }, {logits});
    gradcheck([&](const auto& in) { return ops::cross_entropy(in[0], target, {.label_smoothing = 0.2}); }, {logits});
  }

  TEST_CASE("a target out of range names the op, the index and the class count") {
    CHECK_THROWS_WITH(ops::cross_entropy(zeros({2, 3}), labels({0, 3})),
                      "cross_entropy: target 3 at position 1 is out of range for 3 classes");
    CHECK_THROWS_WITH(ops::cross_entropy(zeros({2, 3}), labels({-1, 0})),
                      "cross_entropy: target -1 at position 0 is out of range for 3 classes");
  }

  TEST_CASE("target must be i64 with one entry per row") {
    CHECK_THROWS_WITH(ops::cross_entropy(zeros({2, 3}), labels({0, 1, 2})),
                      "cross_entropy: target must be i64 of shape [2] to match logits of shape [2, 3] but got i64 of "
                      "shape [3]");
    CHECK_THROWS_WITH(ops::cross_entropy(zeros({2, 3}), zeros({2})),
                      "cross_entropy: target must be i64 of shape [2] to match logits of shape [2, 3] but got f32 of "
                      "shape [2]");
  }

  TEST_CASE("logits must have a class dim and smoothing be in [0, 1]") {
    CHECK_THROWS_WITH(ops::cross_entropy(zeros({}), zeros({}, {.dtype = DType::i64})),
                      "cross_entropy: expected logits [C], [N, C] or [N, C, d...] but got shape []");
    CHECK_THROWS_WITH(ops::cross_entropy(zeros({6}), labels({0})),
                      "cross_entropy: target must be i64 of shape [] to match logits of shape [6] but got i64 of "
                      "shape [1]");
    CHECK_THROWS_WITH(ops::cross_entropy(zeros({1, 3}), labels({0}), {.label_smoothing = 1.5}),
                      "cross_entropy: label_smoothing must be in [0, 1] but got 1.5");
  }

  // Logits and targets of the PyTorch cases below (F.cross_entropy in float64, PyTorch 1.13).
  Tensor four_rows() { return from_vector<double>({1, 2, 3, 0.5, -1, 2, 0, 0, 1, 2, 1, 0}, {4, 3}); }

  TEST_CASE("rows whose target is ignore_index (default -100) add nothing and count nothing") {
    CHECK(ops::cross_entropy(four_rows(), labels({2, -100, 1, 0})).item() == doctest::Approx(0.7888855476069373));
    CHECK(ops::cross_entropy(four_rows(), labels({2, 0, 1, 0}), {.ignore_index = 0}).item() ==
          doctest::Approx(ops::cross_entropy(four_rows().slice(0, 0, 3, 2), labels({2, 1})).item()));
  }

  TEST_CASE("reduction sum adds the row losses, none returns them with 0 where ignored") {
    CHECK(ops::cross_entropy(four_rows(), labels({2, -100, 1, 0}), {.reduction = ops::Reduction::sum}).item() ==
          doctest::Approx(2.366656642820812));
    const std::vector<double> rows =
        ops::cross_entropy(four_rows(), labels({2, -100, 1, 0}), {.reduction = ops::Reduction::none}).to_vector<double>();
    const std::vector<double> expected{0.4076059644443804, 0.0, 1.551444713932051, 0.4076059644443804};
    REQUIRE(rows.size() == 4);
    for (size_t i = 0; i < 4; ++i) CHECK(rows[i] == doctest::Approx(expected[i]));
  }

  TEST_CASE("class weights scale each row and the mean divides by their sum, smoothing too") {
    const Tensor w = from_vector<double>({0.5, 2, 1.5}, {3});
    CHECK(ops::cross_entropy(four_rows(), labels({2, -100, 1, 0}), {.weight = w}).item() ==
          doctest::Approx(0.9795253391882157));
    CHECK(ops::cross_entropy(four_rows(), labels({2, -100, 1, 0}), {.label_smoothing = 0.2, .weight = w}).item() ==
          doctest::Approx(1.0497307142052934));
  }

  TEST_CASE("N-d logits [N, C, d] are the rows of their permuted [N d, C] form") {
    const Tensor logits = random_input({2, 3, 4}, 51);
    const Tensor target = from_vector<int64_t>({0, 2, 1, 1, 2, 2, 0, 1}, {2, 4});
    const Tensor rows = logits.permute({0, 2, 1}).reshape({8, 3});
    CHECK(ops::cross_entropy(logits, target).item() == doctest::Approx(ops::cross_entropy(rows, target.reshape({8})).item()));
    CHECK(ops::cross_entropy(logits, target, {.reduction = ops::Reduction::none}).sizes() == Shape{2, 4});
  }

  TEST_CASE("every row ignored: the mean is NaN, as PyTorch, and the gradient 0") {
    const Tensor logits = random_input({2, 3}, 52);
    const Tensor loss = ops::cross_entropy(logits, labels({-100, -100}));
    CHECK(std::isnan(loss.item()));
    loss.backward();
    CHECK(logits.grad().to_vector<double>() == std::vector<double>(6, 0.0));
  }

  TEST_CASE("an ignored row adds 0 to the loss even when its logits are not finite") {
    const Tensor logits = from_vector<double>({1, 2, std::nan(""), 0}, {2, 2});
    CHECK(ops::cross_entropy(logits, labels({0, -100})).item() == doctest::Approx(1.3132616875182228));
  }

  TEST_CASE("gradcheck: cross_entropy with weights, ignored rows, smoothing, N-d logits and each reduction") {
    const Tensor w = from_vector<double>({0.5, 2, 1.5}, {3});
    const Tensor target = from_vector<int64_t>({0, 2, -100, 1, 2, 2, 0, -100}, {2, 4});
    for (const ops::Reduction r : {ops::Reduction::mean, ops::Reduction::sum, ops::Reduction::none})
      gradcheck(
          [&](const auto& in) {
            return ops::cross_entropy(in[0], target, {.label_smoothing = 0.1, .reduction = r, .weight = w});
          },
          {random_input({2, 3, 4}, 53)});
  }

  TEST_CASE("a 1-d logits vector is one row with a 0-d target") {
    const Tensor logits = from_vector<double>({1, 2, 3}, {3});
    CHECK(ops::cross_entropy(logits, from_vector<int64_t>({2}, {})).item() ==
          doctest::Approx(ops::cross_entropy(logits.view({1, 3}), labels({2})).item()));
  }

  TEST_CASE("weights must match the classes and the logits' dtype") {
    CHECK_THROWS_WITH(ops::cross_entropy(zeros({2, 3}), labels({0, 1}), {.weight = zeros({2})}),
                      "cross_entropy: weight of shape [2] does not match the 3 classes of logits [2, 3]");
    CHECK_THROWS_WITH(ops::cross_entropy(zeros({2, 3}), labels({0, 1}), {.weight = zeros({3}, {.dtype = DType::f64})}),
                      "cross_entropy: dtype mismatch: f32 with shape [2, 3] and f64 with shape [3]");
  }
}
