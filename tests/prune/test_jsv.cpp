// Jacobian singular values (TPP-METHOD §8.3) and the linear algebra under them.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <vector>

#include "engine/autograd.h"
#include "engine/philox.h"
#include "models/layers.h"
#include "models/zoo.h"
#include "ops/reduce.h"
#include "prune/jsv.h"
#include "prune/linalg.h"

using namespace tpp;

namespace {

std::vector<double> random_values(int64_t n, uint64_t seed) {
  Generator gen(seed);
  return randn({n}, {.dtype = DType::f64}, &gen).to_vector<double>();
}

// U diag(s) Vᵀ [rows, cols] with U, V random with orthonormal columns.
std::vector<double> with_singular_values(const std::vector<double>& s, int64_t rows, int64_t cols) {
  const auto k = static_cast<int64_t>(s.size());
  const std::vector<double> u = prune::linalg::orthonormal_factor(random_values(rows * k, 51), rows, k);
  const std::vector<double> v = prune::linalg::orthonormal_factor(random_values(cols * k, 52), cols, k);
  std::vector<double> a(static_cast<size_t>(rows * cols), 0.0);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j)
      for (int64_t t = 0; t < k; ++t)
        a[static_cast<size_t>(i * cols + j)] +=
            u[static_cast<size_t>(i * k + t)] * s[static_cast<size_t>(t)] * v[static_cast<size_t>(j * k + t)];
  return a;
}

// conv -> BN -> ReLU -> global pool -> linear: a small model with batch statistics.
std::shared_ptr<models::Sequential> small_cnn() {
  manual_seed(17);
  auto net = std::make_shared<models::Sequential>();
  net->add(std::make_shared<models::Conv2d>(
      models::Conv2dSpec{.in_channels = 2, .out_channels = 3, .kernel_size = 3, .padding = 1}));
  net->add(std::make_shared<models::BatchNorm2d>(3));
  net->add(std::make_shared<models::ReLU>());
  net->add(std::make_shared<models::GlobalAvgPool2d>());
  net->add(std::make_shared<models::Linear>(3, 4));
  return net;
}

}  // namespace

TEST_SUITE("prune") {
  TEST_CASE("Jacobi eigen solver: V diag(λ) Vᵀ reconstructs a random symmetric matrix, V orthonormal, λ ascending") {
    const int64_t n = 7;
    const std::vector<double> r = random_values(n * n, 61);
    std::vector<double> a(static_cast<size_t>(n * n));
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j)
        a[static_cast<size_t>(i * n + j)] = r[static_cast<size_t>(i * n + j)] + r[static_cast<size_t>(j * n + i)];
    const prune::linalg::SymmetricEigen eig = prune::linalg::symmetric_eigen(a, n, true);
    REQUIRE(eig.values.size() == static_cast<size_t>(n));
    CHECK(std::is_sorted(eig.values.begin(), eig.values.end()));
    const auto v = [&](int64_t i, int64_t k) { return eig.vectors[static_cast<size_t>(i * n + k)]; };
    double worst_reconstruction = 0, worst_orthonormality = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double rec = 0, dot = 0;
        for (int64_t k = 0; k < n; ++k) {
          rec += v(i, k) * eig.values[static_cast<size_t>(k)] * v(j, k);
          dot += v(k, i) * v(k, j);
        }
        worst_reconstruction = std::max(worst_reconstruction, std::abs(rec - a[static_cast<size_t>(i * n + j)]));
        worst_orthonormality = std::max(worst_orthonormality, std::abs(dot - (i == j)));
      }
    CHECK(worst_reconstruction < 1e-12);
    CHECK(worst_orthonormality < 1e-12);
  }

  TEST_CASE("singular values of U diag(s) Vᵀ are s, for wide and tall matrices") {
    const std::vector<double> s = {3, 2, 1, 0.5, 1e-3};
    for (const auto& [rows, cols] : {std::pair<int64_t, int64_t>{5, 12}, std::pair<int64_t, int64_t>{12, 5}}) {
      const std::vector<double> got = prune::linalg::singular_values(with_singular_values(s, rows, cols), rows, cols);
      REQUIRE(got.size() == s.size());
      for (size_t i = 0; i < s.size(); ++i) CHECK(got[i] == doctest::Approx(s[i]).epsilon(1e-9));
    }
  }

  TEST_CASE("linear_chain_jsv of a Linear layer holding U diag(s) Vᵀ gives s: mean, std, min, max, condition") {
    const std::vector<double> s = {4, 2, 1, 0.5};
    models::Sequential net;
    auto fc = net.add(std::make_shared<models::Linear>(6, 4));
    {
      const NoGradGuard no_grad;
      fc->weight.copy_(from_vector<double>(with_singular_values(s, 4, 6), {4, 6}));
    }
    const prune::JsvStats st = prune::linear_chain_jsv(net);
    CHECK(st.samples == 1);
    CHECK(st.values == 4);
    CHECK(st.mean == doctest::Approx(1.875).epsilon(1e-6));
    CHECK(st.std == doctest::Approx(std::sqrt((4.515625 + 0.015625 + 0.765625 + 1.890625) / 4)).epsilon(1e-6));
    CHECK(st.max == doctest::Approx(4).epsilon(1e-6));
    CHECK(st.min == doctest::Approx(0.5).epsilon(1e-6));
    CHECK(st.condition == doctest::Approx(8).epsilon(1e-6));
    CHECK(st.mean_sq_dev_from_1 == doctest::Approx((9 + 1 + 0 + 0.25) / 4.0).epsilon(1e-6));
  }

  TEST_CASE("JSV statistics pool the values of all samples, the condition number is the mean of max/min per sample") {
    const prune::JsvStats st = prune::jsv_stats({{2, 1}, {4, 0.5}});
    CHECK(st.samples == 2);
    CHECK(st.values == 4);
    CHECK(st.mean == doctest::Approx(1.875));
    CHECK(st.min == 0.5);
    CHECK(st.max == 4);
    CHECK(st.condition == doctest::Approx(5));  // (2/1 + 4/0.5) / 2
    CHECK(st.mean_sq_dev_from_1 == doctest::Approx(2.5625));
    const nlohmann::ordered_json j = prune::jsv_json(st);
    std::vector<std::string> keys;
    for (const auto& [key, value] : j.items()) keys.push_back(key);
    CHECK(keys == std::vector<std::string>{"mean", "std", "min", "max", "condition", "mean_sq_dev_from_1", "samples"});
    CHECK(j["samples"] == 2);
  }

  TEST_CASE("mlp7_linear: the exact product and the sampled per-sample Jacobians give the same singular values") {
    manual_seed(23);
    auto mlp = models::make_model("mlp7_linear", 10, 1);
    CHECK(prune::is_linear_chain(*mlp));
    const prune::JsvStats exact = prune::linear_chain_jsv(*mlp);
    prune::JsvAccumulator acc;
    acc.add_batch(*mlp, randn({4, 1, 32, 32}));
    acc.add_batch(*mlp, randn({2, 1, 32, 32}));
    const prune::JsvStats sampled = acc.stats();
    CHECK(exact.samples == 1);
    CHECK(exact.values == 10);
    CHECK(sampled.samples == 6);
    CHECK(sampled.values == 60);
    const auto same = [](double a, double b) { return std::abs(a - b) <= 1e-4 * std::abs(b); };
    CHECK(same(sampled.mean, exact.mean));
    CHECK(same(sampled.std, exact.std));
    CHECK(same(sampled.min, exact.min));
    CHECK(same(sampled.max, exact.max));
    CHECK(same(sampled.condition, exact.condition));
    CHECK(same(sampled.mean_sq_dev_from_1, exact.mean_sq_dev_from_1));
    MESSAGE("mlp7_linear at PyTorch's default init: mean JSV ", exact.mean, ", sampled ", sampled.mean);
  }

  TEST_CASE("batch Jacobians with BN in train mode: row c of sample n is d(Σ_m logits[m, c]) / d x_n") {
    auto net = small_cnn();
    net->train();
    const Tensor images = randn({5, 2, 6, 6});
    const Tensor jac = prune::batch_jacobians(*net, images);
    REQUIRE(jac.sizes() == Shape{5, 4, 72});
    const std::vector<float> j = jac.to_vector<float>();
    for (int64_t c = 0; c < 4; ++c) {
      Tensor x = images.clone();
      x.set_requires_grad();
      ops::sum((*net)(x).select(1, c)).backward();
      const std::vector<float> g = x.grad().to_vector<float>();
      double worst = 0;
      for (int64_t n = 0; n < 5; ++n)
        for (int64_t d = 0; d < 72; ++d)
          worst = std::max(worst, static_cast<double>(std::abs(g[static_cast<size_t>(n * 72 + d)] -
                                                               j[static_cast<size_t>((n * 4 + c) * 72 + d)])));
      CAPTURE(c);
      CHECK(worst < 1e-6);
    }
  }

  TEST_CASE("batch Jacobians in eval mode are each sample's own, and leave the parameters' gradients alone") {
    auto net = small_cnn();
    net->train();
    (*net)(randn({8, 2, 6, 6}));  // running statistics away from their defaults
    net->eval();
    const Tensor images = randn({3, 2, 6, 6});
    const std::vector<float> batch = prune::batch_jacobians(*net, images).to_vector<float>();
    const std::vector<float> alone = prune::batch_jacobians(*net, images.slice(0, 1, 2)).to_vector<float>();
    for (size_t i = 0; i < alone.size(); ++i) CHECK(batch[alone.size() + i] == doctest::Approx(alone[i]).epsilon(1e-5));
    for (const Tensor& p : net->parameters()) {
      CHECK(p.requires_grad());
      CHECK_FALSE(p.grad().defined());
    }
  }

  TEST_CASE("linear_chain_jsv refuses a model that is not a chain of Linear layers, naming the layer") {
    auto net = small_cnn();
    CHECK_FALSE(prune::is_linear_chain(*net));
    CHECK_THROWS_WITH(prune::linear_chain_jsv(*net),
                      "linear_chain_jsv: the Sequential is not a chain of Linear layers: '0' is a Conv2d");
    models::Sequential mismatched;
    mismatched.add(std::make_shared<models::Linear>(4, 3));
    mismatched.add(std::make_shared<models::Linear>(5, 2));
    CHECK_THROWS_WITH(prune::linear_chain_jsv(mismatched),
                      "linear_chain_jsv: the Sequential is not a chain of Linear layers: '1' takes 5 features but the "
                      "layer before gives 3");
  }
}
