#include <doctest/doctest.h>

#include "engine/philox.h"
#include "models/layers.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"

using namespace tpp;
using namespace tpp::models;

TEST_CASE("BatchNorm2d with momentum=None keeps the cumulative average of the batch statistics (PyTorch)") {
  BatchNorm2d bn(2, 1e-5, std::nullopt);
  std::vector<Tensor> means, vars;
  Generator gen(11);
  for (int step = 0; step < 3; ++step) {
    const Tensor x = randn({3, 2, 2, 2}, {}, &gen);
    bn(x);
    means.push_back(ops::mean(x, {0, 2, 3}));
    // The unbiased variance over 12 values, as running_var takes it.
    const Tensor centred = x - ops::mean(x, {0, 2, 3}, true);
    vars.push_back(ops::sum(centred * centred, {0, 2, 3}) / 11.0);
  }
  const auto mean_of = [](const std::vector<Tensor>& t, int64_t c) {
    double s = 0;
    for (const Tensor& v : t) s += v.to_vector<float>()[c];
    return s / static_cast<double>(t.size());
  };
  for (int64_t c = 0; c < 2; ++c) {
    CHECK(bn.running_mean.to_vector<float>()[c] == doctest::Approx(mean_of(means, c)).epsilon(1e-5));
    CHECK(bn.running_var.to_vector<float>()[c] == doctest::Approx(mean_of(vars, c)).epsilon(1e-5));
  }
  CHECK(bn.num_batches_tracked.item() == 3);
}

TEST_CASE("BatchNorm2d's default momentum 0.1 blends each batch in") {
  BatchNorm2d bn(1);
  bn(full({2, 1, 1, 1}, 5.0));
  CHECK(bn.running_mean.item() == doctest::Approx(0.5));
}
