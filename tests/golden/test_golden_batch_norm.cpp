// batch_norm2d against PyTorch (tests/fixtures/batch_norm2d.safetensors):
// three training steps on three batches (outputs, gradients, running
// statistics after each), eval mode with the final statistics, and training
// without affine parameters or running statistics.
#include <doctest/doctest.h>

#include "ops/batch_norm.h"
#include "tests/golden/fixture.h"

using namespace tpp;
using namespace tpp::testing;

TEST_CASE("golden batch_norm2d: three training steps match outputs, gradients and running statistics") {
  const Fixture fx("batch_norm2d.safetensors");
  const Tensor running_mean = zeros({3}), running_var = ones({3});
  for (int step = 1; step <= 3; ++step) {
    const std::string p = fmt::format("train{}", step);
    const Tensor x = fx.leaf(p + ".x"), weight = fx.leaf("weight"), bias = fx.leaf("bias");
    const Tensor y = ops::batch_norm2d(x, weight, bias, running_mean, running_var, {.training = true});
    check_close(y, fx[p + ".output"], p + ".output");
    check_close(running_mean, fx[p + ".running_mean"], p + ".running_mean");
    check_close(running_var, fx[p + ".running_var"], p + ".running_var");
    y.backward(fx[p + ".grad_output"]);
    check_close(x.grad(), fx[p + ".grad_input"], p + ".grad_input");
    check_close(weight.grad(), fx[p + ".grad_weight"], p + ".grad_weight");
    check_close(bias.grad(), fx[p + ".grad_bias"], p + ".grad_bias");
  }
}

TEST_CASE("golden batch_norm2d: eval mode uses the running statistics") {
  const Fixture fx("batch_norm2d.safetensors");
  const Tensor running_mean = fx["train3.running_mean"].clone(), running_var = fx["train3.running_var"].clone();
  const Tensor x = fx.leaf("eval.x"), weight = fx.leaf("weight"), bias = fx.leaf("bias");
  const Tensor y = ops::batch_norm2d(x, weight, bias, running_mean, running_var, {.training = false});
  check_close(y, fx["eval.output"], "eval.output");
  y.backward(fx["eval.grad_output"]);
  check_close(x.grad(), fx["eval.grad_input"], "eval.grad_input");
  check_close(weight.grad(), fx["eval.grad_weight"], "eval.grad_weight");
  check_close(bias.grad(), fx["eval.grad_bias"], "eval.grad_bias");
  // Eval never updates the statistics.
  check_close(running_mean, fx["train3.running_mean"], "eval.running_mean", {.rtol = 0, .atol = 0});
  check_close(running_var, fx["train3.running_var"], "eval.running_var", {.rtol = 0, .atol = 0});
}

TEST_CASE("golden batch_norm2d: training without weight, bias or running statistics") {
  const Fixture fx("batch_norm2d.safetensors");
  const Tensor x = fx.leaf("noaffine.x");
  const Tensor y = ops::batch_norm2d(x, {}, {}, {}, {}, {.training = true});
  check_close(y, fx["noaffine.output"], "noaffine.output");
  y.backward(fx["noaffine.grad_output"]);
  check_close(x.grad(), fx["noaffine.grad_input"], "noaffine.grad_input");
}
