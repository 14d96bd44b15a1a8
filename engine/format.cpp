#include "engine/format.h"

namespace tpp {

namespace {

constexpr int64_t kEdgeItems = 3;  // shown at each end of a long dim

void append_values(std::string& out, const Tensor& t, int64_t depth, int64_t offset) {
  const int64_t n = t.sizes()[depth];
  const bool abridged = n > 2 * kEdgeItems;
  out += '[';
  for (int64_t i = 0; i < n; ++i) {
    if (abridged && i == kEdgeItems) {
      out += "..., ";
      i = n - kEdgeItems;
    }
    const int64_t at = offset + i * t.strides()[depth];
    if (depth + 1 < t.dim()) {
      append_values(out, t, depth + 1, at);
    } else {
      dispatch_all(t.dtype(), [&](auto type) {
        using T = decltype(type);
        const T v = static_cast<const T*>(t.storage()->data())[at];
        if constexpr (std::is_floating_point_v<T>)
          out += fmt::format("{:.6g}", v);
        else
          out += fmt::format("{}", static_cast<int64_t>(v));
      });
    }
    if (i + 1 < n) out += ", ";
  }
  out += ']';
}

}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  std::string out = "tensor(";
  if (dim() == 0)
    out += fmt::format("{:.6g}", item());
  else if (numel() == 0)
    out += "[]";
  else
    append_values(out, *this, 0, offset());
  out += fmt::format(", {}, {}", dtype_name(dtype()), shape_str(sizes()));
  if (!device().is_cpu()) out += ", " + device().str();
  out += ')';
  return out;
}

}  // namespace tpp
