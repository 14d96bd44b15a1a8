// Finite-difference gradient checks in f64 (central differences). The scalar
// checked is L = <f(inputs), R> for a fixed random R, so every element of
// every input gradient is compared with (L(x+e) - L(x-e)) / 2e.
//
// Kinks (relu at 0, ties in max): where the one-sided differences disagree,
// the function is not differentiable within eps of that point; such elements
// are skipped and counted, and a check fails if more than `max_kink_fraction`
// of an input's elements are skipped.
#pragma once

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cmath>
#include <functional>
#include <vector>

#include "engine/autograd.h"
#include "engine/philox.h"
#include "engine/tensor.h"

namespace tpp::testing {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-6;
  double rtol = 1e-5;
  double max_kink_fraction = 0.1;
};

using TensorFn = std::function<Tensor(const std::vector<Tensor>&)>;

inline double dot_with(const Tensor& y, const Tensor& r) {
  const std::vector<double> a = y.to_vector<double>(), b = r.to_vector<double>();
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Checks every input that requires grad. Inputs must be f64.
inline void gradcheck(const TensorFn& f, std::vector<Tensor> inputs, GradcheckOptions opt = {}) {
  Generator gen(1234);
  const Tensor y = f(inputs);
  REQUIRE(y.requires_grad());
  const Tensor r = randn(y.sizes(), {.dtype = DType::f64}, &gen);
  for (Tensor& x : inputs)
    if (x.defined() && x.requires_grad()) x.set_grad(Tensor());
  y.backward(r);

  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor& x = inputs[k];
    if (!x.defined() || !x.requires_grad()) continue;
    REQUIRE(x.dtype() == DType::f64);
    REQUIRE(x.is_contiguous());
    const Tensor analytic = x.grad();
    REQUIRE_MESSAGE(analytic.defined(), "input ", k, " got no gradient");
    const std::vector<double> ana = analytic.to_vector<double>();
    double* px = x.data<double>();
    int64_t kinks = 0, bad = 0;
    std::string first_bad;
    NoGradGuard no_grad;
    const double base = dot_with(f(inputs), r);
    for (int64_t i = 0; i < x.numel(); ++i) {
      const double saved = px[i];
      px[i] = saved + opt.eps;
      const double plus = dot_with(f(inputs), r);
      px[i] = saved - opt.eps;
      const double minus = dot_with(f(inputs), r);
      px[i] = saved;
      const double numeric = (plus - minus) / (2 * opt.eps);
      const double forward = (plus - base) / opt.eps, backward = (base - minus) / opt.eps;
      const double tol = opt.atol + opt.rtol * std::abs(numeric);
      if (std::abs(forward - backward) > 1e3 * tol + 1e-4 * std::abs(numeric)) {
        ++kinks;
        continue;
      }
      if (std::abs(numeric - ana[i]) > tol) {
        if (bad++ == 0)
          first_bad = fmt::format("input {} element {}: analytic {:.10g} numeric {:.10g}", k, i, ana[i], numeric);
      }
    }
    CHECK_MESSAGE(bad == 0, bad, " mismatching elements; first: ", first_bad);
    CHECK_MESSAGE(static_cast<double>(kinks) <= opt.max_kink_fraction * static_cast<double>(x.numel()), kinks,
                  " of ", x.numel(), " elements of input ", k, " sit on kinks");
  }
}

// A random f64 leaf that requires grad.
inline Tensor random_input(const Shape& shape, uint64_t seed, double low = -1, double high = 1) {
  Generator gen(seed);
  Tensor t = uniform(shape, low, high, {.dtype = DType::f64}, &gen);
  t.set_requires_grad(true);
  return t;
}

}  // namespace tpp::testing
