// Five SGD steps on fc2(relu(fc1(x))) with cross_entropy against PyTorch
// (tests/fixtures/sgd.safetensors): the loss before each step and every
// parameter after it, with momentum 0.9 and weight decay 5e-4, plain and
// Nesterov.
#include <doctest/doctest.h>

#include "engine/optim.h"
#include "ops/elementwise.h"
#include "ops/loss.h"
#include "ops/matmul.h"
#include "tests/golden/fixture.h"

using namespace tpp;
using namespace tpp::testing;

namespace {

void check_sgd_variant(const std::string& variant) {
  const Fixture fx("sgd.safetensors");
  const nlohmann::json o = fx.options(variant);
  const std::vector<std::string> names{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};
  std::map<std::string, Tensor> p;
  for (const std::string& name : names) p[name] = fx.leaf("initial." + name);
  Sgd sgd({p["fc1.weight"], p["fc1.bias"], p["fc2.weight"], p["fc2.bias"]},
          {.lr = o.at("lr").get<double>(),
           .momentum = o.at("momentum").get<double>(),
           .weight_decay = o.at("weight_decay").get<double>(),
           .nesterov = o.at("nesterov").get<bool>()});
  const std::vector<double> expected_losses = fx[variant + ".loss"].to_vector<double>();

  for (int step = 1; step <= 5; ++step) {
    sgd.zero_grad();
    const Tensor hidden = ops::relu(ops::linear(fx["x"], p["fc1.weight"], p["fc1.bias"]));
    const Tensor loss = ops::cross_entropy(ops::linear(hidden, p["fc2.weight"], p["fc2.bias"]), fx["target"]);
    check_close(loss, from_vector<double>({expected_losses[step - 1]}, {}), fmt::format("{}.loss{}", variant, step));
    loss.backward();
    sgd.step();
    for (const std::string& name : names) {
      const std::string key = fmt::format("{}.step{}.{}", variant, step, name);
      check_close(p[name], fx[key], key);
    }
  }
}

}  // namespace

TEST_CASE("golden sgd: momentum 0.9, weight decay 5e-4, five steps") { check_sgd_variant("momentum"); }
TEST_CASE("golden sgd: Nesterov momentum 0.9, weight decay 5e-4, five steps") { check_sgd_variant("nesterov"); }
