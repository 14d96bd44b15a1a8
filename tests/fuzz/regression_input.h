// The inputs the fuzzers found (tests/fuzz/regressions/<target>/<name>), for
// the regression tests of the normal suite.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace tpp::testing {

inline std::vector<uint8_t> fuzz_regression_input(const std::string& target, const std::string& name) {
  const std::filesystem::path file =
      std::filesystem::path(TPP_SOURCE_DIR) / "tests" / "fuzz" / "regressions" / target / name;
  std::ifstream in(file, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "missing fuzz regression input ", file.string());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace tpp::testing
