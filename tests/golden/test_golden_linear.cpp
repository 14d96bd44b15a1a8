// linear and matmul against PyTorch (tests/fixtures/linear.safetensors).
#include <doctest/doctest.h>

#include "ops/matmul.h"
#include "tests/golden/fixture.h"

using namespace tpp;
using namespace tpp::testing;

namespace {

void check_linear_case(const std::string& name, bool has_bias) {
  const Fixture fx("linear.safetensors");
  const Tensor x = fx.leaf(name + ".x"), weight = fx.leaf(name + ".weight");
  const Tensor bias = has_bias ? fx.leaf(name + ".bias") : Tensor();

  const Tensor y = ops::linear(x, weight, bias);
  check_close(y, fx[name + ".output"], name + ".output");
  y.backward(fx[name + ".grad_output"]);
  check_close(x.grad(), fx[name + ".grad_input"], name + ".grad_input");
  check_close(weight.grad(), fx[name + ".grad_weight"], name + ".grad_weight");
  if (has_bias) check_close(bias.grad(), fx[name + ".grad_bias"], name + ".grad_bias");
}

}  // namespace

TEST_CASE("golden linear: with bias") { check_linear_case("linear", true); }
TEST_CASE("golden linear: without bias") { check_linear_case("linear_nobias", false); }

TEST_CASE("golden matmul: output and both gradients") {
  const Fixture fx("linear.safetensors");
  const Tensor a = fx.leaf("matmul.a"), b = fx.leaf("matmul.b");
  const Tensor y = ops::matmul(a, b);
  check_close(y, fx["matmul.output"], "matmul.output");
  y.backward(fx["matmul.grad_output"]);
  check_close(a.grad(), fx["matmul.grad_a"], "matmul.grad_a");
  check_close(b.grad(), fx["matmul.grad_b"], "matmul.grad_b");
}
