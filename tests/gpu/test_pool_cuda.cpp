// Pooling on CUDA where the parity harness cannot compare (it takes -inf
// minus -inf for a mismatch): a dilated max-pooling window with no tap inside
// the input.
#include <doctest/doctest.h>

#include <limits>

#include "ops/pool.h"
#include "tests/gpu/gpu_available.h"

using namespace tpp;

TEST_SUITE("gpu") {
  TEST_CASE("on CUDA a dilated window whose taps all fall in the padding gives -inf and no gradient (as the CPU)") {
    if (skip_without_gpu()) return;
    Tensor x = arange(0, 4, 1, {.dtype = DType::f64}).view({1, 1, 2, 2}).to(Device::cuda(0)).detach();
    x.set_requires_grad(true);
    const Tensor y = ops::max_pool2d(x, {.kernel = {2, 2}, .stride = {1, 1}, .padding = {1, 1}, .dilation = {3, 3}});
    REQUIRE(y.sizes() == Shape{1, 1, 1, 1});
    CHECK(y.item() == -std::numeric_limits<double>::infinity());
    y.backward(ones({1, 1, 1, 1}, {.dtype = DType::f64, .device = Device::cuda(0)}));
    CHECK(x.grad().to(Device::cpu()).to_vector<double>() == std::vector<double>(4, 0.0));
  }
}
