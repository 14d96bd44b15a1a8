// Cross-entropy on CUDA: the loss stays on the GPU, and target values are
// checked there (ops/cuda/loss.h): a bad one is reported by the next call,
// or at once under TPP_SYNC_DEBUG.
#include <doctest/doctest.h>

#include <cmath>

#include "engine/finite.h"
#include "ops/loss.h"
#include "tests/gpu/gpu_available.h"

using namespace tpp;

namespace {

Tensor labels_on_gpu(std::initializer_list<int64_t> values) {
  return from_vector<int64_t>(values, {static_cast<int64_t>(values.size())}).to(Device::cuda(0));
}

Tensor logits_on_gpu(int64_t n, int64_t classes) { return randn({n, classes}).to(Device::cuda(0)); }

}  // namespace

TEST_SUITE("gpu") {
  TEST_CASE("cross_entropy on CUDA gives a 0-d loss on the GPU") {
    if (skip_without_gpu()) return;
    const Tensor loss = ops::cross_entropy(logits_on_gpu(3, 4), labels_on_gpu({0, 3, 1}));
    CHECK(loss.device().is_cuda());
    CHECK(loss.dim() == 0);
    CHECK(std::isfinite(loss.item()));
  }

  TEST_CASE("an out-of-range target on CUDA makes the loss NaN and the next call names it") {
    if (skip_without_gpu()) return;
    const SyncDebugOverride asynchronous(false);
    const Tensor logits = logits_on_gpu(3, 5);
    const Tensor loss = ops::cross_entropy(logits, labels_on_gpu({0, 7, 1}));
    CHECK(std::isnan(loss.item()));  // item() waits, so the report has landed
    CHECK_THROWS_WITH(ops::cross_entropy(logits, labels_on_gpu({0, 1, 2})),
                      "cross_entropy: target 7 at position 1 is out of range for 5 classes (found on cuda:0 after the "
                      "call that used it, whose loss is NaN)");
    CHECK(std::isfinite(ops::cross_entropy(logits, labels_on_gpu({0, 1, 2})).item()));  // reported once
  }

  TEST_CASE("under TPP_SYNC_DEBUG an out-of-range target on CUDA throws at once with the CPU's message") {
    if (skip_without_gpu()) return;
    const SyncDebugOverride sync(true);
    const Tensor logits = logits_on_gpu(2, 3);
    CHECK_THROWS_WITH(ops::cross_entropy(logits, labels_on_gpu({-1, 0})),
                      "cross_entropy: target -1 at position 0 is out of range for 3 classes");
    CHECK_THROWS_WITH(ops::cross_entropy(logits, labels_on_gpu({0, 3})),
                      "cross_entropy: target 3 at position 1 is out of range for 3 classes");
    CHECK(std::isfinite(ops::cross_entropy(logits, labels_on_gpu({2, 0})).item()));
  }

  TEST_CASE("the gradient of cross_entropy on CUDA reads the upstream gradient on the GPU") {
    if (skip_without_gpu()) return;
    Tensor logits = logits_on_gpu(4, 6).detach();
    logits.set_requires_grad(true);
    const Tensor loss = ops::cross_entropy(logits, labels_on_gpu({5, 0, 2, 2}));
    loss.backward(full({}, 3.0, {.device = Device::cuda(0)}));
    const std::vector<float> grad = logits.grad().to(Device::cpu()).to_vector<float>();
    for (int64_t row = 0; row < 4; ++row) {  // each row of (softmax - one_hot) sums to 0
      double total = 0;
      for (int64_t j = 0; j < 6; ++j) total += grad[row * 6 + j];
      CHECK(std::abs(total) <= 1e-6);
    }
  }

  TEST_CASE("on CUDA rows whose target is ignore_index (default -100) add nothing and count nothing, as the CPU") {
    if (skip_without_gpu()) return;
    const Tensor logits = randn({4, 3});
    const Tensor target = from_vector<int64_t>({2, -100, 0, -100}, {4});
    for (const ops::Reduction reduction : {ops::Reduction::mean, ops::Reduction::sum}) {
      const double cpu = ops::cross_entropy(logits, target, {.reduction = reduction}).item();
      const Tensor gpu = ops::cross_entropy(logits.to(Device::cuda(0)), target.to(Device::cuda(0)),
                                            {.reduction = reduction});
      CHECK(gpu.item() == doctest::Approx(cpu).epsilon(1e-6));
    }
    const Tensor all_ignored = labels_on_gpu({-100, -100, -100, -100});
    CHECK(std::isnan(ops::cross_entropy(logits.to(Device::cuda(0)), all_ignored).item()));
    CHECK(std::isfinite(ops::cross_entropy(logits.to(Device::cuda(0)), labels_on_gpu({0, 1, 2, 0})).item()));
  }

  TEST_CASE("on CUDA a logit of -inf off the target leaves the loss finite without smoothing (as the CPU)") {
    if (skip_without_gpu()) return;
    // The fused kernel added 0 * the infinite smoothing term: NaN (difftest seed 222).
    const Tensor logits = from_vector<float>({0, -INFINITY, 0}, {1, 3}).to(Device::cuda(0));
    CHECK(ops::cross_entropy(logits, labels_on_gpu({0})).item() == doctest::Approx(std::log(2.0)));
    CHECK(ops::cross_entropy(logits, labels_on_gpu({0}), {.label_smoothing = 0.1}).item() == INFINITY);
  }

  TEST_CASE("on CUDA a tiny loss keeps its digits when the target's logit is the row's large maximum") {
    if (skip_without_gpu()) return;
    // log sum exp(x) - x_t rounded at the size of x_t first: 6e-10 off (difftest seed 321).
    const double a = 9.55896903175967338, b = -3.98582145770569340;
    const Tensor logits = from_vector<double>({a, b}, {1, 2}).to(Device::cuda(0));
    CHECK(ops::cross_entropy(logits, labels_on_gpu({0})).item() ==
          doctest::Approx(std::log1p(std::exp(b - a))).epsilon(1e-14));
  }
}
