#include <doctest/doctest.h>

#include "engine/autograd.h"
#include "ops/elementwise.h"
#include "tests/gradcheck.h"

using namespace tpp;
using tpp::testing::gradcheck;
using tpp::testing::random_input;

TEST_SUITE("autograd") {
  TEST_CASE("gradients accumulate into leaves across backward calls") {
    Tensor x = from_vector<double>({1, 2}, {2});
    x.set_requires_grad(true);
    (x * 3.0).backward(ones({2}, {.dtype = DType::f64}));
    (x * 3.0).backward(ones({2}, {.dtype = DType::f64}));
    CHECK(x.grad().to_vector<double>() == std::vector<double>{6, 6});
    x.zero_grad();
    CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 0});
  }

  TEST_CASE("a value used twice gets the sum of both paths (diamond graph)") {
    Tensor x = from_vector<double>({3}, {1});
    x.set_requires_grad(true);
    const Tensor a = x * x;      // da/dx = 2x
    const Tensor b = a * x;      // x^3
    const Tensor c = a + b;      // x^2 + x^3 -> 2x + 3x^2 = 33
    c.backward();
    CHECK(x.grad().item() == doctest::Approx(33));
  }

  TEST_CASE("requires_grad propagates only from inputs that need it") {
    Tensor w = ones({2});
    w.set_requires_grad(true);
    const Tensor c = ones({2});
    CHECK((w + c).requires_grad());
    CHECK_FALSE((c + c).requires_grad());
    CHECK((w + c).grad_fn()->name == "add");
  }

  TEST_CASE("NoGradGuard stops recording and restores the previous mode") {
    Tensor w = ones({2});
    w.set_requires_grad(true);
    {
      NoGradGuard guard;
      CHECK_FALSE((w * 2.0).requires_grad());
    }
    CHECK((w * 2.0).requires_grad());
  }

  TEST_CASE("detach shares storage but cuts history") {
    Tensor w = ones({2});
    w.set_requires_grad(true);
    const Tensor y = w * 2.0;
    const Tensor d = y.detach();
    CHECK(d.shares_storage_with(y));
    CHECK_FALSE(d.requires_grad());
    CHECK(d.is_leaf());
  }

  TEST_CASE("backward of a non-scalar needs an explicit gradient") {
    Tensor w = ones({2});
    w.set_requires_grad(true);
    CHECK_THROWS_WITH((w * 2.0).backward(), "backward: a gradient is needed for a non-scalar output of shape [2]");
    CHECK_THROWS_WITH(ones({2}).backward(), "backward: tensor of shape [2] does not require grad");
  }

  TEST_CASE("the graph is freed after backward") {
    Tensor w = ones({1});
    w.set_requires_grad(true);
    const Tensor y = (w * 2.0) * 3.0;
    y.backward();
    CHECK_THROWS_WITH(y.backward(), "backward: the graph through 'mul_scalar' was already freed by an earlier backward");
  }

  TEST_CASE("integer tensors cannot require grad") {
    Tensor t = zeros({2}, {.dtype = DType::i64});
    CHECK_THROWS_WITH(t.set_requires_grad(true), "requires_grad: only floating tensors can require grad, not i64");
  }

  TEST_CASE("gradcheck: gradients flow through views") {
    const Tensor x = random_input({3, 4}, 11);
    gradcheck([](const auto& in) { return in[0].view({4, 3}) * 2.0; }, {x});
    gradcheck([](const auto& in) { return in[0].transpose(0, 1) * 1.0; }, {x});
    gradcheck([](const auto& in) { return in[0].permute({1, 0}).contiguous(); }, {x});
    gradcheck([](const auto& in) { return in[0].slice(1, 1, 4, 2) * 3.0; }, {x});
    gradcheck([](const auto& in) { return in[0].select(0, 1) * 3.0; }, {x});
    gradcheck([](const auto& in) { return in[0].unsqueeze(1).expand({3, 2, 4}) * 1.0; }, {x});
    gradcheck([](const auto& in) { return in[0].flatten() * 1.0; }, {x});
    gradcheck([](const auto& in) { return in[0].squeeze(0).slice(0, 0, 6) * 1.0; },
              {random_input({1, 12}, 12)});
  }

  TEST_CASE("gradcheck: index_select accumulates repeated indices") {
    const Tensor x = random_input({4, 3}, 13);
    const Tensor idx = from_vector<int64_t>({3, 1, 3}, {3});
    gradcheck([idx](const auto& in) { return in[0].index_select(0, idx); }, {x});
    gradcheck([idx](const auto& in) { return in[0].index_select(1, from_vector<int64_t>({2, 0}, {2})); }, {x});
  }

  TEST_CASE("gradcheck: a slice written into by a view keeps the base gradient right") {
    const Tensor x = random_input({2, 3}, 14);
    gradcheck([](const auto& in) { return in[0].slice(0, 0, 1) + in[0].slice(0, 1, 2); }, {x});
  }

  TEST_CASE("gradient through dtype conversion") {
    const Tensor x = random_input({3}, 15);
    gradcheck([](const auto& in) { return in[0].to(DType::f32).to(DType::f64); }, {x},
              {.eps = 1e-3, .atol = 1e-4, .rtol = 1e-3});
  }
}

TEST_CASE("ops that save their output for backward do not keep their graph alive") {
  Tensor x = tpp::testing::random_input({4}, 16, 0.5, 1);
  for (const auto& op : std::vector<std::function<Tensor(const Tensor&)>>{
           [](const Tensor& t) { return ops::exp(t); }, [](const Tensor& t) { return ops::sqrt(t); },
           [](const Tensor& t) { return ops::relu(t); }, [](const Tensor& t) { return t / t; },
           [](const Tensor& t) { return 1.0 / t; }}) {
    std::weak_ptr<TensorImpl> weak;
    {
      const Tensor y = op(x);
      weak = y.impl_ptr();
    }
    CHECK(weak.expired());
  }
}

TEST_CASE("sum_to_shape refuses a shape that is not a broadcast of the target, even of equal size") {
  CHECK_THROWS_WITH(sum_to_shape(zeros({2, 3}), {3, 2}), "sum_to_shape: cannot reduce [2, 3] to [3, 2]");
}
