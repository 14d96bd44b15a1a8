#include <doctest/doctest.h>

#include <cmath>

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

  TEST_CASE("logits must be 2-d and smoothing in [0, 1]") {
    CHECK_THROWS_WITH(ops::cross_entropy(zeros({6}), labels({0})),
                      "cross_entropy: expected logits to be 2-d but got shape [6]");
    CHECK_THROWS_WITH(ops::cross_entropy(zeros({1, 3}), labels({0}), {.label_smoothing = 1.5}),
                      "cross_entropy: label_smoothing must be in [0, 1] but got 1.5");
  }
}
