// Every op on CUDA against the CPU backend: each case registered in
// tests/gpu/parity_*.cpp, in full fp32 and (for tensor-core ops) under TF32.
#include <doctest/doctest.h>

#include "engine/math_mode.h"
#include "tests/gpu/gpu_available.h"
#include "tests/gpu/parity.h"

using namespace tpp;

TEST_CASE("every registered op gives the CPU's output and gradients on CUDA") {
  if (skip_without_gpu()) return;
  REQUIRE(!parity::registry().empty());
  for (const parity::ParityCase& c : parity::registry()) {
    CAPTURE(c.name);
    {
      const MathModeOverride fp32(MathMode::fp32);
      for (const std::string& failure : parity::check_case(c, c.tolerance)) FAIL_CHECK(failure);
    }
    if (c.uses_tensor_cores) {
      const MathModeOverride tf32(MathMode::tf32);
      for (const std::string& failure : parity::check_case(c, c.tf32_tolerance)) {
        const std::string line = "TF32: " + failure;
        FAIL_CHECK(line);
      }
    }
  }
}
