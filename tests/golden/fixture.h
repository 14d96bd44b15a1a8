// Golden fixtures from PyTorch (scripts/make_fixtures.py): loading a file from
// TPP_FIXTURE_DIR and comparing our tensors with its references.
//
// check_close() passes when every element satisfies |actual - expected| <=
// atol + rtol * |expected| (as torch.allclose) and on failure reports the max
// absolute difference, where it is, and how many elements are out. Set
// TPP_GOLDEN_REPORT=1 to print the max difference of every comparison.
#pragma once

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/safetensors.h"
#include "engine/tensor.h"

namespace tpp::testing {

struct Tolerance {
  double rtol = 1e-4;
  double atol = 1e-5;
};

class Fixture {
 public:
  explicit Fixture(const std::string& file_name)
      : file_name_(file_name), file_(load_safetensors(std::filesystem::path(TPP_FIXTURE_DIR) / file_name)) {}

  // The stored tensor (shared with the fixture: do not modify it).
  const Tensor& operator[](const std::string& name) const {
    const auto it = file_.tensors.find(name);
    if (it == file_.tensors.end())
      FAIL(fmt::format("fixture {} has no tensor '{}'; rerun scripts/make_fixtures.py?", file_name_, name));
    return it->second;
  }

  // A fresh leaf holding a copy of the stored tensor, recording gradients.
  Tensor leaf(const std::string& name) const {
    Tensor t = (*this)[name].clone();
    t.set_requires_grad();
    return t;
  }

  bool has(const std::string& name) const { return file_.tensors.contains(name); }

  // The case's options, stored by the generator as JSON in "options.<case>".
  nlohmann::json options(const std::string& case_name) const {
    const auto it = file_.metadata.find("options." + case_name);
    if (it == file_.metadata.end()) FAIL(fmt::format("fixture {} has no options for case '{}'", file_name_, case_name));
    return nlohmann::json::parse(it->second);
  }

 private:
  std::string file_name_;
  SafetensorsFile file_;
};

struct Difference {
  double max_abs = 0;     // largest |actual - expected|
  int64_t worst = -1;     // flat index of that element
  int64_t outside = 0;    // elements beyond the tolerance
  double tolerance_used = 0;  // max over elements of |actual - expected| / (atol + rtol * |expected|)
};

inline Difference difference(const std::vector<double>& actual, const std::vector<double>& expected, Tolerance tol) {
  Difference d;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double diff = std::isnan(actual[i] - expected[i]) ? INFINITY : std::abs(actual[i] - expected[i]);
    const double allowed = tol.atol + tol.rtol * std::abs(expected[i]);
    if (diff > allowed) ++d.outside;
    d.tolerance_used = std::max(d.tolerance_used, allowed > 0 ? diff / allowed : (diff > 0 ? INFINITY : 0.0));
    if (d.worst < 0 || diff > d.max_abs) {
      d.max_abs = diff;
      d.worst = static_cast<int64_t>(i);
    }
  }
  return d;
}

// Checks shape and values of `actual` against the reference `expected`;
// returns whether it passed.
inline bool check_close(const Tensor& actual, const Tensor& expected, const std::string& what, Tolerance tol = {}) {
  const bool same_shape = actual.defined() && actual.sizes() == expected.sizes();
  CHECK_MESSAGE(same_shape, fmt::format("{}: shape {} but PyTorch has {}", what,
                                        actual.defined() ? shape_str(actual.sizes()) : "(undefined tensor)",
                                        shape_str(expected.sizes())));
  if (!same_shape) return false;
  const std::vector<double> a = actual.to_vector<double>(), e = expected.to_vector<double>();
  const Difference d = difference(a, e, tol);
  if (std::getenv("TPP_GOLDEN_REPORT"))
    fmt::print("golden {:<44} max abs diff {:.2e}  uses {:5.1f}% of tolerance (rtol {:g}, atol {:g})\n", what,
               d.max_abs, 100 * d.tolerance_used, tol.rtol, tol.atol);
  std::string failure;
  if (d.outside > 0) {
    const auto first = [](const std::vector<double>& v) {
      return std::vector<double>(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(std::min<size_t>(v.size(), 6)));
    };
    failure = fmt::format(
        "{}: {} of {} elements differ from PyTorch beyond rtol {:g} atol {:g}; max abs diff {:.3e} at flat index {} "
        "(ours {:.8g}, PyTorch {:.8g}); first values ours {:.6g} PyTorch {:.6g}",
        what, d.outside, a.size(), tol.rtol, tol.atol, d.max_abs, d.worst, a[d.worst], e[d.worst],
        fmt::join(first(a), ", "), fmt::join(first(e), ", "));
  }
  CHECK_MESSAGE(d.outside == 0, failure);
  return d.outside == 0;
}

}  // namespace tpp::testing
