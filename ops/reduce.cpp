// Reductions: checks, the [outer, reduce, inner] layout of the reduced dims,
// and each gradient right below its forward.
#include "ops/reduce.h"

#include <algorithm>

#include "engine/autograd.h"
#include "ops/checks.h"
#include "ops/cpu/reduce.h"
#include "ops/elementwise.h"

namespace tpp::ops {

namespace {

// Sorted, wrapped, distinct dims; an empty list means every dim.
std::vector<int64_t> normalize_dims(std::string_view op, const Tensor& x, const std::vector<int64_t>& dims) {
  std::vector<int64_t> out;
  if (dims.empty()) {
    for (int64_t d = 0; d < x.dim(); ++d) out.push_back(d);
    return out;
  }
  for (const int64_t d : dims) out.push_back(wrap_dim(d, x.dim(), op));
  std::sort(out.begin(), out.end());
  TPP_CHECK(std::adjacent_find(out.begin(), out.end()) == out.end(), "{}: dim {} appears more than once in {}", op,
            *std::adjacent_find(out.begin(), out.end()), shape_str(dims));
  return out;
}

Shape reduced_shape(const Shape& sizes, const std::vector<int64_t>& dims, bool keepdim) {
  Shape out;
  for (int64_t d = 0; d < static_cast<int64_t>(sizes.size()); ++d) {
    const bool reduced = std::binary_search(dims.begin(), dims.end(), d);
    if (!reduced) out.push_back(sizes[d]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}

// A contiguous tensor whose reduced elements form the middle extent of
// [outer, reduce, inner]. When the reduced dims are one block (ignoring
// size-1 dims) x is used as it is; otherwise they are permuted to the end.
struct Prepared {
  Tensor data;
  cpu::ReduceLayout layout;
};

Prepared prepare(const Tensor& x, const std::vector<int64_t>& dims) {
  const Shape& s = x.sizes();
  const int64_t nd = x.dim();
  std::vector<bool> reduced(nd, false);
  for (const int64_t d : dims)
    if (d < nd) reduced[d] = true;  // a 0-d tensor accepts dim 0 and has nothing to reduce
  int64_t first = nd, last = -1;
  for (int64_t d = 0; d < nd; ++d)
    if (reduced[d] && s[d] != 1) first = std::min(first, d), last = d;
  bool one_block = true;
  for (int64_t d = first; d <= last; ++d) one_block = one_block && (reduced[d] || s[d] == 1);

  cpu::ReduceLayout l;
  if (one_block) {
    for (int64_t d = 0; d < nd; ++d) {
      if (d < first) l.outer *= s[d];
      else if (d <= last) l.reduce *= s[d];
      else l.inner *= s[d];
    }
    return {x.detach().contiguous(), l};
  }
  Shape order;
  for (int64_t d = 0; d < nd; ++d)
    if (!reduced[d]) order.push_back(d), l.outer *= s[d];
  for (int64_t d = 0; d < nd; ++d)
    if (reduced[d]) order.push_back(d), l.reduce *= s[d];
  return {x.detach().permute(order).contiguous(), l};
}

Tensor sum_scaled(std::string_view op, const Tensor& x, const std::vector<int64_t>& dims, bool keepdim,
                  bool average) {
  check_floating(op, x);
  const Prepared p = prepare(x, dims);
  const double scale = average ? 1.0 / static_cast<double>(p.layout.reduce) : 1.0;
  Tensor y = empty(reduced_shape(x.sizes(), dims, keepdim), {.dtype = x.dtype(), .device = x.device()});
  cpu::sum_forward(p.data, p.layout, scale, y);
  // Every input element receives scale * dy of its output position.
  const Shape kept = reduced_shape(x.sizes(), dims, true);
  record_grad(y, average ? "mean" : "sum", {x}, [x_sizes = x.sizes(), kept, scale](const Tensor& dy) {
    const Tensor g = scale == 1.0 ? dy : mul(dy, scale);
    return Grads{g.reshape(kept).expand(x_sizes).contiguous()};
  });
  return y;
}

}  // namespace

Tensor sum(const Tensor& x) { return sum_scaled("sum", x, normalize_dims("sum", x, {}), false, false); }

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return sum_scaled("sum", x, normalize_dims("sum", x, dims), keepdim, false);
}

Tensor mean(const Tensor& x) { return sum_scaled("mean", x, normalize_dims("mean", x, {}), false, true); }

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return sum_scaled("mean", x, normalize_dims("mean", x, dims), keepdim, true);
}

Tensor max(const Tensor& x) {
  check_floating("max", x);
  TPP_CHECK(x.numel() > 0, "max: cannot reduce an empty tensor of shape {}", shape_str(x.sizes()));
  const Tensor xc = x.detach().contiguous();
  const double value = cpu::max_all(xc);
  Tensor y = full({}, value, {.dtype = x.dtype(), .device = x.device()});
  record_grad(y, "max", {x}, [xc, value](const Tensor& dy) {
    Tensor dx = empty_like(xc);
    cpu::max_all_backward(xc, value, dy.item(), dx);
    return Grads{dx};
  });
  return y;
}

MaxResult max(const Tensor& x, int64_t dim, bool keepdim) {
  check_floating("max", x);
  const std::vector<int64_t> dims{wrap_dim(dim, x.dim(), "max")};
  TPP_CHECK(x.dim() == 0 || x.size(dims[0]) > 0, "max: cannot reduce dim {} of size 0 in shape {}", dim,
            shape_str(x.sizes()));
  const Prepared p = prepare(x, dims);
  const Shape out_shape = reduced_shape(x.sizes(), dims, keepdim);
  MaxResult r{empty(out_shape, {.dtype = x.dtype(), .device = x.device()}),
              empty(out_shape, {.dtype = DType::i64, .device = x.device()})};
  cpu::max_forward(p.data, p.layout, r.values, r.indices);
  record_grad(r.values, "max_dim", {x}, [x_sizes = x.sizes(), layout = p.layout, indices = r.indices](const Tensor& dy) {
    Tensor dx = empty(x_sizes, {.dtype = dy.dtype(), .device = dy.device()});
    cpu::max_backward(dy.contiguous(), indices, layout, dx);
    return Grads{dx};
  });
  return r;
}

}  // namespace tpp::ops
