#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "engine/init.h"
#include "engine/philox.h"
#include "engine/tensor.h"

using namespace tpp;

namespace {
struct Moments {
  double mean, std;
};
Moments moments(const Tensor& t) {
  const std::vector<double> v = t.to_vector<double>();
  double s = 0, s2 = 0;
  for (double x : v) s += x, s2 += x * x;
  const double mean = s / static_cast<double>(v.size());
  return {mean, std::sqrt(s2 / static_cast<double>(v.size()) - mean * mean)};
}
}  // namespace

TEST_SUITE("random") {
  TEST_CASE("the same seed gives the same numbers, another seed does not") {
    Generator a(7), b(7), c(8);
    CHECK(randn({100}, {}, &a).to_vector<float>() == randn({100}, {}, &b).to_vector<float>());
    CHECK(rand({100}, {}, &a).to_vector<float>() != rand({100}, {}, &c).to_vector<float>());
  }

  TEST_CASE("consecutive draws continue the stream instead of repeating it") {
    Generator g(3);
    const auto first = rand({8}, {}, &g).to_vector<float>();
    const auto second = rand({8}, {}, &g).to_vector<float>();
    CHECK(first != second);
    CHECK(g.offset() == 4);  // two fills of 8 values, 4 per block
  }

  TEST_CASE("manual_seed resets the default generator") {
    manual_seed(42);
    const auto a = rand({5}).to_vector<float>();
    manual_seed(42);
    CHECK(rand({5}).to_vector<float>() == a);
  }

  TEST_CASE("uniform numbers lie in range with the right moments") {
    Generator g(1);
    const Tensor u = uniform({100000}, -2, 4, {}, &g);
    const auto v = u.to_vector<float>();
    CHECK(*std::min_element(v.begin(), v.end()) >= -2);
    CHECK(*std::max_element(v.begin(), v.end()) < 4);
    const Moments m = moments(u);
    CHECK(m.mean == doctest::Approx(1).epsilon(0.01));
    CHECK(m.std == doctest::Approx(6 / std::sqrt(12.0)).epsilon(0.01));
  }

  TEST_CASE("normal numbers have mean 0 and std 1, in f32 and f64") {
    Generator g(2);
    for (const DType dt : {DType::f32, DType::f64}) {
      const Moments m = moments(randn({200000}, {.dtype = dt}, &g));
      CHECK(std::abs(m.mean) < 0.01);
      CHECK(m.std == doctest::Approx(1).epsilon(0.01));
    }
  }

  TEST_CASE("randint covers its range and nothing outside it") {
    Generator g(5);
    const auto v = randint({10000}, 3, 7, &g).to_vector<int64_t>();
    for (int64_t k = 3; k < 7; ++k) CHECK(std::count(v.begin(), v.end(), k) > 2300);
    CHECK(std::count_if(v.begin(), v.end(), [](int64_t x) { return x < 3 || x >= 7; }) == 0);
  }

  TEST_CASE("kaiming and xavier initialisers follow PyTorch's scale") {
    Generator g(9);
    Tensor conv = empty({64, 32, 3, 3});  // fan_in 288, fan_out 576
    kaiming_normal_(conv, FanMode::fan_in, "relu", &g);
    CHECK(moments(conv).std == doctest::Approx(std::sqrt(2.0 / 288)).epsilon(0.03));
    kaiming_normal_(conv, FanMode::fan_out, "relu", &g);
    CHECK(moments(conv).std == doctest::Approx(std::sqrt(2.0 / 576)).epsilon(0.03));
    Tensor fc = empty({100, 400});
    kaiming_uniform_(fc, std::sqrt(5.0), FanMode::fan_in, "leaky_relu", &g);  // nn.Linear default: U(±1/sqrt(in))
    const auto v = fc.to_vector<float>();
    CHECK(*std::max_element(v.begin(), v.end()) <= 1 / std::sqrt(400.0));
    CHECK(*std::max_element(v.begin(), v.end()) > 0.99 / std::sqrt(400.0));
    xavier_uniform_(fc, 1, &g);
    CHECK(moments(fc).std == doctest::Approx(std::sqrt(2.0 / 500)).epsilon(0.03));
    xavier_normal_(fc, 1, &g);
    CHECK(moments(fc).std == doctest::Approx(std::sqrt(2.0 / 500)).epsilon(0.03));
  }

  TEST_CASE("initialisers refuse 1-d weights and unknown nonlinearities") {
    Tensor b = empty({10});
    CHECK_THROWS_WITH(kaiming_normal_(b), "init: fan in/out needs a weight of at least 2 dims, got [10]");
    Tensor w = empty({2, 2});
    CHECK_THROWS_WITH(kaiming_normal_(w, FanMode::fan_in, "swish"), "init: unknown nonlinearity 'swish'");
  }
}
