// `tpp info` end to end: runs the built `tpp` program and reads its output.
#include <doctest/doctest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <sys/wait.h>

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

}  // namespace

TEST_SUITE("apps") {

TEST_CASE("tpp info --json: resnet56 on cifar10 has 848,954 params, 853,018 with BN, 250,971,392 FLOPs") {
  const Run run = run_tpp("info --arch resnet56 --dataset cifar10 --json");
  REQUIRE(run.status == 0);
  const auto out = nlohmann::json::parse(run.output);
  CHECK(out["params"] == 848954);
  CHECK(out["params_with_bn"] == 853018);
  CHECK(out["flops"] == 250971392);
  CHECK(out["input"] == nlohmann::json::array({3, 32, 32}));
  REQUIRE(out["layers"].size() == 111);
  CHECK(out["layers"][0]["name"] == "conv1");
  CHECK(out["layers"][0]["output"] == nlohmann::json::array({16, 32, 32}));
}

TEST_CASE("tpp info: the table ends with the totals; mlp7_linear on MNIST runs at 32x32") {
  const Run run = run_tpp("info --arch mlp7_linear --dataset mnist");
  REQUIRE(run.status == 0);
  CHECK(run.output.find("input           1x32x32") != std::string::npos);
  CHECK(run.output.find("params                  154,010  (0.154 M") != std::string::npos);
  CHECK(run.output.find("flops                   306,800  (0.307 MFLOPs") != std::string::npos);
}

TEST_CASE("tpp info: an unknown dataset is a one-line error listing the known ones") {
  const Run run = run_tpp("info --arch resnet56 --dataset svhn");
  CHECK(run.status == 1);
  CHECK(run.output ==
        "tpp: error: unknown dataset 'svhn'; known datasets: mnist, fashion-mnist, cifar10, cifar100, imagenet\n");
}

}  // TEST_SUITE
