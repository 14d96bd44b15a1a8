// StridedLoop (engine/strided.h), the CPU kernels' walk over strided operands.
#include <doctest/doctest.h>

#include "engine/strided.h"

using namespace tpp;

TEST_CASE("StridedLoop visits no element of a shape whose outer dim is 0") {
  // A [0, 5] output broadcast from [5] (stride 0 outside): no row exists, so
  // fn must never run (it once ran one inner row, reading and writing out of bounds).
  const Shape shape = {0, 5}, out_strides = {5, 1}, in_strides = {0, 1};
  int visits = 0;
  StridedLoop<2>(shape, {&out_strides, &in_strides}).run([&](const auto&) { ++visits; });
  CHECK(visits == 0);
}

TEST_CASE("StridedLoop visits every element of a broadcast walk once") {
  const Shape shape = {3, 4}, out_strides = {4, 1}, in_strides = {0, 1};
  std::vector<int> seen(12, 0);
  StridedLoop<2>(shape, {&out_strides, &in_strides}).run([&](const auto& o) {
    ++seen[static_cast<size_t>(o[0])];
    CHECK(o[1] == o[0] % 4);
  });
  for (const int n : seen) CHECK(n == 1);
}
