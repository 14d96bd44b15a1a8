#include <doctest/doctest.h>

#include "engine/autograd.h"
#include "engine/format.h"
#include "engine/rng.h"
#include "engine/tensor.h"

using namespace tpp;

TEST_CASE("a new tensor is contiguous with row-major strides") {
  const Tensor t = zeros({2, 3, 4});
  CHECK(t.sizes() == Shape{2, 3, 4});
  CHECK(t.strides() == Shape{12, 4, 1});
  CHECK(t.numel() == 24);
  CHECK(t.is_contiguous());
}

TEST_CASE("philox matches the Random123 known-answer vectors") {
  CHECK(philox4x32(0, 0, 0) == PhiloxBlock{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
  CHECK(philox4x32(~0ull, ~0ull, ~0ull) == PhiloxBlock{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd});
}
