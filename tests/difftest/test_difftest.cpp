// The committed differential-test cases (tests/fixtures/difftest/, drawn by
// scripts/difftest.py from fixed seeds) replayed on the CPU: every case
// matches PyTorch or is refused by design with the exact message.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>

#include "tests/difftest/difftest.h"

using namespace tpp;

namespace {

std::vector<std::filesystem::path> fixture_files() {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(std::filesystem::path(TPP_FIXTURE_DIR) / "difftest"))
    if (entry.path().extension() == ".safetensors") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

TEST_SUITE("difftest") {
  TEST_CASE("the committed seeds match PyTorch on the CPU") {
    const auto files = fixture_files();
    REQUIRE_FALSE(files.empty());
    for (const auto& path : files) {
      const difftest::CaseFile file = difftest::load_cases(path);
      const difftest::FileReport report = difftest::run_file(file, Device::cpu());
      CHECK(report.cases_per_op.size() >= 30);
      for (const std::string& failure : report.failures) FAIL_CHECK(failure);
      CHECK(report.failures.empty());
    }
  }

  TEST_CASE("a mismatch is reported with the element, both values and the tolerance") {
    const auto files = fixture_files();
    REQUIRE_FALSE(files.empty());
    difftest::CaseFile file = difftest::load_cases(files.front());
    const auto it = std::find_if(file.cases.begin(), file.cases.end(), [&](const difftest::Case& c) {
      return c.op == "exp" && c.refusal.empty() && file.tensors.tensors.at(c.id + ".out0").numel() > 0;
    });
    REQUIRE(it != file.cases.end());
    it->op = "neg";  // the wrong op for exp's references
    const difftest::CaseResult r = difftest::run_case(file, *it, Device::cpu());
    CHECK_FALSE(r.passed);
    CHECK(r.message.find("output 0: ") == 0);
    CHECK(r.message.find("ours ") != std::string::npos);
    CHECK(r.message.find("tolerance") != std::string::npos);
  }

  TEST_CASE("an exception where PyTorch gives a result is a failure naming it") {
    const auto files = fixture_files();
    REQUIRE_FALSE(files.empty());
    difftest::CaseFile file = difftest::load_cases(files.front());
    const auto it = std::find_if(file.cases.begin(), file.cases.end(),
                                 [](const difftest::Case& c) { return c.op == "softmax" && c.refusal.empty(); });
    REQUIRE(it != file.cases.end());
    it->params["dim"] = 99;
    const difftest::CaseResult r = difftest::run_case(file, *it, Device::cpu());
    CHECK_FALSE(r.passed);
    CHECK(r.message.find("threw where PyTorch gives a result: softmax: dim 99 is out of range") == 0);
  }
}
