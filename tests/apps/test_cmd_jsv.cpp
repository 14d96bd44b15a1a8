// `tpp jsv` end to end on saved checkpoints.
#include <doctest/doctest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/philox.h"
#include "models/checkpoint.h"
#include "models/zoo.h"
#include "tests/apps/run_tpp.h"
#include "tests/apps/saved_models.h"
#include "tests/data/data_test_util.h"

using namespace tpp;
using tpp::testing::run_tpp;
using tpp::testing::TempDir;
using tpp::testing::TppRun;

namespace {

// An MNIST folder with `n` train images (28x28) and 2 test images.
void write_tiny_mnist(const std::filesystem::path& root, uint32_t n) {
  std::vector<uint8_t> labels;
  for (uint32_t i = 0; i < n; ++i) labels.push_back(static_cast<uint8_t>(i % 10));
  testing::write_bytes(root / "mnist" / "train-images-idx3-ubyte", testing::idx_images(n, 28, 28));
  testing::write_bytes(root / "mnist" / "train-labels-idx1-ubyte", testing::idx_labels(labels));
  testing::write_bytes(root / "mnist" / "t10k-images-idx3-ubyte", testing::idx_images(2, 28, 28));
  testing::write_bytes(root / "mnist" / "t10k-labels-idx1-ubyte", testing::idx_labels({0, 1}));
}

std::filesystem::path save_model(const TempDir& dir, const std::string& arch, int64_t channels,
                                 const std::string& dataset) {
  return testing::save_zoo_model(dir.path(), arch, channels, dataset, 29);
}

nlohmann::json run_json(const std::string& args) {
  const TppRun run = run_tpp(args + " --json");
  REQUIRE_MESSAGE(run.status == 0, run.output);
  return nlohmann::json::parse(run.output);
}

}  // namespace

TEST_SUITE("apps") {
  TEST_CASE("tpp jsv on mlp7_linear: the exact product by default, and --sampled agrees with it") {
    const TempDir dir;
    write_tiny_mnist(dir.path(), 7);
    const auto ckpt = save_model(dir, "mlp7_linear", 1, "mnist");
    const auto exact = run_json("jsv --checkpoint " + ckpt.string());
    CHECK(exact["route"] == "exact");
    CHECK(exact["samples"] == 1);
    CHECK(exact["values"] == 10);
    const auto sampled = run_json("jsv --checkpoint " + ckpt.string() +
                                  " --sampled --batches 2 --batch-size 3 --workers 0 "
                                  "--data-dir " +
                                  dir.path().string());
    CHECK(sampled["route"] == "sampled");
    CHECK(sampled["dataset"] == "mnist");
    CHECK(sampled["split"] == "train");
    CHECK(sampled["mode"] == "eval");
    CHECK(sampled["batches"] == 2);
    CHECK(sampled["samples"] == 6);
    CHECK(sampled["values"] == 60);
    for (const char* key : {"mean", "std", "min", "max", "condition", "mean_sq_dev_from_1"}) {
      CAPTURE(key);
      const double e = exact[key].get<double>(), s = sampled[key].get<double>();
      CHECK(std::abs(s - e) <= 1e-4 * std::abs(e));
    }

    const TppRun text = run_tpp("jsv --checkpoint " + ckpt.string());
    REQUIRE(text.status == 0);
    CHECK(text.output.find("exact, J = W_L ... W_1 of the linear model (10 singular values, no data used)") !=
          std::string::npos);
    CHECK(text.output.find("mean JSV ") != std::string::npos);
  }

  TEST_CASE("tpp jsv: bad input gives one error line and exit code 1") {
    const TempDir dir;
    const auto ckpt = save_model(dir, "mlp7_linear", 1, "mnist");
    const auto expect_error = [](const std::string& args, const std::string& message) {
      const TppRun run = run_tpp(args);
      CHECK(run.status == 1);
      CHECK(run.output == "tpp: error: " + message + "\n");
    };
    const TppRun zero = run_tpp("jsv --checkpoint " + ckpt.string() + " --batches 0");
    CHECK(zero.status == 2);
    CHECK(zero.output == "tpp: error: --batches must be a positive integer (got 0)\n");
    const TppRun negative = run_tpp("jsv --checkpoint " + ckpt.string() + " --batch-size -3");
    CHECK(negative.status == 2);
    CHECK(negative.output == "tpp: error: --batch-size must be a positive integer (got -3)\n");
    expect_error("jsv --checkpoint " + ckpt.string() + " --mode test", "jsv: --mode must be eval or train, got 'test'");
    expect_error("jsv --checkpoint " + ckpt.string() + " --exact --sampled",
                 "jsv: --exact and --sampled exclude each other");

    const TppRun missing = run_tpp("jsv --checkpoint " + (dir / "nope.safetensors").string());
    CHECK(missing.status == 1);
    CHECK(missing.output.rfind("tpp: error: ", 0) == 0);
    CHECK(missing.output.find("nope.safetensors") != std::string::npos);
    CHECK(std::count(missing.output.begin(), missing.output.end(), '\n') == 1);

    const auto cnn = save_model(dir, "resnet20", 3, "cifar10");
    expect_error("jsv --checkpoint " + cnn.string() + " --exact",
                 "jsv: --exact needs a model that is a chain of linear layers, and " + cnn.string() +
                     " (resnet20) is not; use --sampled");
  }
}
