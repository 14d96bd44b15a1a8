// `tpp info` end to end: runs the built `tpp` program and reads its output.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "tests/apps/run_tpp.h"

using tpp::testing::run_tpp;
using Run = tpp::testing::TppRun;

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

TEST_CASE("tpp info: the table ends with the totals, mlp7_linear on MNIST runs at 32x32") {
  const Run run = run_tpp("info --arch mlp7_linear --dataset mnist");
  REQUIRE(run.status == 0);
  CHECK(run.output.find("input           1x32x32") != std::string::npos);
  CHECK(run.output.find("params                  154,010  (0.154 M") != std::string::npos);
  CHECK(run.output.find("flops                   306,800  (0.307 MFLOPs") != std::string::npos);
}

TEST_CASE("tpp info --buckets --json: resnet56's gradients per step are its 853,018 parameters (with BN) in buckets") {
  const Run run = run_tpp("info --arch resnet56 --dataset cifar10 --buckets --bucket-mb 1 --json");
  REQUIRE_MESSAGE(run.status == 0, run.output);
  const auto out = nlohmann::json::parse(run.output);
  const int64_t bytes = out["gradient_bytes_per_step"];
  const int64_t tensors = out["parameter_tensors"];
  CHECK(tensors == 3 + 27 * 6 + 2);  // conv1 + bn1 (weight, bias), 27 blocks of two convs and two BNs, fc
  CHECK(bytes >= 853018 * 4);
  CHECK(bytes < (853018 + 16 * tensors) * 4);  // at most the 64-byte alignment between tensors
  CHECK(out["bucket_bytes"] == 1 << 20);
  int64_t sum = 0;
  for (const auto& b : out["buckets"]) {
    sum += b["bytes"].get<int64_t>();
    CHECK(b["bytes"].get<int64_t>() <= 1 << 20);
  }
  CHECK(sum == bytes);
  CHECK(out["buckets"][0]["first"] == "fc.bias");  // backward's first gradients
  CHECK(out["buckets"].back()["last"] == "conv1.weight");
}

TEST_CASE("tpp info --buckets: the table names the bytes per step and each bucket") {
  const Run run = run_tpp("info --arch mlp7_linear --dataset mnist --buckets");
  REQUIRE_MESSAGE(run.status == 0, run.output);
  CHECK(run.output.find("gradients all-reduced per step: ") != std::string::npos);
  CHECK(run.output.find("buckets of up to 16 MiB, in the order backward fills them: 1") != std::string::npos);
  CHECK(run.output.find("net.12.bias .. net.0.weight") != std::string::npos);
}

TEST_CASE("tpp info: an unknown dataset is a one-line usage error listing the known ones") {
  const Run run = run_tpp("info --arch resnet56 --dataset svhn");
  CHECK(run.status == 2);
  CHECK(run.output ==
        "tpp: error: unknown dataset 'svhn'; known datasets: mnist, fashion-mnist, cifar10, cifar100, imagenet\n");
}

}  // TEST_SUITE
