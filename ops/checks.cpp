#include "ops/checks.h"

namespace tpp::ops {

void check_same_dtype_device(std::string_view op, const Tensor& a, const Tensor& b) {
  TPP_CHECK(a.dtype() == b.dtype(), "{}: dtype mismatch: {} with shape {} and {} with shape {}", op,
            dtype_name(a.dtype()), shape_str(a.sizes()), dtype_name(b.dtype()), shape_str(b.sizes()));
  TPP_CHECK(a.device() == b.device(), "{}: device mismatch: {} (shape {}) and {} (shape {})", op, a.device().str(),
            shape_str(a.sizes()), b.device().str(), shape_str(b.sizes()));
}

void check_floating(std::string_view op, const Tensor& t) {
  TPP_CHECK(is_floating(t.dtype()), "{}: expected a floating tensor (f32 or f64) but got {} with shape {}", op,
            dtype_name(t.dtype()), shape_str(t.sizes()));
}

void check_dim(std::string_view op, std::string_view what, const Tensor& t, int64_t ndim) {
  TPP_CHECK(t.dim() == ndim, "{}: expected {} to be {}-d but got shape {}", op, what, ndim, shape_str(t.sizes()));
}

Shape broadcast_shapes(std::string_view op, const Shape& a, const Shape& b) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    TPP_CHECK(da == db || da == 1 || db == 1, "{}: shapes {} and {} cannot be broadcast together", op,
              shape_str(a), shape_str(b));
    out[i] = da == 1 ? db : da;
  }
  return out;
}

}  // namespace tpp::ops
