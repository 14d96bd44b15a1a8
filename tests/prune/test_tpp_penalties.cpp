// TPP's penalties, gradient additions, λ schedule and zero-out rule
// (TPP-METHOD §3, §4, acceptance tests §10.1-10.3 and 10.5).
#include <doctest/doctest.h>

#include <cmath>

#include "engine/autograd.h"
#include "models/layers.h"
#include "models/surgery.h"
#include "models/zoo.h"
#include "ops/reduce.h"
#include "prune/tpp_penalties.h"
#include "tests/gradcheck.h"

using namespace tpp;
using namespace tpp::prune;
using namespace tpp::testing;

namespace {

// §3.3: N = 3, D = 2, P = {1}.
Tensor test_vector_weight(DType dtype) {
  Tensor w = from_vector<double>({1, 2, 0.5, -1, 3, 0}, {3, 2}).to(dtype);
  w.set_requires_grad(true);
  return w;
}

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK_MESSAGE(std::abs(got[i] - want[i]) <= tol, i << ": " << got[i]);
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  double d = 0;
  for (size_t i = 0; i < x.size(); ++i) d = std::max(d, std::abs(x[i] - y[i]));
  return d;
}

}  // namespace

TEST_SUITE("prune") {
  TEST_CASE("gram_penalty_mask: 1 on pruned rows and columns, 0 on the kept-kept block") {
    CHECK(gram_penalty_mask(3, {1}).to_vector<float>() == std::vector<float>{0, 1, 0, 1, 1, 1, 0, 1, 0});
    CHECK(gram_penalty_mask(2, {}).to_vector<float>() == std::vector<float>{0, 0, 0, 0});
  }

  TEST_CASE("gram_penalty: the §3.3 test vector, R = 1.1736111 and its gradient, in f64 and f32") {
    for (const DType dtype : {DType::f64, DType::f32}) {
      CAPTURE(dtype_name(dtype));
      const Tensor w = test_vector_weight(dtype);
      const Tensor r = gram_penalty(w, {1});
      CHECK(r.dim() == 0);
      CHECK(r.dtype() == dtype);
      CHECK(r.item() == doctest::Approx((2 * 2.25 + 1.5625 + 2 * 2.25) / 9).epsilon(1e-6));
      CHECK(r.item() == doctest::Approx(1.1736111).epsilon(1e-6));
      r.backward();
      check_close(w.grad().to_vector<double>(), {-1.0 / 3, 2.0 / 3, 29.0 / 18, -17.0 / 9, 1.0 / 3, -2.0 / 3}, 1e-6);
      check_close(w.grad().to_vector<double>(), {-0.333333, 0.666667, 1.611111, -1.888889, 0.333333, -0.666667}, 1e-6);
    }
  }

  TEST_CASE("gram_penalty: finite differences on a conv weight with two pruned filters") {
    gradcheck(
        [](const std::vector<Tensor>& in) {
          return gram_penalty(in[0], {0, 4});
        },
        {random_input({6, 3, 2, 2}, 21)});
  }

  TEST_CASE("gram_penalty: zero when the pruned filters are zero, whatever the kept filters hold") {
    Tensor w = random_input({4, 5}, 3);
    {
      NoGradGuard no_grad;
      w.select(0, 2).fill_(0);
    }
    const Tensor r = gram_penalty(w, {2});
    CHECK(r.item() == 0);
    r.backward();
    for (const double g : w.grad().to_vector<double>()) CHECK(g == 0);
  }

  TEST_CASE("gram_penalty: the kept-kept block of the gram does not count") {
    // Row 2 is pruned; rows 0 and 1 change their inner product (0.35 -> 1.35)
    // but not their inner products with row 2, so R stays.
    const Tensor a = from_vector<double>({0.5, 1, 0, 0.7, 0, 1, 1, 0, 0}, {3, 3});
    const Tensor b = from_vector<double>({0.5, 1, 0, 0.7, 1, 0, 1, 0, 0}, {3, 3});
    CHECK(gram_penalty(a, {2}).item() == doctest::Approx(gram_penalty(b, {2}).item()));
    CHECK(gram_penalty(a, {2}).item() == doctest::Approx((2 * 0.25 + 2 * 0.49 + 1) / 9));
    CHECK(gram_penalty(a, {0}).item() != doctest::Approx(gram_penalty(b, {0}).item()));
  }

  TEST_CASE("diagonal_penalty: 12.0625 on the §3.3 input, and finite differences") {
    const Tensor w = test_vector_weight(DType::f64);
    CHECK(diagonal_penalty(w, {1}).item() == doctest::Approx(12.0625));
    gradcheck([](const std::vector<Tensor>& in) { return diagonal_penalty(in[0], {1, 3}); }, {random_input({5, 4}, 8)});
  }

  TEST_CASE("gram_penalty: a mask of the wrong shape or dtype is a one-line error") {
    const Tensor w = random_input({3, 2}, 1);
    CHECK_THROWS_WITH(
        gram_penalty_with_mask(w, gram_penalty_mask(4, {1}, DType::f64)),
        "gram_penalty_with_mask: the mask must be f64 [3, 3] for a weight of shape [3, 2], got f64 [4, 4]");
    CHECK_THROWS_WITH(gram_penalty(w, std::vector<int64_t>{3}), "gram_penalty_mask: row 3 is out of range for 3 rows");
  }

  TEST_CASE("add_rows_to_grad: adds scale·w to the given rows' gradient only (§3.4, §3.5)") {
    Tensor w = from_vector<float>({1, 2, 3, 4, 5, 6}, {3, 2});
    w.set_requires_grad(true);
    w.set_grad(from_vector<float>({1, 1, 1, 1, 1, 1}, {3, 2}));
    add_rows_to_grad(w, {1}, 0.5);
    CHECK(w.grad().to_vector<float>() == std::vector<float>{1, 1, 2.5f, 3, 1, 1});

    Tensor gamma = from_vector<float>({2, -4, 8}, {3});  // no gradient yet: one is made
    add_rows_to_grad(gamma, {0, 2}, 0.25);
    CHECK(gamma.grad().to_vector<float>() == std::vector<float>{0.5f, 0, 2});
  }

  TEST_CASE("add_rows_to_grad: consecutive, unordered and repeated rows, bit-exact against the scalar formula") {
    const Tensor w = randn({6, 3}, {.dtype = DType::f32});
    Tensor param = w.clone();
    param.set_requires_grad(true);
    const Tensor g0 = randn({6, 3}, {.dtype = DType::f32});
    param.set_grad(g0.clone());
    const std::vector<int64_t> rows{4, 1, 2, 3, 3, 0};  // runs [4,5) [1,4) [3,4) [0,1)
    const double scale = 0.3;
    add_rows_to_grad(param, rows, scale);
    std::vector<float> expected = g0.to_vector<float>();
    const std::vector<float> values = w.to_vector<float>();
    for (const int64_t r : rows)
      for (int64_t j = r * 3; j < (r + 1) * 3; ++j)
        expected[static_cast<size_t>(j)] += static_cast<float>(scale) * values[static_cast<size_t>(j)];
    CHECK(param.grad().to_vector<float>() == expected);  // row 5 untouched, row 3 twice
  }

  TEST_CASE("diagonal_penalty_with_target: the reusable target gives diagonal_penalty's value and gradient") {
    const Tensor w0 = randn({4, 2, 3, 3}, {.dtype = DType::f64});
    Tensor a = w0.clone(), b = w0.clone();
    a.set_requires_grad(true);
    b.set_requires_grad(true);
    const Tensor target = diagonal_penalty_target(4, {1, 3}, DType::f64);
    CHECK(target.to_vector<double>() ==
          std::vector<double>{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0});
    const Tensor ra = diagonal_penalty(a, {1, 3}), rb = diagonal_penalty_with_target(b, target);
    CHECK(ra.item() == rb.item());
    ra.backward();
    rb.backward();
    CHECK(a.grad().to_vector<double>() == b.grad().to_vector<double>());
    CHECK_THROWS_WITH(diagonal_penalty_with_target(b, diagonal_penalty_target(3, {}, DType::f64)),
                      "diagonal_penalty_with_target: the target must be f64 [4, 4] on cpu for a weight of shape "
                      "[4, 2, 3, 3], got f64 [3, 3] on cpu");
  }

  TEST_CASE("zero_rows: sets the given rows to exactly 0") {
    Tensor w = from_vector<float>({1, 2, 3, 4, 5, 6}, {3, 1, 2});
    zero_rows(w, {0, 2});
    CHECK(w.to_vector<float>() == std::vector<float>{0, 0, 3, 4, 0, 0});
  }

  TEST_CASE("pruned_layers: handles to the pruned convs and their BN in forward order") {
    auto model = models::make_model("resnet20", 10);
    const PrunePlan plan = make_plan(*model, {.stage_pr = "*layer*.conv1:0.5"});
    const auto layers = pruned_layers(*model, plan);
    REQUIRE(layers.size() == 9);
    CHECK(layers[0].name == "layer1.0.conv1");
    CHECK(layers[0].exec_index == 1);
    CHECK(layers[8].exec_index == 17);
    CHECK(layers[0].pruned.size() == 8);
    CHECK(layers[0].bn_weight.defined());
    CHECK_FALSE(layers[0].bias.defined());
    // The handles are the model's own tensors.
    for (const auto& [name, m] : model->named_modules())
      if (name == "layer1.0.bn1")
        CHECK(layers[0].bn_weight.shares_storage_with(dynamic_cast<models::BatchNorm2d&>(*m).weight));
  }

  TEST_CASE("add_pruned_l2_grads: λ·x on pruned rows, pruned biases and pruned BN channels, nothing else") {
    auto model = models::make_model("mlp7_linear", 10, 1);
    const PrunePlan plan = make_plan(*model, {.stage_pr = "net.0:0.5"});
    const PrunedLayer layer = pruned_layers(*model, plan).at(0);
    CHECK(layer.bias.defined());
    CHECK_FALSE(layer.bn_weight.defined());
    model->zero_grad();
    add_pruned_l2_grads(layer, 0.3);
    const std::vector<float> w = layer.weight.to_vector<float>(), gw = layer.weight.grad().to_vector<float>();
    const std::vector<float> b = layer.bias.to_vector<float>(), gb = layer.bias.grad().to_vector<float>();
    const int64_t d = layer.weight.size(1);
    for (int64_t i = 0; i < 100; ++i) {
      const bool pruned = std::binary_search(layer.pruned.begin(), layer.pruned.end(), i);
      CHECK(gb[static_cast<size_t>(i)] == doctest::Approx(pruned ? 0.3 * b[static_cast<size_t>(i)] : 0.0));
      const size_t j = static_cast<size_t>(i * d + 7);
      CHECK(gw[j] == doctest::Approx(pruned ? 0.3 * w[j] : 0.0));
    }
  }

  TEST_CASE("zero_out_pruned, then keep_filters: removal is lossless (§10.5)") {
    auto model = models::make_model("resnet20", 10);
    {
      NoGradGuard no_grad;
      for (auto& [name, m] : model->named_modules())
        if (auto* bn = dynamic_cast<models::BatchNorm2d*>(m)) {
          bn->running_mean.copy_(uniform({bn->running_mean.numel()}, -0.5, 0.5));
          bn->bias.copy_(uniform({bn->bias.numel()}, -0.5, 0.5));
        }
    }
    const PrunePlan plan = make_plan(*model, {.stage_pr = "*layer*.conv1:0.7"});
    for (const PrunedLayer& layer : pruned_layers(*model, plan)) zero_out_pruned(layer);
    model->eval();
    const Tensor x = randn({2, 3, 32, 32});
    NoGradGuard no_grad;
    const Tensor before = (*model)(x);
    models::keep_filters(*model, plan.kept_indices());
    CHECK(models::layer_widths(*model).at("layer3.2.conv1") == 19);
    CHECK(max_abs_diff(before, (*model)(x)) <= 1e-4);
  }

  TEST_CASE("PenaltySchedule: λ(t) = Δ·⌊t/K_u⌋, 1.0 at t* = 100,000 and frozen after (§4.1, §10.3)") {
    const PenaltySchedule s;  // Δ = 1e-4, τ = 1, K_u = 10, S = 10,000
    CHECK(s.switch_iteration() == 100000);
    CHECK(s.lambda(0) == 0);
    CHECK(s.lambda(9) == 0);
    CHECK(s.lambda(10) == 1e-4);
    CHECK(s.lambda(99999) == doctest::Approx(0.9999).epsilon(1e-12));
    CHECK(s.lambda(99999) < 1.0);
    CHECK(s.lambda(100000) == 1.0);
    CHECK(s.lambda(250000) == 1.0);
    CHECK_FALSE(s.stabilizing(99999));
    CHECK(s.stabilizing(100000));
    CHECK(s.removal_iteration() == 110000);
    const PenaltySchedule imagenet{.interval = 5, .stabilize = 40000};
    CHECK(imagenet.switch_iteration() == 50000);
    CHECK(imagenet.removal_iteration() == 90000);
  }

  TEST_CASE("PenaltySchedule: a ceiling that is not a multiple of the step freezes λ at the first value above it") {
    const PenaltySchedule s{.step = 0.3, .ceiling = 1.0, .interval = 1};
    CHECK(s.switch_iteration() == 4);  // 0.3·3 = 0.8999999999999999 < 1
    CHECK(s.lambda(3) == doctest::Approx(0.9));
    CHECK(s.lambda(10) == doctest::Approx(1.2));
  }

  TEST_CASE("PenaltySchedule: layer q is hard-zeroed from t* + 100·(q+1), ResNet56's last pruned layer at t* + 5,400") {
    const PenaltySchedule s;
    const int64_t t_s = s.switch_iteration();
    CHECK_FALSE(s.zero_out_due(t_s - 1, 0));
    CHECK_FALSE(s.zero_out_due(t_s + 99, 0));
    CHECK(s.zero_out_due(t_s + 100, 0));
    CHECK_FALSE(s.zero_out_due(t_s + 5399, 53));
    CHECK(s.zero_out_due(t_s + 5400, 53));
    CHECK(s.zero_out_due(s.removal_iteration(), 53));
  }

  TEST_CASE("PenaltySchedule::check: the stabilisation must reach the last pruned layer's zeroing, counted in pruned layers") {
    // ResNet56's 56 conv/linear layers; two are pruned, the last at forward turn 53.
    PrunePlan plan;
    for (int64_t q = 0; q < 56; ++q) {
      LayerPlan& layer = plan.layers.emplace_back();
      layer.name = "layer" + std::to_string(q);
      layer.exec_index = q;
      layer.total = 16;
    }
    plan.layers[10].pruned = {0};
    plan.layers[53].pruned = {0, 1};
    PenaltySchedule{.stabilize = 5400}.check(plan);
    const PenaltySchedule one_short{.stabilize = 5399};
    CHECK_THROWS_AS(one_short.check(plan), SettingError);
    CHECK_THROWS_WITH(PenaltySchedule{.stabilize = 5000}.check(plan),
                      "`stabilize_iters` 5000 is too short for `zero_out_interval` 100: the last of the 2 pruned "
                      "layers, 'layer53' (conv/linear layer 54 of 56 in forward order), is zeroed 5400 iterations "
                      "into stabilisation; give `stabilize_iters` 5400 or more, or a smaller `zero_out_interval`");
    plan.layers[53].pruned.clear();
    const PenaltySchedule sparse{.stabilize = 1000, .zero_out_interval = 1000};
    CHECK_THROWS_WITH(sparse.check(plan),
                      "`stabilize_iters` 1000 is too short for `zero_out_interval` 1000: the pruned layer, 'layer10' "
                      "(conv/linear layer 11 of 56 in forward order), is zeroed 11000 iterations into stabilisation; "
                      "give `stabilize_iters` 11000 or more, or a smaller `zero_out_interval`");
  }

}  // TEST_SUITE
