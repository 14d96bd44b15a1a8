// Constant padding: a filled output with x copied into its interior; the
// gradient is that interior of dy.
#include "ops/pad.h"

#include <algorithm>

#include "engine/autograd.h"
#include "ops/checks.h"
#if TPP_WITH_CUDA
#include "ops/cuda/pad.h"
#endif

namespace tpp::ops {

namespace {

// The region of the padded output that holds x.
Tensor interior(const Tensor& padded, const Shape& x_sizes, const std::vector<int64_t>& pad) {
  Tensor view = padded;
  const int64_t nd = static_cast<int64_t>(x_sizes.size());
  for (size_t i = 0; i < pad.size() / 2; ++i) {
    const int64_t d = nd - 1 - static_cast<int64_t>(i);
    view = view.slice(d, pad[2 * i], pad[2 * i] + x_sizes[d]);
  }
  return view;
}

// y = x padded with value: on a GPU in one pass, else a fill and a copy.
void pad_into(Tensor y, const Tensor& x, const std::vector<int64_t>& pad, double value) {
#if TPP_WITH_CUDA
  if (x.device().is_cuda()) return cuda::constant_pad_forward(x.contiguous(), pad, value, y);
#endif
  y.fill_(value);
  interior(y, x.sizes(), pad).copy_(x);
}

// As PyTorch, a negative amount crops the padded result: x padded by the
// positive amounts, then that many elements cut off that end (a cut longer
// than x eats into the other end's padding). Returns the part of x that
// remains (a differentiable view); `grow` gets the padding that remains.
Tensor crop(const Tensor& x, const std::vector<int64_t>& pad, std::vector<int64_t>& grow) {
  Tensor view = x;
  grow.assign(pad.size(), 0);
  for (size_t i = 0; i < pad.size(); i += 2) {
    const int64_t d = x.dim() - 1 - static_cast<int64_t>(i / 2), n = x.size(d);
    TPP_CHECK(n + pad[i] + pad[i + 1] >= 0, "constant_pad: pad {} leaves dim {} of x with shape {} a negative size",
              shape_str(pad), d, shape_str(x.sizes()));
    const int64_t cut_before = std::max<int64_t>(-pad[i], 0), cut_after = std::max<int64_t>(-pad[i + 1], 0);
    const int64_t keep_begin = std::min(cut_before, n), keep_end = std::max(n - cut_after, keep_begin);
    if (keep_begin > 0 || keep_end < n) view = view.slice(d, keep_begin, keep_end);
    grow[i] = std::max<int64_t>(pad[i], 0) - std::max<int64_t>(cut_after - n, 0);
    grow[i + 1] = std::max<int64_t>(pad[i + 1], 0) - std::max<int64_t>(cut_before - n, 0);
  }
  return view;
}

}  // namespace

Tensor constant_pad(const Tensor& x_in, const std::vector<int64_t>& pad_in, double value) {
  check_floating("constant_pad", x_in);
  TPP_CHECK(pad_in.size() % 2 == 0 && static_cast<int64_t>(pad_in.size() / 2) <= x_in.dim(),
            "constant_pad: pad {} must have an even length of at most twice the dims of x with shape {}",
            shape_str(pad_in), shape_str(x_in.sizes()));
  std::vector<int64_t> pad;
  const Tensor x = crop(x_in, pad_in, pad);
  if (x.sizes() != x_in.sizes() && std::all_of(pad.begin(), pad.end(), [](int64_t p) { return p == 0; }))
    return x.contiguous();  // a crop alone
  Shape out_sizes = x.sizes();
  for (size_t i = 0; i < pad.size(); ++i) out_sizes[x.dim() - 1 - static_cast<int64_t>(i / 2)] += pad[i];
  Tensor y = empty(out_sizes, {.dtype = x.dtype(), .device = x.device()});
  pad_into(y, x.detach(), pad, value);
  record_grad(y, "constant_pad", {x}, [x_sizes = x.sizes(), pad](const Tensor& dy) {
    return Grads{interior(dy, x_sizes, pad).contiguous()};
  });
  return y;
}

}  // namespace tpp::ops
