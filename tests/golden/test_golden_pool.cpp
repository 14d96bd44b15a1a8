// max/avg/global-average pooling against PyTorch (tests/fixtures/pool2d.safetensors).
#include <doctest/doctest.h>

#include "ops/pool.h"
#include "tests/golden/fixture.h"

using namespace tpp;
using namespace tpp::testing;

namespace {

std::array<int64_t, 2> pair_of(const nlohmann::json& j) { return {j.at(0).get<int64_t>(), j.at(1).get<int64_t>()}; }

void check_pool_case(const std::string& name) {
  const Fixture fx("pool2d.safetensors");
  const nlohmann::json o = fx.options(name);
  const ops::Pool2dOptions opts{.kernel = pair_of(o.at("kernel")),
                                .stride = pair_of(o.at("stride")),
                                .padding = pair_of(o.at("padding")),
                                .ceil_mode = o.at("ceil_mode").get<bool>(),
                                .count_include_pad = o.at("count_include_pad").get<bool>()};
  const Tensor x = fx.leaf(name + ".x");
  const Tensor y = o.at("op") == "max" ? ops::max_pool2d(x, opts) : ops::avg_pool2d(x, opts);
  check_close(y, fx[name + ".output"], name + ".output");
  y.backward(fx[name + ".grad_output"]);
  check_close(x.grad(), fx[name + ".grad_input"], name + ".grad_input");
}

}  // namespace

TEST_CASE("golden max_pool2d: 2x2 kernel") { check_pool_case("max_k2"); }
TEST_CASE("golden max_pool2d: 3x3 kernel, stride 2, padding 1") { check_pool_case("max_k3_s2_pad1"); }
TEST_CASE("golden max_pool2d: 3x3 kernel, stride 2, ceil mode") { check_pool_case("max_k3_s2_ceil"); }
TEST_CASE("golden max_pool2d: padding 1 with ceil mode on a 6x7 input") { check_pool_case("max_k3_s2_pad1_ceil"); }
TEST_CASE("golden max_pool2d: 2x3 kernel, stride 1x2, padding 0x1") { check_pool_case("max_k2x3_s1x2"); }
TEST_CASE("golden avg_pool2d: 2x2 kernel") { check_pool_case("avg_k2"); }
TEST_CASE("golden avg_pool2d: padding 1 counted in the divisor") { check_pool_case("avg_k3_s2_pad1"); }
TEST_CASE("golden avg_pool2d: padding 1 left out of the divisor") { check_pool_case("avg_k3_s2_pad1_exclude_pad"); }
TEST_CASE("golden avg_pool2d: ceil mode") { check_pool_case("avg_k3_s2_ceil"); }
TEST_CASE("golden avg_pool2d: padding 1 with ceil mode") { check_pool_case("avg_k3_s2_pad1_ceil"); }
TEST_CASE("golden avg_pool2d: padding 1 with ceil mode, padding left out of the divisor") {
  check_pool_case("avg_k3_s2_pad1_ceil_exclude_pad");
}

TEST_CASE("golden global_avg_pool2d: [N,C,H,W] -> [N,C] and its gradient") {
  const Fixture fx("pool2d.safetensors");
  const Tensor x = fx.leaf("global_avg.x");
  const Tensor y = ops::global_avg_pool2d(x);
  check_close(y, fx["global_avg.output"], "global_avg.output");
  y.backward(fx["global_avg.grad_output"]);
  check_close(x.grad(), fx["global_avg.grad_input"], "global_avg.grad_input");
}
