// backward(gradient, retain_graph): several backward passes through one graph.
#include <doctest/doctest.h>

#include "engine/autograd.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"

using namespace tpp;

TEST_SUITE("engine") {
  TEST_CASE("retain_graph keeps the graph for another backward, the gradients accumulate in the leaves") {
    Tensor x = from_vector<double>({1, -2, 3}, {3});
    x.set_requires_grad();
    const Tensor y = ops::sum(ops::mul(x, x));
    y.backward({}, /*retain_graph=*/true);
    CHECK(x.grad().to_vector<double>() == std::vector<double>{2, -4, 6});
    y.backward();  // the graph is still there
    CHECK(x.grad().to_vector<double>() == std::vector<double>{4, -8, 12});
    CHECK_THROWS_AS(y.backward(), Error);  // and now it was freed
  }
}
