// TppRegularizer: what one iteration of TPP's regularised phase adds to the
// loss, to the gradients and to the weights (TPP-METHOD §3.6, §4.2), and its
// ablations (§3.7).
#include <doctest/doctest.h>

#include <cmath>

#include "engine/autograd.h"
#include "engine/philox.h"
#include "models/layers.h"
#include "models/zoo.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "prune/plan.h"
#include "prune/tpp_regularizer.h"

using namespace tpp;
using namespace tpp::prune;

namespace {

struct Setup {
  std::shared_ptr<models::Module> model;
  PrunePlan plan;
  Setup() {
    manual_seed(21);
    model = models::make_model("resnet20", 10, 3);
    plan = make_plan(*model, {.stage_pr = "*layer*.conv1:0.5"});
  }
  models::Conv2d& conv(const std::string& name) {
    for (auto& [n, m] : model->named_modules())
      if (n == name) return dynamic_cast<models::Conv2d&>(*m);
    FAIL("no layer " << name);
    throw;
  }
};

// Δ = 0.25 every 2 iterations: λ = 1 from t* = 8; resnet20 has 20 conv/linear layers.
TppOptions short_schedule() {
  return {.schedule = {.step = 0.25, .ceiling = 1.0, .interval = 2, .stabilize = 40, .zero_out_interval = 2}};
}

double sum_of_layer_penalties(Setup& s) {
  const NoGradGuard no_grad;
  double sum = 0;
  for (const LayerPlan& l : s.plan.layers)
    if (!l.pruned.empty()) sum += gram_penalty(s.conv(l.name).weight, l.pruned).to(DType::f64).item();
  return sum;
}

TEST_SUITE("prune") {
  TEST_CASE("TppRegularizer: the loss term is α·λ(t)·Σ R_l, nothing while λ = 0, and the phase follows λ") {
    Setup s;
    const TppRegularizer reg(*s.model, s.plan, short_schedule());
    CHECK_FALSE(reg.loss_term(0).defined());
    CHECK_FALSE(reg.loss_term(1).defined());
    CHECK(reg.loss_term(2).item() == doctest::Approx(1000 * 0.25 * sum_of_layer_penalties(s)).epsilon(1e-5));
    CHECK(reg.loss_term(9).item() == doctest::Approx(1000 * 1.0 * sum_of_layer_penalties(s)).epsilon(1e-5));
    CHECK(reg.iterations() == 8 + 40 + 1);
    CHECK(reg.phase_at(7) == "regularize");
    CHECK(reg.phase_at(8) == "stabilize");
  }

  TEST_CASE("TppRegularizer: the diagonal target and --no-gram change the loss term only") {
    Setup s;
    TppOptions diagonal = short_schedule();
    diagonal.target = GramTarget::diagonal;
    const TppRegularizer diag(*s.model, s.plan, diagonal);
    const LayerPlan& first = s.plan.layer("layer1.0.conv1");
    double expected = 0;
    for (const LayerPlan& l : s.plan.layers)
      if (!l.pruned.empty()) expected += diagonal_penalty(s.conv(l.name).weight, l.pruned).item();
    CHECK(diag.loss_term(4).item() == doctest::Approx(1000 * 0.5 * expected).epsilon(1e-5));
    CHECK(first.pruned.size() == 8);

    TppOptions no_gram = short_schedule();
    no_gram.gram = false;
    const TppRegularizer none(*s.model, s.plan, no_gram);
    CHECK_FALSE(none.loss_term(4).defined());
    CHECK(none.terms(4).gram == 0);
  }

  TEST_CASE("TppRegularizer: gradients get λ·w on pruned rows and BN channels, --no-bn-reg leaves BN alone") {
    for (const bool bn : {true, false}) {
      Setup s;
      TppOptions options = short_schedule();
      options.bn = bn;
      const TppRegularizer reg(*s.model, s.plan, options);
      for (Tensor p : s.model->parameters()) p.set_grad(zeros_like(p));
      reg.add_gradients(4);  // λ = 0.5
      const LayerPlan& l = s.plan.layer("layer2.1.conv1");
      const Tensor w = s.conv(l.name).weight;
      const int64_t pruned = l.pruned[0], kept = l.kept[0];
      CHECK(w.grad().select(0, pruned).to_vector<float>() ==
            ops::mul(w.select(0, pruned), 0.5).to_vector<float>());
      CHECK(ops::sum(ops::abs(w.grad().select(0, kept))).item() == 0);
      double bn_grad = 0;
      for (auto& [name, m] : s.model->named_modules())
        if (name == "layer2.1.bn1")
          bn_grad = ops::sum(ops::abs(dynamic_cast<models::BatchNorm2d&>(*m).weight.grad())).item();
      CHECK((bn_grad > 0) == bn);
    }
  }

  TEST_CASE("TppRegularizer: after_step zeroes layer q from t* + K·(q+1) on, in forward order") {
    Setup s;
    const TppRegularizer reg(*s.model, s.plan, short_schedule());
    const LayerPlan& early = s.plan.layer("layer1.0.conv1");  // forward index 1
    const LayerPlan& late = s.plan.layer("layer3.2.conv1");   // forward index 17
    const auto pruned_norm = [&](const LayerPlan& l) {
      return ops::sum(ops::abs(s.conv(l.name).weight.index_select(0, from_vector<int64_t>(
                                                                            l.pruned, {static_cast<int64_t>(l.pruned.size())}))))
          .item();
    };
    reg.after_step(7);  // not stabilising yet
    CHECK(pruned_norm(early) > 0);
    reg.after_step(8 + 2 * 2);  // t − t* = 4 ≥ 2·(1+1): the stem-side layer only
    CHECK(pruned_norm(early) == 0);
    CHECK(pruned_norm(late) > 0);
    reg.after_step(8 + 2 * 18);
    CHECK(pruned_norm(late) == 0);
    const PenaltyTerms t = reg.terms(8 + 2 * 18);
    CHECK(t.pruned_norm == 0);
    CHECK(t.gram == 0);  // the gram term only involves pruned rows and columns
    CHECK(t.kept_norm > 0);
  }

  TEST_CASE("TppRegularizer: a plan without pruned layers or a too short stabilisation is refused") {
    Setup s;
    const PrunePlan nothing = make_plan(*s.model, {});
    CHECK_THROWS_WITH(TppRegularizer(*s.model, nothing, short_schedule()),
                      "tpp: the plan prunes no layer; give `stage_pr` ratios above 0");
    TppOptions too_short = short_schedule();
    too_short.schedule.stabilize = 10;
    CHECK_THROWS_WITH(TppRegularizer(*s.model, s.plan, too_short),
                      "`stabilize_iters` 10 is too short for `zero_out_interval` 2: the last of the 9 pruned layers, "
                      "'layer3.2.conv1' (conv/linear layer 18 of 20 in forward order), is zeroed 36 iterations into "
                      "stabilisation; give `stabilize_iters` 36 or more, or a smaller `zero_out_interval`");
  }
}

}  // namespace
