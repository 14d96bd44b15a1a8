// The cuDNN algorithm memo (ops/cuda/conv_algo_cache.h) is plain host code:
// its keying is tested here, in every build.
#include <doctest/doctest.h>

#include <functional>
#include <stdexcept>
#include <vector>

#include "ops/cuda/conv_algo_cache.h"

using namespace tpp;
using ops::Conv2dGeometry;
using ops::cuda::ConvAlgoCache;
using ops::cuda::ConvAlgoKey;
using ops::cuda::ConvAlgoKeyHash;
using ops::cuda::ConvPass;

namespace {

ConvAlgoKey base_key() {
  Conv2dGeometry g;
  g.batch = 2;
  g.in_channels = 4;
  g.in_h = 9;
  g.in_w = 7;
  g.out_channels = 6;
  g.kernel_h = 3;
  g.kernel_w = 3;
  g.out_h = 9;
  g.out_w = 7;
  g.pad_h = 1;
  g.pad_w = 1;
  g.groups = 2;
  return {.geometry = g, .dtype = DType::f32, .math = 0, .device = 0, .pass = ConvPass::forward};
}

// One change per entry: every field the key holds.
std::vector<std::function<void(ConvAlgoKey&)>> single_field_changes() {
  return {
      [](ConvAlgoKey& k) { k.geometry.batch = 3; },        [](ConvAlgoKey& k) { k.geometry.in_channels = 8; },
      [](ConvAlgoKey& k) { k.geometry.in_h = 10; },        [](ConvAlgoKey& k) { k.geometry.in_w = 8; },
      [](ConvAlgoKey& k) { k.geometry.out_channels = 4; }, [](ConvAlgoKey& k) { k.geometry.kernel_h = 1; },
      [](ConvAlgoKey& k) { k.geometry.kernel_w = 5; },     [](ConvAlgoKey& k) { k.geometry.out_h = 5; },
      [](ConvAlgoKey& k) { k.geometry.out_w = 4; },        [](ConvAlgoKey& k) { k.geometry.stride_h = 2; },
      [](ConvAlgoKey& k) { k.geometry.stride_w = 2; },     [](ConvAlgoKey& k) { k.geometry.pad_h = 0; },
      [](ConvAlgoKey& k) { k.geometry.pad_w = 2; },        [](ConvAlgoKey& k) { k.geometry.dilation_h = 2; },
      [](ConvAlgoKey& k) { k.geometry.dilation_w = 2; },   [](ConvAlgoKey& k) { k.geometry.groups = 1; },
      [](ConvAlgoKey& k) { k.dtype = DType::f64; },         [](ConvAlgoKey& k) { k.math = 3; },
      [](ConvAlgoKey& k) { k.device = 1; },                 [](ConvAlgoKey& k) { k.pass = ConvPass::backward_filter; },
  };
}

}  // namespace

TEST_SUITE("conv2d") {
  TEST_CASE("the conv algorithm cache searches once per key and then answers from memory") {
    ConvAlgoCache<int> cache;
    int searches = 0;
    const auto search = [&] { return 40 + ++searches; };
    CHECK(cache.find_or_search(base_key(), search) == 41);
    CHECK(cache.find_or_search(base_key(), search) == 41);
    CHECK(searches == 1);
    CHECK(cache.size() == 1);
  }

  TEST_CASE("the conv algorithm key tells apart shapes that differ in any one field") {
    const auto changes = single_field_changes();
    REQUIRE(changes.size() == ConvAlgoKey::kFields);
    ConvAlgoCache<int> cache;
    int searches = 0;
    const auto search = [&] { return ++searches; };
    cache.find_or_search(base_key(), search);
    for (const auto& change : changes) {
      ConvAlgoKey key = base_key();
      change(key);
      CHECK_FALSE(key == base_key());
      CHECK(ConvAlgoKeyHash{}(key) != ConvAlgoKeyHash{}(base_key()));
      cache.find_or_search(key, search);
    }
    CHECK(searches == static_cast<int>(changes.size()) + 1);
    CHECK(cache.size() == changes.size() + 1);
  }

  TEST_CASE("a conv algorithm search that throws leaves nothing cached") {
    ConvAlgoCache<int> cache;
    CHECK_THROWS_AS(cache.find_or_search(base_key(), []() -> int { throw std::runtime_error("no algorithm"); }),
                    std::runtime_error);
    CHECK(cache.size() == 0);
    CHECK(cache.find_or_search(base_key(), [] { return 7; }) == 7);
  }
}
