#include <doctest/doctest.h>

#include "engine/lr_schedule.h"
#include "engine/optim.h"

using namespace tpp;

namespace {
Tensor param_with_grad(std::vector<double> value, std::vector<double> grad) {
  const auto n = static_cast<int64_t>(value.size());
  Tensor p = from_vector<double>(value, {n});
  p.set_requires_grad(true);
  p.set_grad(from_vector<double>(grad, {n}));
  return p;
}

void check_values(const Tensor& t, const std::vector<double>& expected) {
  const std::vector<double> got = t.to(DType::f64).to_vector<double>();
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(expected[i]));
}
}  // namespace

TEST_SUITE("optim") {
  TEST_CASE("plain SGD subtracts lr times the gradient") {
    Tensor p = param_with_grad({1, 2}, {0.5, -1});
    Sgd sgd({p}, {.lr = 0.1});
    sgd.step();
    CHECK(p.to_vector<double>()[0] == doctest::Approx(0.95));
    CHECK(p.to_vector<double>()[1] == doctest::Approx(2.1));
  }

  TEST_CASE("momentum and weight decay follow PyTorch over two steps") {
    // p=1, g=1 constant, lr=0.1, momentum=0.9, wd=0.1:
    // step 1: d = 1 + 0.1*1 = 1.1, buf = 1.1, p = 1 - 0.11 = 0.89
    // step 2: d = 1 + 0.089 = 1.089, buf = 0.99 + 1.089 = 2.079, p = 0.89 - 0.2079 = 0.6821
    Tensor p = param_with_grad({1}, {1});
    Sgd sgd({p}, {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.1});
    sgd.step();
    CHECK(p.item() == doctest::Approx(0.89));
    sgd.step();
    CHECK(p.item() == doctest::Approx(0.6821));
  }

  TEST_CASE("nesterov adds the momentum look-ahead") {
    // step 1: buf = 1, d = 1 + 0.9 = 1.9, p = 1 - 0.19 = 0.81
    Tensor p = param_with_grad({1}, {1});
    Sgd sgd({p}, {.lr = 0.1, .momentum = 0.9, .nesterov = true});
    sgd.step();
    CHECK(p.item() == doctest::Approx(0.81));
  }

  TEST_CASE("parameters without a gradient are left alone") {
    Tensor p = from_vector<double>({1}, {1});
    p.set_requires_grad(true);
    Sgd sgd({p}, {.lr = 0.1, .momentum = 0.9});
    sgd.step();
    CHECK(p.item() == 1);
    CHECK_FALSE(sgd.momentum_buffers()[0].defined());
  }

  TEST_CASE("bad optimizer settings are refused") {
    Tensor p = param_with_grad({1}, {1});
    CHECK_THROWS_WITH(Sgd({p}, {.lr = -1}), "sgd: learning rate must be >= 0 but got -1");
    CHECK_THROWS_WITH(Sgd({p}, {.lr = 0.1, .nesterov = true}), "sgd: nesterov needs a momentum > 0");
    CHECK_THROWS_WITH(Sgd({ones({2})}, {}), "sgd: parameter 0 must be a contiguous leaf that requires grad (shape [2])");
  }

  TEST_CASE("a mask keeps pruned entries at zero with no momentum") {
    // unmasked entries: step 1 buf = 1, p -= 0.1; step 2 buf = 0.9 + 1 = 1.9, p -= 0.19
    Tensor p = param_with_grad({1, 2, 3}, {1, 1, 1});
    Sgd sgd({p}, {.lr = 0.1, .momentum = 0.9});
    sgd.set_mask(0, from_vector<uint8_t>({1, 0, 1}, {3}));
    sgd.step();
    check_values(p, {0.9, 0, 2.9});
    CHECK(sgd.momentum_buffers()[0].to_vector<double>() == std::vector<double>{1, 0, 1});
    sgd.step();
    check_values(p, {0.71, 0, 2.71});
  }

  TEST_CASE("a floating mask broadcasts over the parameter, any non-zero keeps") {
    Tensor p = ones({2, 3}, {.dtype = DType::f64}).set_requires_grad(true);
    p.set_grad(ones({2, 3}, {.dtype = DType::f64}));
    Sgd sgd({p}, {.lr = 0.1});
    sgd.set_mask(0, from_vector<float>({0, 0.5}, {2, 1}));
    CHECK(sgd.masks()[0].sizes() == Shape{2, 3});
    sgd.step();
    check_values(p, {0, 0, 0, 0.9, 0.9, 0.9});
  }

  TEST_CASE("the mask is a copy, and an undefined mask removes it") {
    Tensor p = param_with_grad({1, 1}, {1, 1});
    Sgd sgd({p}, {.lr = 0.5});
    Tensor mask = from_vector<double>({0, 1}, {2});
    sgd.set_mask(0, mask);
    mask.fill_(1);  // changes nothing in the optimizer
    sgd.step();
    CHECK(p.to_vector<double>() == std::vector<double>{0, 0.5});
    sgd.set_mask(0, Tensor());
    CHECK_FALSE(sgd.masks()[0].defined());
    sgd.step();
    CHECK(p.to_vector<double>() == std::vector<double>{-0.5, 0});
  }

  TEST_CASE("bad masks are refused") {
    Tensor p = param_with_grad({1, 2}, {1, 1});
    Sgd sgd({p}, {.lr = 0.1});
    CHECK_THROWS_WITH(sgd.set_mask(1, ones({2})), "sgd: mask 1 of 1 parameters");
    CHECK_THROWS_WITH(sgd.set_mask(0, ones({3})),
                      "sgd: mask 0 of shape [3] does not broadcast to parameter shape [2]");
    CHECK_THROWS_WITH(sgd.set_mask(0, ones({2, 2})),
                      "sgd: mask 0 of shape [2, 2] does not broadcast to parameter shape [2]");
    CHECK_THROWS_WITH(sgd.set_mask(0, arange(2)), "sgd: mask 0 must be u8 or floating but is i64");
  }

  TEST_CASE("milestone schedule takes the LR of the largest milestone not after the epoch") {
    const LrSchedule s = LrSchedule::parse_milestones("0:0.1,100:0.01,150:0.001");
    CHECK(s.lr_at(0) == 0.1);
    CHECK(s.lr_at(99.9) == 0.1);
    CHECK(s.lr_at(100) == 0.01);
    CHECK(s.lr_at(149) == 0.01);
    CHECK(s.lr_at(400) == 0.001);
  }

  TEST_CASE("malformed milestone specs name the spec and the problem") {
    CHECK_THROWS_WITH(LrSchedule::parse_milestones("0:0.1,50"), "lr schedule '0:0.1,50': item '50' is not epoch:lr");
    CHECK_THROWS_WITH(LrSchedule::parse_milestones("0:x"), "lr schedule '0:x': 'x' is not a number");
    CHECK_THROWS_WITH(LrSchedule::parse_milestones("0:0.1,50:0.01,20:0.001"),
                      "lr schedule '0:0.1,50:0.01,20:0.001': epochs must increase, but 20 follows 50");
    CHECK_THROWS_WITH(LrSchedule::parse_milestones("5:0.1"),
                      "lr schedule '5:0.1': the first milestone must be at epoch 0");
    CHECK_THROWS_WITH(LrSchedule::parse_milestones(""), "lr schedule: empty; expected e.g. '0:0.1,100:0.01'");
  }

  TEST_CASE("cosine schedule goes from base to min over the epochs") {
    const LrSchedule s = LrSchedule::cosine(0.1, 100, 0.001);
    CHECK(s.lr_at(0) == doctest::Approx(0.1));
    CHECK(s.lr_at(50) == doctest::Approx(0.0505));
    CHECK(s.lr_at(100) == doctest::Approx(0.001));
  }

  TEST_CASE("linear warm-up ramps into the schedule") {
    LrSchedule s = LrSchedule::parse_milestones("0:0.1,30:0.01");
    s.with_warmup(5, 0.1);
    CHECK(s.lr_at(0) == doctest::Approx(0.01));
    CHECK(s.lr_at(2.5) == doctest::Approx(0.055));
    CHECK(s.lr_at(5) == doctest::Approx(0.1));
    CHECK(s.lr_at(31) == doctest::Approx(0.01));
  }
}
