#include <doctest/doctest.h>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "ops/batch_norm.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "tests/gradcheck.h"

using namespace tpp;
using tpp::testing::gradcheck;
using tpp::testing::random_input;

namespace {

// x [2, 2, 2, 2]: channel 0 holds {0.5, -1, 2, 3.5, -0.5, 1.5, 2.5, 0.25},
// channel 1 holds {1, 0, -2, 4, 3, -1.5, 0.75, 1.25}.
const std::vector<double> kValues{0.5, -1.0, 2.0, 3.5, 1.0, 0.0, -2.0, 4.0, -0.5, 1.5, 2.5, 0.25, 3.0, -1.5, 0.75, 1.25};

std::vector<double> channel_values(int64_t c) {
  std::vector<double> v;
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t i = 0; i < 4; ++i) v.push_back(kValues[(n * 2 + c) * 4 + i]);
  return v;
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (const double x : v) s += x;
  return s / static_cast<double>(v.size());
}

double sum_sq_dev(const std::vector<double>& v) {
  const double m = mean_of(v);
  double s = 0;
  for (const double x : v) s += (x - m) * (x - m);
  return s;
}

Tensor f64(std::initializer_list<double> v) { return from_vector<double>(v, {static_cast<int64_t>(v.size())}); }

}  // namespace

TEST_SUITE("batch_norm") {
  TEST_CASE("training normalises each channel with the biased batch variance") {
    const Tensor x = from_vector<double>(kValues, {2, 2, 2, 2});
    const Tensor y = ops::batch_norm2d(x, f64({1.5, 0.5}), f64({0.1, -0.2}), {}, {});
    const std::vector<double> out = y.to_vector<double>();
    const std::vector<double> w{1.5, 0.5}, b{0.1, -0.2};
    for (int64_t c = 0; c < 2; ++c) {
      const std::vector<double> v = channel_values(c);
      const double mean = mean_of(v), var = sum_sq_dev(v) / 8;
      for (int64_t n = 0; n < 2; ++n)
        for (int64_t i = 0; i < 4; ++i) {
          const int64_t k = (n * 2 + c) * 4 + i;
          CHECK(out[k] == doctest::Approx((kValues[k] - mean) / std::sqrt(var + 1e-5) * w[c] + b[c]).epsilon(1e-12));
        }
    }
  }

  TEST_CASE("training updates running stats with momentum and the unbiased variance") {
    const Tensor x = from_vector<double>(kValues, {2, 2, 2, 2});
    const Tensor running_mean = f64({0.2, -0.1}), running_var = f64({1.5, 0.5});
    ops::batch_norm2d(x, {}, {}, running_mean, running_var);
    for (int64_t c = 0; c < 2; ++c) {
      const std::vector<double> v = channel_values(c);
      const double start_mean = c == 0 ? 0.2 : -0.1, start_var = c == 0 ? 1.5 : 0.5;
      CHECK(running_mean.to_vector<double>()[c] == doctest::Approx(0.9 * start_mean + 0.1 * mean_of(v)).epsilon(1e-14));
      CHECK(running_var.to_vector<double>()[c] ==
            doctest::Approx(0.9 * start_var + 0.1 * sum_sq_dev(v) / 7).epsilon(1e-14));
    }
    // The same step in PyTorch 1.13: F.batch_norm(x, rm, rv, training=True,
    // momentum=0.1, eps=1e-5) on this x in float64, printed with rm.tolist().
    CHECK(running_mean.to_vector<double>()[0] == doctest::Approx(0.28937500000000005).epsilon(1e-14));
    CHECK(running_mean.to_vector<double>()[1] == doctest::Approx(-0.008750000000000008).epsilon(1e-14));
    CHECK(running_var.to_vector<double>()[0] == doctest::Approx(1.5891741071428573).epsilon(1e-14));
    CHECK(running_var.to_vector<double>()[1] == doctest::Approx(0.8656250000000001).epsilon(1e-14));
  }

  TEST_CASE("a custom momentum weights the batch statistic") {
    const Tensor x = from_vector<float>({1, 2, 3, 4}, {2, 1, 1, 2});  // mean 2.5, unbiased var 5/3
    const Tensor running_mean = zeros({1}), running_var = ones({1});
    ops::batch_norm2d(x, {}, {}, running_mean, running_var, {.momentum = 0.5});
    CHECK(running_mean.item() == doctest::Approx(1.25));
    CHECK(running_var.item() == doctest::Approx(0.5 + 0.5 * 5.0 / 3.0));
  }

  TEST_CASE("eval normalises with the running stats and leaves them alone") {
    const Tensor x = from_vector<double>({1, 2, 3, 4}, {1, 2, 1, 2});
    const Tensor running_mean = f64({1, -1}), running_var = f64({4, 0.25});
    const Tensor y = ops::batch_norm2d(x, f64({2, 1}), f64({0, 1}), running_mean, running_var, {.training = false});
    const double s0 = 2 / std::sqrt(4 + 1e-5), s1 = 1 / std::sqrt(0.25 + 1e-5);
    const std::vector<double> out = y.to_vector<double>();
    CHECK(out[0] == doctest::Approx(0 * s0));
    CHECK(out[1] == doctest::Approx(1 * s0));
    CHECK(out[2] == doctest::Approx(4 * s1 + 1));
    CHECK(out[3] == doctest::Approx(5 * s1 + 1));
    CHECK(running_mean.to_vector<double>() == std::vector<double>{1, -1});
    CHECK(running_var.to_vector<double>() == std::vector<double>{4, 0.25});
  }

  TEST_CASE("eval without running stats uses the batch statistics, as PyTorch") {
    const Tensor x = random_input({3, 2, 2, 2}, 21).detach();
    const Tensor train = ops::batch_norm2d(x, {}, {}, {}, {});
    const Tensor eval = ops::batch_norm2d(x, {}, {}, {}, {}, {.training = false});
    CHECK(eval.to_vector<double>() == train.to_vector<double>());
  }

  TEST_CASE("f32 agrees with f64, also when the mean is far from zero") {
    Generator gen(5);
    const Tensor x64 = randn({4, 8, 6, 6}, {.dtype = DType::f64}, &gen) * 0.5 + 1000.0;
    const Tensor w = random_input({8}, 1).detach(), b = random_input({8}, 2).detach();
    const Tensor y64 = ops::batch_norm2d(x64, w, b, {}, {});
    const Tensor y32 = ops::batch_norm2d(x64.to(DType::f32), w.to(DType::f32), b.to(DType::f32), {}, {});
    const std::vector<double> a = y64.to_vector<double>(), c = y32.to_vector<double>();
    double worst = 0;
    for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - c[i]));
    CHECK(worst < 2e-3);  // inputs near 1000 carry f32 rounding of ~6e-5 relative to a spread of 0.5
  }

  TEST_CASE("backward in training gives zero-mean dx when weight is constant") {
    // sum over a channel of dx is 0: shifting x by a constant changes nothing.
    Tensor x = random_input({2, 3, 2, 2}, 22);
    const Tensor y = ops::batch_norm2d(x, {}, {}, {}, {});
    y.backward(random_input({2, 3, 2, 2}, 23).detach());
    const std::vector<double> per_channel = ops::sum(x.grad(), {0, 2, 3}).to_vector<double>();
    for (const double s : per_channel) CHECK(s == doctest::Approx(0).epsilon(1e-12).scale(1));
  }

  TEST_CASE("gradcheck: training mode, dx dweight dbias, with running stats") {
    const Tensor x = random_input({3, 2, 3, 2}, 24), w = random_input({2}, 25), b = random_input({2}, 26);
    const Tensor running_mean = zeros({2}, {.dtype = DType::f64}), running_var = ones({2}, {.dtype = DType::f64});
    gradcheck([&](const auto& in) { return ops::batch_norm2d(in[0], in[1], in[2], running_mean, running_var); },
              {x, w, b});
  }

  TEST_CASE("gradcheck: training mode without affine parameters") {
    gradcheck([](const auto& in) { return ops::batch_norm2d(in[0], {}, {}, {}, {}); },
              {random_input({2, 3, 2, 2}, 27)});
  }

  TEST_CASE("gradcheck: eval mode") {
    const Tensor x = random_input({2, 3, 2, 3}, 28), w = random_input({3}, 29), b = random_input({3}, 30);
    const Tensor running_mean = f64({0.1, -0.3, 0.5}), running_var = f64({0.8, 1.7, 0.4});
    gradcheck(
        [&](const auto& in) {
          return ops::batch_norm2d(in[0], in[1], in[2], running_mean, running_var, {.training = false});
        },
        {x, w, b});
  }

  TEST_CASE("only the inputs that require grad get gradients") {
    Tensor x = random_input({2, 2, 2, 2}, 31);
    const Tensor w = f64({1, 2}), b = random_input({2}, 32);
    ops::sum(ops::batch_norm2d(x, w, b, {}, {})).backward();
    CHECK(x.grad().defined());
    CHECK(b.grad().to_vector<double>() == std::vector<double>{8, 8});
    CHECK_FALSE(w.grad().defined());
  }

  TEST_CASE("batch_norm2d_relu gives relu(batch_norm2d) bit for bit in f32, gradients included, NaN as relu") {
    // The same arithmetic with the ReLU inside batch norm's passes: every
    // output and gradient must be identical, in training (large enough for
    // the parallel path) and in eval mode.
    for (const bool training : {true, false}) {
      Generator gen(training ? 40 : 41);
      Tensor x = randn({4, 3, 9, 9}, {}, &gen);
      x.select(0, 1).select(0, 2).select(0, 4).fill_(std::nan(""));  // one row of channel 2 NaN: its mean too
      const Tensor dy = randn({4, 3, 9, 9}, {}, &gen);
      struct Run {
        Tensor y, dx, dw, db, running_mean;
      };
      const auto run = [&](bool fused) {
        Tensor xl = x.detach().set_requires_grad(), w = randn({3}, {}, &gen).set_requires_grad(),
               b = randn({3}, {}, &gen).set_requires_grad();
        const Tensor running_mean = zeros({3}), running_var = ones({3});
        const ops::BatchNormOptions o{.training = training};
        const Tensor y = fused ? ops::batch_norm2d_relu(xl, w, b, running_mean, running_var, o)
                               : ops::relu(ops::batch_norm2d(xl, w, b, running_mean, running_var, o));
        y.backward(dy);
        return Run{y.detach(), xl.grad(), w.grad(), b.grad(), running_mean};
      };
      gen = Generator(42);
      const Run unfused = run(false);
      gen = Generator(42);
      const Run fused = run(true);
      const auto same_bits = [](const Tensor& a, const Tensor& b) {
        const std::vector<float> u = a.to_vector<float>(), v = b.to_vector<float>();
        if (u.size() != v.size()) return false;
        for (size_t i = 0; i < u.size(); ++i)
          if (std::memcmp(&u[i], &v[i], sizeof(float)) != 0) return false;
        return true;
      };
      CAPTURE(training);
      CHECK(same_bits(fused.y, unfused.y));
      CHECK(same_bits(fused.dx, unfused.dx));
      CHECK(same_bits(fused.dw, unfused.dw));
      CHECK(same_bits(fused.db, unfused.db));
      CHECK(same_bits(fused.running_mean, unfused.running_mean));
      CHECK(ops::max(ops::neg(fused.y.select(1, 0))).item() <= 0);  // no negative output (channel 0 has no NaN)
    }
  }

  TEST_CASE("gradcheck: batch_norm2d_relu in training and eval mode") {
    const Tensor x = random_input({3, 2, 3, 2}, 43), w = random_input({2}, 44), b = random_input({2}, 45);
    const Tensor running_mean = f64({0.1, -0.3}), running_var = f64({0.8, 1.7});
    for (const bool training : {true, false})
      gradcheck(
          [&](const auto& in) {
            return ops::batch_norm2d_relu(in[0], in[1], in[2], running_mean.clone(), running_var.clone(),
                                          {.training = training});
          },
          {x, w, b});
  }

  TEST_CASE("x must be 4-d") {
    CHECK_THROWS_WITH(ops::batch_norm2d(zeros({2, 3, 4}), {}, {}, {}, {}),
                      "batch_norm2d: expected x to be 4-d but got shape [2, 3, 4]");
  }

  TEST_CASE("parameters must have one entry per channel") {
    const Tensor x = zeros({2, 3, 4, 4});
    CHECK_THROWS_WITH(ops::batch_norm2d(x, zeros({4}), {}, {}, {}),
                      "batch_norm2d: weight of shape [4] does not match the 3 channels of x with shape [2, 3, 4, 4]");
    CHECK_THROWS_WITH(ops::batch_norm2d(x, {}, zeros({3, 1}), {}, {}),
                      "batch_norm2d: bias of shape [3, 1] does not match the 3 channels of x with shape [2, 3, 4, 4]");
    CHECK_THROWS_WITH(ops::batch_norm2d(x, {}, {}, zeros({2}), ones({3})),
                      "batch_norm2d: running_mean of shape [2] does not match the 3 channels of x with shape [2, 3, "
                      "4, 4]");
  }

  TEST_CASE("running stats come in pairs") {
    CHECK_THROWS_WITH(ops::batch_norm2d(zeros({2, 3, 4, 4}), {}, {}, zeros({3}), {}),
                      "batch_norm2d: running_mean and running_var must both be given or both be undefined (x has "
                      "shape [2, 3, 4, 4])");
  }

  TEST_CASE("training needs more than one value per channel") {
    CHECK_THROWS_WITH(ops::batch_norm2d(zeros({1, 3, 1, 1}), {}, {}, {}, {}),
                      "batch_norm2d: expected more than 1 value per channel when training but got x of shape [1, 3, 1, "
                      "1]");
  }

  TEST_CASE("parameter dtype must match x") {
    CHECK_THROWS_WITH(ops::batch_norm2d(zeros({2, 3, 4, 4}), zeros({3}, {.dtype = DType::f64}), {}, {}, {}),
                      "batch_norm2d: dtype mismatch: f32 with shape [2, 3, 4, 4] and f64 with shape [3]");
  }

  TEST_CASE("f32 training keeps the digits of a mean that is large against the spread") {
    // x = 1000 and 1000 + 2^-14: the f32 mean 1000 + 2^-15 is not representable.
    const double d = std::ldexp(1.0, -15), var = d * d;
    const double expected = d / std::sqrt(var + 1e-5);
    const Tensor x = from_vector<float>({1000.0f, 1000.0f + std::ldexp(1.0f, -14)}, {1, 1, 1, 2});
    const std::vector<float> y = ops::batch_norm2d(x, {}, {}, {}, {}).to_vector<float>();
    CHECK(y[0] == doctest::Approx(-expected).epsilon(1e-4));
    CHECK(y[1] == doctest::Approx(expected).epsilon(1e-4));
  }

  TEST_CASE("f32 training on 1000 + 0.01 N(0, 1) agrees with f64 in output and input gradient") {
    Generator gen(7);
    const Tensor x64 = ops::add(ops::mul(randn({2, 3, 4, 4}, {.dtype = DType::f64}, &gen), 0.01), 1000.0)
                           .to(DType::f32).to(DType::f64);  // values exact in f32
    const Tensor dy64 = randn({2, 3, 4, 4}, {.dtype = DType::f64}, &gen);
    const Tensor x32 = x64.to(DType::f32).set_requires_grad(), x64_leaf = x64.detach().set_requires_grad();
    const Tensor y32 = ops::batch_norm2d(x32, {}, {}, {}, {});
    const Tensor y64 = ops::batch_norm2d(x64_leaf, {}, {}, {}, {});
    y32.backward(dy64.to(DType::f32));
    y64.backward(dy64);
    const auto max_diff = [](const Tensor& a, const Tensor& b) {
      const std::vector<double> u = a.to(DType::f64).to_vector<double>(), v = b.to_vector<double>();
      double m = 0;
      for (size_t i = 0; i < u.size(); ++i) m = std::max(m, std::abs(u[i] - v[i]));
      return m;
    };
    CHECK(max_diff(y32, y64) < 1e-4);
    CHECK(max_diff(x32.grad(), x64_leaf.grad()) < 1e-2 * 1e-2);  // the gradient scales with 1 / spread
  }

  // Large enough to run in parallel over image-channel blocks (the small
  // cases above stay on one thread); one channel, as in a pruned layer. The
  // reference is the textbook formula in plain f64 loops, not our kernel.
  TEST_CASE("f32 training batch norm gives the same bits on one thread and on two, and the formula's values") {
    for (const Shape& shape : {Shape{8, 1, 32, 32}, Shape{8, 3, 16, 16}}) {
      CAPTURE(shape_str(shape));
      const int64_t n = shape[0], channels = shape[1], hw = shape[2] * shape[3];
      const Tensor x64 = random_input(shape, 41, -2, 3).detach(), dy64 = random_input(shape, 42).detach();
      const Tensor w64 = random_input({channels}, 43).detach(), b64 = random_input({channels}, 44).detach();
      const auto run = [&](int threads) {
        const int before = omp_get_max_threads();
        omp_set_num_threads(threads);
        Tensor x = x64.to(DType::f32), w = w64.to(DType::f32), b = b64.to(DType::f32);
        x.set_requires_grad(true);
        w.set_requires_grad(true);
        b.set_requires_grad(true);
        const Tensor y = ops::batch_norm2d(x, w, b, Tensor(), Tensor(), {.training = true});
        y.backward(dy64.to(DType::f32));
        omp_set_num_threads(before);
        return std::vector<std::vector<float>>{y.to_vector<float>(), x.grad().to_vector<float>(),
                                               w.grad().to_vector<float>(), b.grad().to_vector<float>()};
      };
      const auto one = run(1), two = run(2);
      for (size_t i = 0; i < one.size(); ++i) CHECK(one[i] == two[i]);

      const std::vector<double> x = x64.to_vector<double>(), dy = dy64.to_vector<double>(),
                                w = w64.to_vector<double>(), b = b64.to_vector<double>();
      std::vector<double> y(x.size()), dx(x.size()), dw(channels), db(channels);
      const double m = static_cast<double>(n * hw);
      for (int64_t c = 0; c < channels; ++c) {
        const auto at = [&](int64_t image, int64_t i) { return (image * channels + c) * hw + i; };
        double mean = 0, var = 0, sum_dy = 0, sum_dy_xhat = 0;
        for (int64_t image = 0; image < n; ++image)
          for (int64_t i = 0; i < hw; ++i) mean += x[at(image, i)] / m;
        for (int64_t image = 0; image < n; ++image)
          for (int64_t i = 0; i < hw; ++i) var += (x[at(image, i)] - mean) * (x[at(image, i)] - mean) / m;
        const double invstd = 1 / std::sqrt(var + 1e-5);
        for (int64_t image = 0; image < n; ++image)
          for (int64_t i = 0; i < hw; ++i) {
            const double xhat = (x[at(image, i)] - mean) * invstd;
            y[at(image, i)] = xhat * w[c] + b[c];
            sum_dy += dy[at(image, i)];
            sum_dy_xhat += dy[at(image, i)] * xhat;
          }
        for (int64_t image = 0; image < n; ++image)
          for (int64_t i = 0; i < hw; ++i) {
            const double xhat = (x[at(image, i)] - mean) * invstd;
            dx[at(image, i)] = w[c] * invstd * (dy[at(image, i)] - (sum_dy + xhat * sum_dy_xhat) / m);
          }
        dw[c] = sum_dy_xhat;
        db[c] = sum_dy;
      }
      const std::vector<std::vector<double>> want{y, dx, dw, db};
      for (size_t i = 0; i < want.size(); ++i) {
        CAPTURE(i);
        double worst = 0, scale = 1;
        for (size_t k = 0; k < want[i].size(); ++k) {
          worst = std::max(worst, std::abs(one[i][k] - want[i][k]));
          scale = std::max(scale, std::abs(want[i][k]));
        }
        CHECK(worst <= 2e-5 * scale);
      }
    }
  }
}
