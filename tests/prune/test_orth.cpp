// OrthP, KernOrth, OrthConv and their sum over a model (TPP-METHOD §7.2–7.5, §10 tests 6 and 7).
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "engine/autograd.h"
#include "engine/philox.h"
#include "models/layers.h"
#include "models/surgery.h"
#include "models/zoo.h"
#include "ops/conv2d.h"
#include "prune/jsv.h"
#include "prune/linalg.h"
#include "prune/orth.h"
#include "tests/golden/fixture.h"
#include "tests/gradcheck.h"

using namespace tpp;
using tpp::testing::gradcheck;
using tpp::testing::random_input;

namespace {

// Row-major [r, c] values of a 2-d view of `t` ([N, ...] -> [N, rest]).
std::vector<double> matrix_of(const Tensor& t) { return t.detach().contiguous().to_vector<double>(); }

// max |M Mᵀ − g² I| (rows) or |Mᵀ M − g² I| (columns) of the row-major r×c matrix m.
double orthonormality_error(const std::vector<double>& m, int64_t r, int64_t c, bool rows, double gain) {
  const int64_t k = rows ? r : c;
  double worst = 0;
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j) {
      double dot = 0;
      for (int64_t t = 0; t < (rows ? c : r); ++t)
        dot += rows ? m[static_cast<size_t>(i * c + t)] * m[static_cast<size_t>(j * c + t)]
                    : m[static_cast<size_t>(t * c + i)] * m[static_cast<size_t>(t * c + j)];
      worst = std::max(worst, std::abs(dot - (i == j ? gain * gain : 0.0)));
    }
  return worst;
}

std::vector<double> random_values(int64_t n, uint64_t seed) {
  Generator gen(seed);
  return randn({n}, {.dtype = DType::f64}, &gen).to_vector<double>();
}

// The mlp7_linear of the zoo narrowed to `widths` (its hidden layers net.0, net.2, ..., net.10).
std::shared_ptr<models::Module> pruned_mlp(const std::vector<int64_t>& widths) {
  manual_seed(7);
  auto mlp = models::make_model("mlp7_linear", 10, 1);
  std::map<std::string, int64_t> by_layer;
  for (size_t i = 0; i < widths.size(); ++i) by_layer["net." + std::to_string(2 * i)] = widths[i];
  models::apply_widths(*mlp, by_layer);
  return mlp;
}

}  // namespace

TEST_SUITE("prune") {
  TEST_CASE("OrthP on a pruned MLP-7-Linear: every singular value of W7...W1 is 1 (mean JSV 1.0000)") {
    // Widths that never grow again after narrowing: each W_l then has orthonormal rows, and so has the product.
    // (A layer wider than one before it would leave a projection inside the product.)
    for (const auto& widths : {std::vector<int64_t>(6, 20), std::vector<int64_t>{40, 33, 33, 21, 20, 12}}) {
      CAPTURE(widths.front());
      auto mlp = pruned_mlp(widths);
      const prune::JsvStats before = prune::linear_chain_jsv(*mlp);
      CHECK(before.max < 0.5);  // the default init shrinks the signal: far from isometry
      prune::orthogonalize_weights(*mlp, prune::orthp_gain("mlp7_linear"));
      const prune::JsvStats after = prune::linear_chain_jsv(*mlp);
      CHECK(after.values == 10);
      CHECK(std::abs(after.min - 1) < 1e-6);
      CHECK(std::abs(after.max - 1) < 1e-6);
      CHECK(fmt::format("{:.4f}", after.mean) == "1.0000");
      CHECK(after.mean_sq_dev_from_1 < 1e-12);
    }
  }

  TEST_CASE("OrthP: orthonormal rows for a wide conv, orthonormal columns for a tall one, times the gain") {
    manual_seed(3);
    models::Sequential net;
    auto wide = net.add(std::make_shared<models::Conv2d>(
        models::Conv2dSpec{.in_channels = 3, .out_channels = 4, .kernel_size = 3}));  // 4 x 27
    auto tall = net.add(std::make_shared<models::Conv2d>(
        models::Conv2dSpec{.in_channels = 1, .out_channels = 16, .kernel_size = 2}));  // 16 x 4
    auto fc = net.add(std::make_shared<models::Linear>(6, 9));                         // 9 x 6
    const std::vector<float> bias_before = wide->bias.to_vector<float>();
    const double gain = std::sqrt(2.0);
    prune::orthogonalize_weights(net, gain);
    CHECK(orthonormality_error(matrix_of(wide->weight), 4, 27, true, gain) < 1e-5);
    CHECK(orthonormality_error(matrix_of(tall->weight), 16, 4, false, gain) < 1e-5);
    CHECK(orthonormality_error(matrix_of(fc->weight), 9, 6, false, gain) < 1e-5);
    CHECK(wide->bias.to_vector<float>() == bias_before);
    CHECK(prune::orthp_gain("resnet56") == doctest::Approx(std::sqrt(2.0)));
    CHECK(prune::orthp_gain("mlp7_linear") == 1.0);
  }

  TEST_CASE("OrthP's QR: R = Qᵀ A is upper triangular with a positive diagonal (Mezzadri's sign fix)") {
    for (const auto& entry : {std::pair<int64_t, int64_t>{9, 5}, std::pair<int64_t, int64_t>{100, 70}}) {
      const auto& m = entry.first;
      const auto& n = entry.second;
      CAPTURE(n);  // 70 columns: more than one blocked panel
      const std::vector<double> a = random_values(m * n, 11);
      const std::vector<double> q = prune::linalg::orthonormal_factor(a, m, n);
      CHECK(orthonormality_error(q, m, n, false, 1.0) < 1e-13);
      double below = 0, smallest_diagonal = INFINITY;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j <= i; ++j) {
          double r = 0;  // (Qᵀ A)_ij
          for (int64_t t = 0; t < m; ++t) r += q[static_cast<size_t>(t * n + i)] * a[static_cast<size_t>(t * n + j)];
          if (i > j) below = std::max(below, std::abs(r));
          if (i == j) smallest_diagonal = std::min(smallest_diagonal, r);
        }
      CHECK(below < 1e-12);
      CHECK(smallest_diagonal > 0);
    }
  }

  TEST_CASE("OrthP's QR of a rank-deficient matrix still has orthonormal columns (a zero R_jj counts as positive)") {
    const int64_t m = 6, n = 4;
    std::vector<double> a = random_values(m * n, 13);
    for (int64_t i = 0; i < m; ++i) {
      a[static_cast<size_t>(i * n + 1)] = 0;                              // a zero column
      a[static_cast<size_t>(i * n + 3)] = a[static_cast<size_t>(i * n)];  // a repeated one
    }
    CHECK(orthonormality_error(prune::linalg::orthonormal_factor(a, m, n), m, n, false, 1.0) < 1e-12);
  }

  TEST_CASE("OrthP leaves a weight that already has orthonormal columns (any signs) unchanged") {
    const int64_t m = 7, n = 4;
    std::vector<double> q = prune::linalg::orthonormal_factor(random_values(m * n, 12), m, n);
    for (int64_t i = 0; i < m; ++i) {  // flip columns 1 and 2: still orthonormal, R = diag(1, -1, -1, 1) before the fix
      q[static_cast<size_t>(i * n + 1)] *= -1;
      q[static_cast<size_t>(i * n + 2)] *= -1;
    }
    const Tensor w = from_vector<double>(q, {m, n});
    const std::vector<double> again = prune::orthogonalized(w, 1.0).to_vector<double>();
    for (size_t i = 0; i < q.size(); ++i) CHECK(again[i] == doctest::Approx(q[i]).epsilon(1e-12));
    // and the wide orientation: rows orthonormal
    const Tensor wide = from_vector<double>(q, {m, n}).transpose(0, 1).contiguous();
    const std::vector<double> wide_again = prune::orthogonalized(wide, 1.0).to_vector<double>();
    const std::vector<double> wide_values = wide.to_vector<double>();
    for (size_t i = 0; i < q.size(); ++i) CHECK(wide_again[i] == doctest::Approx(wide_values[i]).epsilon(1e-12));
  }

  TEST_CASE("OrthP matches PyTorch's QR with the sign fix (fixture)") {
    const testing::Fixture fx("orth.safetensors");
    for (const char* name : {"wide_conv", "tall_linear", "square_linear"}) {
      const std::string key = std::string("orthp.") + name;
      const double gain = fx.options(key)["gain"].get<double>();
      testing::check_close(prune::orthogonalized(fx[key + ".weight"], gain), fx[key + ".orthogonalized"], key,
                           {.rtol = 1e-5, .atol = 1e-6});
    }
  }

  TEST_CASE("KernOrth on hand examples: ||WᵀW − I||_F for tall W, ||W Wᵀ − I||_F for wide W, not squared") {
    // tall [3, 2]: WᵀW = diag(1, 4), minus I = diag(0, 3)
    CHECK(prune::kernorth_loss(from_vector<double>({1, 0, 0, 2, 0, 0}, {3, 2})).item() == doctest::Approx(3.0));
    // wide [2, 3]: W Wᵀ = [[2, 1], [1, 1]], minus I = [[1, 1], [1, 0]]
    CHECK(prune::kernorth_loss(from_vector<double>({1, 1, 0, 0, 1, 0}, {2, 3})).item() ==
          doctest::Approx(std::sqrt(3.0)));
    // a conv [2, 1, 1, 2] reads as the same wide [2, 2] rows
    CHECK(prune::kernorth_loss(from_vector<float>({1, 0, 0, 1}, {2, 1, 1, 2})).item() == 0.0);
  }

  TEST_CASE("KernOrth gradient: finite differences (f64), wide conv and tall linear weights") {
    gradcheck([](const std::vector<Tensor>& in) { return prune::kernorth_loss(in[0]); },
              {random_input({3, 2, 2, 2}, 21)});
    gradcheck([](const std::vector<Tensor>& in) { return prune::kernorth_loss(in[0]); }, {random_input({6, 3}, 22)});
  }

  TEST_CASE(
      "OrthConv geometry (§10.7): Z[i,i,1,1] is the shift-(1,1) autocorrelation for s=2,p=1, ||K_i||² for s=1,p=1") {
    const Tensor k = random_input({4, 3, 3, 3}, 31).detach();
    const std::vector<double> kv = k.to_vector<double>();
    const auto tap = [&](int64_t i, int64_t c, int64_t u, int64_t v) {
      return kv[static_cast<size_t>(((i * 3 + c) * 3 + u) * 3 + v)];
    };
    const Tensor z2 = ops::conv2d(k, k, {}, {.stride = {2, 2}, .padding = {1, 1}});
    const Tensor z1 = ops::conv2d(k, k, {}, {.stride = {1, 1}, .padding = {1, 1}});
    REQUIRE(z2.sizes() == Shape{4, 4, 2, 2});
    REQUIRE(z1.sizes() == Shape{4, 4, 3, 3});
    for (int64_t i = 0; i < 4; ++i) {
      double shifted = 0, squared = 0;
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t u = 0; u < 3; ++u)
          for (int64_t v = 0; v < 3; ++v) {
            squared += tap(i, c, u, v) * tap(i, c, u, v);
            if (u < 2 && v < 2) shifted += tap(i, c, u, v) * tap(i, c, u + 1, v + 1);
          }
      CHECK(z2.select(0, i).select(0, i).select(0, 1).select(0, 1).item() == doctest::Approx(shifted));
      CHECK(z1.select(0, i).select(0, i).select(0, 1).select(0, 1).item() == doctest::Approx(squared));
    }
    // The loss is ||Z − T||_F with the identity at the centre tap (1, 1) in both geometries.
    for (const auto& [z, stride] : {std::pair{z2, int64_t{2}}, std::pair{z1, int64_t{1}}}) {
      const std::vector<double> zv = z.to_vector<double>();
      const int64_t hw = z.size(2) * z.size(3);
      double sum = 0;
      for (size_t e = 0; e < zv.size(); ++e) {
        const int64_t pair = static_cast<int64_t>(e) / hw, pos = static_cast<int64_t>(e) % hw;
        const bool centre_of_diagonal = pair / 4 == pair % 4 && pos == z.size(3) + 1;
        sum += (zv[e] - centre_of_diagonal) * (zv[e] - centre_of_diagonal);
      }
      CHECK(prune::orthconv_loss(k, stride, 1).item() == doctest::Approx(std::sqrt(sum)));
    }
  }

  TEST_CASE("OrthConv gradient: finite differences (f64) for s=2,p=1 and s=1,p=1") {
    for (const int64_t stride : {2, 1})
      gradcheck([stride](const std::vector<Tensor>& in) { return prune::orthconv_loss(in[0], stride, 1); },
                {random_input({3, 2, 3, 3}, 41)});
  }

  TEST_CASE("KernOrth and OrthConv values and gradients match PyTorch (fixture)") {
    const testing::Fixture fx("orth.safetensors");
    const testing::Tolerance tol{.rtol = 1e-5, .atol = 1e-6};
    for (const char* name : {"wide_conv", "tall_linear", "square_linear", "pointwise_conv"}) {
      const std::string key = std::string("kernorth.") + name;
      Tensor w = fx[key + ".weight"].to(DType::f64).clone();
      w.set_requires_grad();
      const Tensor loss = prune::kernorth_loss(w);
      loss.backward();
      testing::check_close(loss, fx[key + ".loss"], key + ".loss", tol);
      testing::check_close(w.grad(), fx[key + ".grad_weight"], key + ".grad_weight", tol);
    }
    for (const char* name : {"k3_s2_p1", "k3_s1_p1", "k5_s2_p1"}) {
      const std::string key = std::string("orthconv.") + name;
      const auto opts = fx.options(key);
      Tensor w = fx[key + ".weight"].to(DType::f64).clone();
      w.set_requires_grad();
      const Tensor loss = prune::orthconv_loss(w, opts["stride"].get<int64_t>(), opts["padding"].get<int64_t>());
      loss.backward();
      testing::check_close(loss, fx[key + ".loss"], key + ".loss", tol);
      testing::check_close(w.grad(), fx[key + ".grad_weight"], key + ".grad_weight", tol);
    }
  }

  TEST_CASE(
      "orth_regularization: CVPR17 sums KernOrth over every layer, CVPR20 skips the first and uses OrthConv on k×k") {
    manual_seed(9);
    models::Sequential net;
    auto stem = net.add(std::make_shared<models::Conv2d>(
        models::Conv2dSpec{.in_channels = 3, .out_channels = 4, .kernel_size = 3, .padding = 1}));
    auto pointwise = net.add(
        std::make_shared<models::Conv2d>(models::Conv2dSpec{.in_channels = 4, .out_channels = 6, .kernel_size = 1}));
    auto conv = net.add(std::make_shared<models::Conv2d>(
        models::Conv2dSpec{.in_channels = 6, .out_channels = 5, .kernel_size = 3, .stride = 1}));
    net.add(std::make_shared<models::GlobalAvgPool2d>());
    auto fc = net.add(std::make_shared<models::Linear>(5, 3));

    const double kernorth_sum = prune::kernorth_loss(stem->weight).item() +
                                prune::kernorth_loss(pointwise->weight).item() +
                                prune::kernorth_loss(conv->weight).item() + prune::kernorth_loss(fc->weight).item();
    const double orthconv_sum = prune::kernorth_loss(pointwise->weight).item() +
                                prune::orthconv_loss(conv->weight, 2, 1).item() +
                                prune::kernorth_loss(fc->weight).item();
    CHECK(prune::orth_regularization(net, prune::OrthRegMethod::kernorth).item() ==
          doctest::Approx(kernorth_sum).epsilon(1e-6));
    const Tensor reg = prune::orth_regularization(net, prune::OrthRegMethod::orthconv);
    CHECK(reg.item() == doctest::Approx(orthconv_sum).epsilon(1e-6));

    net.zero_grad();
    reg.backward();
    CHECK_FALSE(stem->weight.grad().defined());  // skipped: no gradient reaches it
    for (const Tensor& w : {pointwise->weight, conv->weight, fc->weight}) {
      REQUIRE(w.grad().defined());
      double grad_mass = 0;
      for (const float g : w.grad().to_vector<float>()) grad_mass += std::abs(g);
      CHECK(grad_mass > 0);
    }
    CHECK(prune::parse_orth_reg_method("CVPR17") == prune::OrthRegMethod::kernorth);
    CHECK(prune::parse_orth_reg_method("orthconv") == prune::OrthRegMethod::orthconv);
  }

  TEST_CASE("orth: bad input gives one line naming the op and the shape") {
    CHECK_THROWS_WITH(prune::kernorth_loss(zeros({5})),
                      "kernorth_loss: expected a non-empty floating 2- to 4-d weight, got f32 [5]");
    CHECK_THROWS_WITH(prune::orthconv_loss(zeros({4, 3})),
                      "orthconv_loss: expected a non-empty floating 4-d weight, got f32 [4, 3]");
    CHECK_THROWS_WITH(prune::parse_orth_reg_method("CVPR18"),
                      "orth_regularization: unknown method 'CVPR18' (expected CVPR17 / kernorth or CVPR20 / orthconv)");
  }
}
