// conv2d against PyTorch (tests/fixtures/conv2d.safetensors): output and the
// gradients of input, weight and bias for one random grad_output per case.
#include <doctest/doctest.h>

#include "ops/conv2d.h"
#include "tests/golden/fixture.h"

using namespace tpp;
using namespace tpp::testing;

namespace {

std::array<int64_t, 2> pair_of(const nlohmann::json& j) { return {j.at(0).get<int64_t>(), j.at(1).get<int64_t>()}; }

void check_conv2d_case(const std::string& name) {
  const Fixture fx("conv2d.safetensors");
  const nlohmann::json o = fx.options(name);
  const ops::Conv2dOptions opts{.stride = pair_of(o.at("stride")),
                                .padding = pair_of(o.at("padding")),
                                .dilation = pair_of(o.at("dilation")),
                                .groups = o.at("groups").get<int64_t>()};
  const bool has_bias = o.at("bias").get<bool>();
  const Tensor x = fx.leaf(name + ".x"), weight = fx.leaf(name + ".weight");
  const Tensor bias = has_bias ? fx.leaf(name + ".bias") : Tensor();

  const Tensor y = ops::conv2d(x, weight, bias, opts);
  check_close(y, fx[name + ".output"], name + ".output");
  y.backward(fx[name + ".grad_output"]);
  check_close(x.grad(), fx[name + ".grad_input"], name + ".grad_input");
  check_close(weight.grad(), fx[name + ".grad_weight"], name + ".grad_weight");
  if (has_bias) check_close(bias.grad(), fx[name + ".grad_bias"], name + ".grad_bias");
}

}  // namespace

TEST_CASE("golden conv2d: stride 1, no padding, with bias") { check_conv2d_case("stride1_pad0"); }
TEST_CASE("golden conv2d: stride 1, padding 1, no bias") { check_conv2d_case("stride1_pad1_nobias"); }
TEST_CASE("golden conv2d: stride 2, padding 1") { check_conv2d_case("stride2_pad1"); }
TEST_CASE("golden conv2d: 5x5 kernel, padding 2, non-square input") { check_conv2d_case("stride1_pad2_kernel5"); }
TEST_CASE("golden conv2d: 5x5 kernel, stride 2, padding 2, no bias") { check_conv2d_case("stride2_pad2_kernel5"); }
TEST_CASE("golden conv2d: dilation 2, padding 2") { check_conv2d_case("dilation2_pad2"); }
TEST_CASE("golden conv2d: 2 groups") { check_conv2d_case("groups2"); }
TEST_CASE("golden conv2d: 1x1 kernel, stride 2, no bias (ResNet shortcut)") {
  check_conv2d_case("pointwise_stride2_nobias");
}
TEST_CASE("golden conv2d: 3x2 kernel, stride 2x1, padding 1x0, dilation 1x2 on a 7x9 input") {
  check_conv2d_case("rectangular");
}
