// Pruning-plan specs against the inputs the fuzzer kept
// (tests/fuzz/regressions/stage_pr/).
#include <doctest/doctest.h>

#include <string>

#include "prune/plan.h"
#include "tests/fuzz/regression_input.h"

using namespace tpp;

TEST_SUITE("prune.plan_hardening") {
  TEST_CASE("fuzz regression: a set opening with '^' holds '^', as in Python's fnmatch (glibc negates it)") {
    // fuzz_stage_pr compared glob_match with glibc's fnmatch and stopped on
    // "*[^.[}]*"; the reference code's Python fnmatch reads the set as
    // {'^', '.', '[', '}'}, and so do we.
    const std::vector<uint8_t> input = tpp::testing::fuzz_regression_input("stage_pr", "caret_set");
    const std::string text(input.begin(), input.end());
    const std::string skip_line = text.substr(text.find('\n') + 1, text.rfind('\n') - text.find('\n') - 1);
    const std::vector<std::string> skips = prune::parse_skip_layers(skip_line);
    REQUIRE(skips == std::vector<std::string>{"*[^.[}]*", "r*"});
    CHECK_FALSE(prune::glob_match("*[^.[}]*", "conv1"));
    CHECK(prune::glob_match("*[^.[}]*", "a^b"));
    CHECK(prune::glob_match("[!^x]", "c"));
    CHECK(prune::layer_ratio("conv1", {{"conv?", 0.5}}, skips) == 0.5);
  }
}
