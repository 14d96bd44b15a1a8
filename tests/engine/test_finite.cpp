// Finding NaN and infinity, and TPP_SYNC_DEBUG: the first op whose output
// holds one is named, forward or backward.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "engine/autograd.h"
#include "engine/finite.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/reduce.h"

using namespace tpp;

namespace {
constexpr float kNan = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();
}  // namespace

TEST_SUITE("engine.finite") {
  TEST_CASE("first_non_finite gives the first NaN or infinity in row-major order, none for finite tensors") {
    CHECK_FALSE(first_non_finite(from_vector<float>({1, 2, 3}, {3})).has_value());
    const std::optional<NonFinite> inf = first_non_finite(from_vector<double>({1, -INFINITY, NAN}, {3}));
    REQUIRE(inf.has_value());
    CHECK(inf->index == 1);
    CHECK(non_finite_name(inf->value) == "-inf");
    CHECK(non_finite_name(kNan) == "nan");
    CHECK(non_finite_name(kInf) == "inf");
    CHECK(all_finite(Tensor()));
    CHECK(all_finite(from_vector<int64_t>({1, 2}, {2})));
  }

  TEST_CASE("first_non_finite walks a strided view in its own logical order") {
    // [[0, 1, 2], [3, nan, 5]] transposed is [[0, 3], [1, nan], [2, 5]]: element 3.
    const Tensor t = from_vector<float>({0, 1, 2, 3, kNan, 5}, {2, 3}).transpose(0, 1);
    REQUIRE_FALSE(t.is_contiguous());
    const std::optional<NonFinite> found = first_non_finite(t);
    REQUIRE(found.has_value());
    CHECK(found->index == 3);
  }

  TEST_CASE("without TPP_SYNC_DEBUG an op may produce NaN silently") {
    const SyncDebugOverride off(false);
    const Tensor y = ops::log(from_vector<float>({1, -1}, {2}));
    CHECK(std::isnan(y.to_vector<float>()[1]));
  }

  TEST_CASE("TPP_SYNC_DEBUG names the op that produced a NaN, its shape and the element") {
    const SyncDebugOverride on(true);
    CHECK_THROWS_WITH_AS(ops::log(from_vector<float>({1, 2, 3, -1}, {2, 2})),
                         "TPP_SYNC_DEBUG: op 'log' produced nan (shape [2, 2]) at element 3; its inputs are finite",
                         NonFiniteError);
  }

  TEST_CASE("TPP_SYNC_DEBUG checks ops run without grad too (evaluation)") {
    const SyncDebugOverride on(true);
    const NoGradGuard no_grad;
    CHECK_THROWS_WITH_AS(ops::exp(from_vector<float>({1, 100}, {2})),
                         "TPP_SYNC_DEBUG: op 'exp' produced inf (shape [2]) at element 1; its inputs are finite",
                         NonFiniteError);
  }

  TEST_CASE("TPP_SYNC_DEBUG: a non-finite input is named, and a view of it is not an op that produced it") {
    const SyncDebugOverride on(true);
    Tensor w = from_vector<float>({1, 2, kInf, 4}, {2, 2});
    w.set_requires_grad(true);
    const Tensor row = w.view({4});  // a view: no new values, not reported
    CHECK_THROWS_WITH_AS(
        ops::relu(row),
        "TPP_SYNC_DEBUG: op 'relu' produced inf (shape [4]) at element 2; input 0 (shape [4]) already holds inf at "
        "element 2 (data, a parameter or an in-place update)",
        NonFiniteError);
  }

  TEST_CASE("TPP_SYNC_DEBUG names a forward op called by a backward as in that backward") {
    const SyncDebugOverride on(true);
    Tensor x = from_vector<float>({0, 4}, {2});  // sqrt is finite at 0, its derivative is not
    x.set_requires_grad(true);
    const Tensor loss = ops::sum(ops::sqrt(x));
    CHECK_THROWS_WITH_AS(
        loss.backward(),
        "TPP_SYNC_DEBUG: op 'div' (in backward of 'sqrt') produced inf (shape [2]) at element 0; its inputs are finite",
        NonFiniteError);
  }

  TEST_CASE("TPP_SYNC_DEBUG names a backward whose gradient is not finite") {
    const SyncDebugOverride on(true);
    Tensor x = from_vector<float>({1, 2}, {2});
    x.set_requires_grad(true);
    Tensor y = x.detach().clone();
    record_grad(y, "poisoned", {x}, [](const Tensor& dy) { return Grads{full(dy.sizes(), kNan)}; });
    CHECK_THROWS_WITH_AS(
        y.backward(ones({2})),
        "TPP_SYNC_DEBUG: backward of 'poisoned' produced nan in the gradient of input 0 (shape [2]) at element 0",
        NonFiniteError);
  }

  TEST_CASE("SyncDebugOverride restores the previous setting") {
    const bool before = sync_debug();
    {
      const SyncDebugOverride on(true);
      CHECK(sync_debug());
      {
        const SyncDebugOverride off(false);
        CHECK_FALSE(sync_debug());
      }
      CHECK(sync_debug());
    }
    CHECK(sync_debug() == before);
  }

  TEST_CASE("TPP_SYNC_DEBUG leaves finite work alone: a linear layer forward and backward") {
    const SyncDebugOverride on(true);
    Tensor w = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
    w.set_requires_grad(true);
    const Tensor loss = ops::sum(ops::linear(ones({4, 3}), w));
    CHECK_NOTHROW(loss.backward());
    CHECK(w.grad().to_vector<float>() == std::vector<float>(6, 4.0f));
  }
}
