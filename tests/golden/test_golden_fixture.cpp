#include <doctest/doctest.h>

#include "tests/golden/fixture.h"

using namespace tpp;
using namespace tpp::testing;

TEST_CASE("golden fixtures: every generated file loads and carries its generator's metadata") {
  for (const char* file : {"conv2d.safetensors", "batch_norm2d.safetensors", "pool2d.safetensors", "linear.safetensors",
                           "cross_entropy.safetensors", "sgd.safetensors"}) {
    CAPTURE(file);
    const SafetensorsFile f = load_safetensors(std::filesystem::path(TPP_FIXTURE_DIR) / file);
    CHECK(f.metadata.at("generator") == "scripts/make_fixtures.py");
    CHECK(f.tensors.size() > 0);
  }
}

TEST_CASE("golden fixtures: options are read from the file's metadata") {
  const Fixture fx("conv2d.safetensors");
  const nlohmann::json o = fx.options("groups2");
  CHECK(o.at("groups") == 2);
  CHECK(o.at("bias") == true);
  CHECK(fx["groups2.x"].sizes() == Shape{2, 4, 6, 6});
}

TEST_CASE("golden difference finds the largest deviation and counts those beyond tolerance") {
  const Difference d = difference({1.0, 2.0, 3.0005, -4.0}, {1.0, 2.00001, 3.0, -4.0}, {.rtol = 1e-4, .atol = 1e-5});
  CHECK(d.max_abs == doctest::Approx(5e-4));
  CHECK(d.worst == 2);
  CHECK(d.outside == 1);
}

TEST_CASE("golden difference treats NaN as an infinite deviation") {
  const Difference d = difference({1.0, NAN}, {1.0, 2.0}, {});
  CHECK(std::isinf(d.max_abs));
  CHECK(d.worst == 1);
  CHECK(d.outside == 1);
}
