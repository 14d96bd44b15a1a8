#include <doctest/doctest.h>

#include "engine/error.h"
#include "engine/math_mode.h"

using namespace tpp;

TEST_CASE("math mode is TF32 unless set, and parses tf32 and fp32") {
  CHECK(math_mode() == MathMode::tf32);
  CHECK(parse_math_mode("fp32") == MathMode::fp32);
  CHECK(parse_math_mode("tf32") == MathMode::tf32);
}

TEST_CASE("an unknown math mode is refused by name") {
  CHECK_THROWS_WITH(parse_math_mode("fp16"), "math: expected tf32 or fp32 but got 'fp16'");
}

TEST_CASE("MathModeOverride sets the mode for its scope only") {
  {
    const MathModeOverride fp32(MathMode::fp32);
    CHECK(math_mode() == MathMode::fp32);
  }
  CHECK(math_mode() == MathMode::tf32);
}
