// Reductions: checks, the [outer, reduce, inner] layout of the reduced dims,
// and each gradient right below its forward.
#include "ops/reduce.h"

#include <algorithm>

#include "engine/autograd.h"
#include "ops/checks.h"
#include "ops/cpu/reduce.h"
#include "ops/dispatch.h"
#include "ops/elementwise.h"
#if TPP_WITH_CUDA
#include "engine/cuda/tensor_transfer.h"
#include "ops/cuda/reduce.h"
#endif

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

// Dims [first, last] seen as the middle extent of [outer, reduce, inner].
ReduceLayout run_layout(const Shape& s, int64_t first, int64_t last) {
  ReduceLayout l;
  for (int64_t d = 0; d < static_cast<int64_t>(s.size()); ++d) {
    if (d < first) l.outer *= s[d];
    else if (d <= last) l.reduce *= s[d];
    else l.inner *= s[d];
  }
  return l;
}

// The reduced dims as maximal runs [first, last] of adjacent dims; size-1
// dims change nothing, so a run may span them. Dims past the end (dim 0 of
// a 0-d tensor) and size-1 dims need no work and start no run.
std::vector<std::pair<int64_t, int64_t>> reduced_runs(const Shape& s, const std::vector<int64_t>& dims) {
  const int64_t nd = static_cast<int64_t>(s.size());
  std::vector<bool> reduced(nd, false);
  for (const int64_t d : dims)
    if (d < nd) reduced[d] = true;
  std::vector<std::pair<int64_t, int64_t>> runs;
  bool open = false;
  for (int64_t d = 0; d < nd; ++d) {
    if (s[d] == 1) continue;
    if (!reduced[d]) open = false;
    else if (open) runs.back().second = d;
    else runs.emplace_back(d, d), open = true;
  }
  return runs;
}

#if TPP_WITH_CUDA
// On a GPU: a reduction to one element by the two-pass tree, any other in one
// pass reading x in place (one block per output).
void sum_over_cuda(const Tensor& x, const std::vector<int64_t>& dims, double scale, const Tensor& y) {
  if (y.numel() == 1) return cuda::sum_all(x.detach().contiguous(), scale, y);
  std::vector<bool> reduced(x.sizes().size(), false);
  for (const int64_t d : dims)
    if (d < x.dim()) reduced[d] = true;
  ::tpp::cuda::reduce_sum(y, x.detach(), reduced, scale);
}
#endif

// y = scale * the sum of x over dims, one pass per run of adjacent reduced
// dims, last run first so that each pass reads less. Between passes the
// partial sums are kept in f64.
void sum_over(const Tensor& x, const std::vector<int64_t>& dims, double scale, const Tensor& y) {
#if TPP_WITH_CUDA
  if (x.device().is_cuda()) return sum_over_cuda(x, dims, scale, y);
#endif
  Tensor current = x.detach().contiguous();
  const auto runs = reduced_runs(x.sizes(), dims);
  if (runs.empty()) return cpu::sum_forward(current, {.outer = x.numel()}, scale, y);
  Shape s = x.sizes();
  for (size_t k = runs.size(); k-- > 0;) {
    const auto [first, last] = runs[k];
    const ReduceLayout layout = run_layout(s, first, last);
    for (int64_t d = first; d <= last; ++d) s[d] = 1;
    const Tensor out = k == 0 ? y : empty(s, {.dtype = DType::f64, .device = x.device()});
    cpu::sum_forward(current, layout, k == 0 ? scale : 1.0, out);
    current = out;
  }
}

Tensor sum_scaled(std::string_view op, const Tensor& x, const std::vector<int64_t>& dims, bool keepdim,
                  bool average) {
  check_floating(op, x);
  int64_t count = 1;
  for (const int64_t d : dims) count *= d < x.dim() ? x.size(d) : 1;
  const double scale = average ? 1.0 / static_cast<double>(count) : 1.0;
  Tensor y = empty(reduced_shape(x.sizes(), dims, keepdim), {.dtype = x.dtype(), .device = x.device()});
  sum_over(x, dims, scale, y);
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
  Tensor y = empty({}, {.dtype = x.dtype(), .device = x.device()});
  TPP_ON_DEVICE(xc, max_all(xc, y));
  record_grad(y, "max", {x}, [xc, y = y.detach()](const Tensor& dy) {
    Tensor dx = empty_like(xc);
    TPP_ON_DEVICE(xc, max_all_backward(xc, y, dy, dx));
    return Grads{dx};
  });
  return y;
}

MaxResult max(const Tensor& x, int64_t dim, bool keepdim) {
  check_floating("max", x);
  const std::vector<int64_t> dims{wrap_dim(dim, x.dim(), "max")};
  TPP_CHECK(x.dim() == 0 || x.size(dims[0]) > 0, "max: cannot reduce dim {} of size 0 in shape {}", dim,
            shape_str(x.sizes()));
  const ReduceLayout layout = run_layout(x.sizes(), dims[0], dims[0]);
  const Shape out_shape = reduced_shape(x.sizes(), dims, keepdim);
  MaxResult r{empty(out_shape, {.dtype = x.dtype(), .device = x.device()}),
              empty(out_shape, {.dtype = DType::i64, .device = x.device()})};
  const Tensor xc = x.detach().contiguous();
  TPP_ON_DEVICE(xc, max_forward(xc, layout, r.values, r.indices));
  record_grad(r.values, "max_dim", {x}, [x_sizes = x.sizes(), layout, indices = r.indices](const Tensor& dy) {
    Tensor dx = empty(x_sizes, {.dtype = dy.dtype(), .device = dy.device()});
    TPP_ON_DEVICE(dx, max_backward(dy.contiguous(), indices, layout, dx));
    return Grads{dx};
  });
  return r;
}

}  // namespace tpp::ops
