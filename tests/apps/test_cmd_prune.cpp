// `tpp prune` end to end: runs the built `tpp` program and reads its output.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace {

struct Run {
  int status;
  std::string output;  // stdout and stderr
};

Run run_tpp(const std::string& args) {
  const std::filesystem::path tpp = std::filesystem::path(TPP_BINARY_DIR) / "tpp";
  REQUIRE_MESSAGE(std::filesystem::exists(tpp), tpp.string() << " is not built (run ninja for all targets)");
  FILE* pipe = popen((tpp.string() + " " + args + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  std::array<char, 4096> buffer{};
  while (const size_t n = fread(buffer.data(), 1, buffer.size(), pipe)) output.append(buffer.data(), n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_SUITE("apps") {
  TEST_CASE("tpp prune --dry-run --json: resnet56 at PR 0.9 keeps 1/3/6 and gives 90.66% / 11.58x") {
    const Run run = run_tpp("prune --dry-run --arch resnet56 --dataset cifar10 --stage-pr '*layer*.conv1:0.9' --json");
    REQUIRE(run.status == 0);
    const auto out = nlohmann::ordered_json::parse(run.output);
    std::vector<std::string> keys;
    for (const auto& [key, value] : out.items()) keys.push_back(key);
    CHECK(keys == std::vector<std::string>{"layers", "dense", "pruned", "sparsity", "sparsity_with_bn", "speedup"});
    REQUIRE(out["layers"].size() == 56);
    CHECK(out["layers"][1] == nlohmann::ordered_json({{"name", "layer1.0.conv1"}, {"total", 16}, {"kept", 1}}));
    CHECK(out["layers"][21]["name"] == "layer2.1.conv1");
    CHECK(out["layers"][21]["kept"] == 3);
    CHECK(out["layers"][53]["kept"] == 6);
    CHECK(out["dense"] ==
          nlohmann::ordered_json({{"params", 848954}, {"params_with_bn", 853018}, {"flops", 250971392}}));
    CHECK(fmt::format("{:.2f}", 100 * out["sparsity"].get<double>()) == "90.66");
    CHECK(fmt::format("{:.2f}", 100 * out["sparsity_with_bn"].get<double>()) == "90.45");
    CHECK(fmt::format("{:.2f}", out["speedup"].get<double>()) == "11.58");
  }

  TEST_CASE("tpp prune --dry-run: the table lists kept/total per layer and ends with sparsity and speedup") {
    const Run run = run_tpp("prune --dry-run --arch resnet56 --dataset cifar10 --stage-pr '*layer*.conv1:0.5'");
    REQUIRE(run.status == 0);
    CHECK(contains(run.output, "27 of 56 layers pruned"));
    CHECK(contains(run.output, "layer1.0.conv1    0.5       8 / 16\n"));
    CHECK(contains(run.output, "layer1.0.conv2      -      16 / 16\n"));
    CHECK(contains(run.output, "sparsity 49.94%"));
    CHECK(contains(run.output, "sparsity 49.82% (BN gamma, beta counted)"));
    CHECK(contains(run.output, "speedup 1.99x"));
  }

  TEST_CASE("tpp prune: a bad stage-pr or a residual layer is a one-line error") {
    Run run = run_tpp("prune --dry-run --arch resnet56 --dataset cifar10 --stage-pr '*layer*.conv1:1.5'");
    CHECK(run.status == 1);
    CHECK(run.output ==
          "tpp: error: stage-pr '*layer*.conv1:1.5': the ratio '1.5' of '*layer*.conv1' must be a number in [0, 1)\n");
    run = run_tpp("prune --dry-run --arch resnet56 --dataset cifar10 --stage-pr '*conv2:0.5'");
    CHECK(run.status == 1);
    CHECK(run.output ==
          "tpp: error: stage-pr '*conv2:0.5' gives 'layer1.0.conv2' the ratio 0.5, but its filters cannot be removed: "
          "its output feeds a residual sum ('add') (exclude it with --skip-layers)\n");
  }

}  // TEST_SUITE
