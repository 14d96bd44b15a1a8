// ObserveForward (the forward observer summaries use) and SkipInit.
#include <doctest/doctest.h>

#include "engine/autograd.h"
#include "models/layers.h"
#include "ops/norm.h"

using namespace tpp;
using namespace tpp::models;

namespace {

struct Call {
  std::string type;
  Shape input, output;
};

std::shared_ptr<Sequential> small_net() {
  auto net = std::make_shared<Sequential>();
  net->add(std::make_shared<Linear>(4, 3));
  net->add(std::make_shared<ReLU>());
  net->add(std::make_shared<Linear>(3, 2));
  return net;
}

}  // namespace

TEST_SUITE("models") {

TEST_CASE("ObserveForward sees every call through operator(), children before their parent") {
  const auto net = small_net();
  std::vector<Call> calls;
  {
    const ObserveForward observe(
        [&](Module& m, const Tensor& x, const Tensor& y) { calls.push_back({m.type_name(), x.sizes(), y.sizes()}); });
    (*net)(zeros({5, 4}));
  }
  REQUIRE(calls.size() == 4);
  CHECK(calls[0].type == "Linear");
  CHECK(calls[0].input == Shape{5, 4});
  CHECK(calls[0].output == Shape{5, 3});
  CHECK(calls[1].type == "ReLU");
  CHECK(calls[2].output == Shape{5, 2});
  CHECK(calls[3].type == "Sequential");
  CHECK(calls[3].input == Shape{5, 4});
}

TEST_CASE("ObserveForward nests and is gone after its scope, forward() itself is not observed") {
  const auto net = small_net();
  int outer = 0, inner = 0;
  {
    const ObserveForward observe_outer([&](Module&, const Tensor&, const Tensor&) { ++outer; });
    {
      const ObserveForward observe_inner([&](Module&, const Tensor&, const Tensor&) { ++inner; });
      (*net)(zeros({1, 4}));
    }
    net->forward(zeros({1, 4}));  // the children still go through operator()
  }
  (*net)(zeros({1, 4}));
  CHECK(inner == 4);
  CHECK(outer == 3);
}

TEST_CASE("SkipInit zero-fills Linear and Conv2d parameters, nests, and ends with its scope") {
  const auto norm = [](const Tensor& t) { return ops::frobenius_norm(t).item(); };
  {
    const SkipInit skip;
    {
      const SkipInit nested;
    }
    CHECK(init_skipped());
    const Linear linear(8, 4);
    const Conv2d conv({.in_channels = 2, .out_channels = 3, .kernel_size = 3});
    CHECK(norm(linear.weight) == 0);
    CHECK(norm(linear.bias) == 0);
    CHECK(norm(conv.weight) == 0);
    CHECK(norm(conv.bias) == 0);
    CHECK(linear.weight.requires_grad());
  }
  CHECK_FALSE(init_skipped());
  const Linear linear(8, 4);
  CHECK(norm(linear.weight) > 0);
}

}  // TEST_SUITE
