// Every op on CUDA against the CPU backend: each case registered in
// tests/gpu/parity_*.cpp, in full fp32 and (for tensor-core ops) under TF32.
#include <doctest/doctest.h>

#include "tests/gpu/gpu_available.h"
#include "tests/gpu/parity.h"

using namespace tpp;

TEST_CASE("every registered op gives the CPU's output and gradients on CUDA") {
  if (skip_without_gpu()) return;
  REQUIRE(!parity::registry().empty());
  for (const parity::ParityCase& c : parity::registry()) {
    CAPTURE(c.name);
    for (const std::string& failure : parity::check_case_in_every_mode(c)) FAIL_CHECK(failure);
  }
}
