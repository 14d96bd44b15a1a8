// cross_entropy against PyTorch (tests/fixtures/cross_entropy.safetensors).
#include <doctest/doctest.h>

#include "ops/loss.h"
#include "tests/golden/fixture.h"

using namespace tpp;
using namespace tpp::testing;

namespace {

void check_cross_entropy_case(const std::string& name) {
  const Fixture fx("cross_entropy.safetensors");
  const double smoothing = fx.options(name).at("label_smoothing").get<double>();
  const Tensor logits = fx.leaf("logits");
  const Tensor loss = ops::cross_entropy(logits, fx["target"], {.label_smoothing = smoothing});
  check_close(loss, fx[name + ".loss"], name + ".loss");
  loss.backward();
  check_close(logits.grad(), fx[name + ".grad_logits"], name + ".grad_logits");
}

}  // namespace

TEST_CASE("golden cross_entropy: loss and gradient of the logits") { check_cross_entropy_case("plain"); }
TEST_CASE("golden cross_entropy: label smoothing 0.1") { check_cross_entropy_case("smoothing"); }
