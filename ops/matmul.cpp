// matmul and linear: checks, the GEMM calls, and the gradients right below.
// Every backward product is a GEMM with transpose flags; nothing transposed
// is ever materialised.
#include "ops/matmul.h"

#include "engine/autograd.h"
#include "ops/checks.h"
#include "ops/cpu/matmul.h"
#include "ops/dispatch.h"
#if TPP_WITH_CUDA
#include "ops/cuda/matmul.h"
#endif

namespace tpp::ops {

namespace {

// A 2-d tensor as BLAS can read it without a copy: row-major with a leading
// dimension, or the transpose of such a matrix (a column-major view).
struct BlasMatrix {
  Tensor tensor;  // keeps the storage alive; may be a contiguous copy
  bool transposed = false;
  int64_t ld = 1;
};

BlasMatrix as_blas(const Tensor& t) {
  const int64_t rows = t.size(0), cols = t.size(1);
  const bool row_major = (cols == 1 || t.stride(1) == 1) && (rows == 1 || t.stride(0) >= cols);
  if (row_major) return {t, false, rows == 1 ? cols : t.stride(0)};
  const bool col_major = (rows == 1 || t.stride(0) == 1) && (cols == 1 || t.stride(1) >= rows);
  if (col_major) return {t, true, cols == 1 ? rows : t.stride(1)};
  const Tensor copy = t.contiguous();
  return {copy, false, cols};
}

// a [m,k] · b [k,n] into a new contiguous [m,n], outside autograd.
Tensor mm(const Tensor& a, const Tensor& b) {
  const int64_t m = a.size(0), k = a.size(1), n = b.size(1);
  Tensor out = empty({m, n}, {.dtype = a.dtype(), .device = a.device()});
  const BlasMatrix ba = as_blas(a), bb = as_blas(b);
  TPP_ON_DEVICE(out, gemm_into(ba.transposed, bb.transposed, m, n, k, ba.tensor, ba.ld, bb.tensor, bb.ld, 0, out, n));
  return out;
}

Tensor matmul_2d(const Tensor& a, const Tensor& b) {
  Tensor y = mm(a, b);
  const bool need_a = a.requires_grad(), need_b = b.requires_grad();
  record_grad(y, "matmul", {a, b}, [a, b, need_a, need_b](const Tensor& dy) {
    // dA = dY · Bᵀ, dB = Aᵀ · dY; the transposes are views read in place.
    return Grads{need_a ? mm(dy, b.transpose(0, 1)) : Tensor(), need_b ? mm(a.transpose(0, 1), dy) : Tensor()};
  });
  return y;
}

// op(a_i) · op(b_i) for every i of the leading dim of the contiguous 3-d a
// and b, into a new [batch, m, n], one GEMM per entry, outside autograd.
Tensor batched_gemm(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  const int64_t batch = a.size(0);
  const int64_t m = trans_a ? a.size(2) : a.size(1), k = trans_a ? a.size(1) : a.size(2);
  const int64_t n = trans_b ? b.size(1) : b.size(2);
  Tensor out = empty({batch, m, n}, {.dtype = a.dtype(), .device = a.device()});
  for (int64_t i = 0; i < batch; ++i)
    TPP_ON_DEVICE(out, gemm_into(trans_a, trans_b, m, n, k, a.select(0, i), a.size(2), b.select(0, i), b.size(2), 0,
                                 out.select(0, i), n));
  return out;
}

// [batch, m, k] · [batch, k, n], both contiguous, differentiable.
Tensor bmm(const Tensor& a, const Tensor& b) {
  Tensor y = batched_gemm(a.detach(), b.detach(), false, false);
  const bool need_a = a.requires_grad(), need_b = b.requires_grad();
  record_grad(y, "matmul", {a, b}, [a = a.detach(), b = b.detach(), need_a, need_b](const Tensor& dy) {
    const Tensor g = dy.contiguous();  // dA_i = dY_i · B_iᵀ, dB_i = A_iᵀ · dY_i
    return Grads{need_a ? batched_gemm(g, b, false, true) : Tensor(), need_b ? batched_gemm(a, g, true, false) : Tensor()};
  });
  return y;
}

// PyTorch's batched matmul: the dims before the last two are batch dims,
// broadcast together; each operand is expanded to them and flattened to
// [batch, rows, cols] (expand's gradient sums the broadcast back).
Tensor matmul_batched(const Tensor& a2, const Tensor& b2) {
  const Shape a_batch(a2.sizes().begin(), a2.sizes().end() - 2), b_batch(b2.sizes().begin(), b2.sizes().end() - 2);
  const Shape batch = broadcast_shapes("matmul", a_batch, b_batch);
  const int64_t m = a2.size(-2), k = a2.size(-1), n = b2.size(-1), entries = numel_of(batch);
  const auto flat = [&](const Tensor& t, int64_t rows, int64_t cols) {
    Shape full = batch;
    full.push_back(rows);
    full.push_back(cols);
    return t.expand(full).reshape({entries, rows, cols}).contiguous();
  };
  Shape out_shape = batch;
  out_shape.push_back(m);
  out_shape.push_back(n);
  return bmm(flat(a2, m, k), flat(b2, k, n)).view(out_shape);
}

void check_linear_args(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_floating("linear", x);
  check_same_dtype_device("linear", x, weight);
  check_dim("linear", "weight", weight, 2);
  TPP_CHECK(x.dim() >= 1, "linear: expected input to be at least 1-d but got shape {}", shape_str(x.sizes()));
  TPP_CHECK(x.size(-1) == weight.size(1), "linear: input {} has {} features but weight {} expects {}",
            shape_str(x.sizes()), x.size(-1), shape_str(weight.sizes()), weight.size(1));
  if (!bias.defined()) return;
  check_same_dtype_device("linear", x, bias);
  TPP_CHECK(bias.sizes() == Shape{weight.size(0)}, "linear: bias of shape {} does not match weight {} (expected [{}])",
            shape_str(bias.sizes()), shape_str(weight.sizes()), weight.size(0));
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_floating("matmul", a);
  check_same_dtype_device("matmul", a, b);
  TPP_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: expected operands of at least 1 dim but got shapes {} and {}",
            shape_str(a.sizes()), shape_str(b.sizes()));
  const int64_t ka = a.size(-1), kb = b.dim() == 1 ? b.size(0) : b.size(-2);
  TPP_CHECK(ka == kb, "matmul: shapes {} and {} cannot be multiplied ({} != {})", shape_str(a.sizes()),
            shape_str(b.sizes()), ka, kb);
  const Tensor a2 = a.dim() == 1 ? a.unsqueeze(0) : a;
  const Tensor b2 = b.dim() == 1 ? b.unsqueeze(1) : b;
  Tensor y = a2.dim() == 2 && b2.dim() == 2 ? matmul_2d(a2, b2) : matmul_batched(a2, b2);
  if (b.dim() == 1) y = y.squeeze(-1);
  if (a.dim() == 1) y = y.squeeze(b.dim() == 1 ? -1 : -2);
  return y;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_linear_args(x, weight, bias);
  const int64_t in = weight.size(1), out = weight.size(0);
  // The rows are counted, not inferred: with 0 input features view({-1, 0}) is ambiguous.
  const Tensor x2 = x.detach().contiguous().view({numel_of(Shape(x.sizes().begin(), x.sizes().end() - 1)), in});
  const Tensor w = weight.detach().contiguous();
  const int64_t rows = x2.size(0);
  Tensor y2 = empty({rows, out}, {.dtype = x.dtype(), .device = x.device()});
  if (bias.defined()) TPP_ON_DEVICE(y2, fill_rows_with_bias(y2, bias.detach().contiguous()));
  // y = x · wᵀ (+ the bias already in y)
  TPP_ON_DEVICE(y2, gemm_into(false, true, rows, out, in, x2, in, w, in, bias.defined() ? 1 : 0, y2, out));
  Shape out_shape = x.sizes();
  out_shape.back() = out;
  Tensor y = y2.view(out_shape);

  const bool need_x = x.requires_grad(), need_w = weight.requires_grad();
  const bool need_b = bias.defined() && bias.requires_grad();
  record_grad(y, "linear", {x, weight, bias}, [x2, w, need_x, need_w, need_b, x_shape = x.sizes()](const Tensor& dy) {
    const int64_t rows = x2.size(0), in = x2.size(1), out = w.size(0);
    const Tensor dy2 = dy.contiguous().view({rows, out});
    const TensorOptions like_dy{.dtype = dy.dtype(), .device = dy.device()};
    Tensor dx, dw, db;
    if (need_x) {  // dx = dy · w
      dx = empty({rows, in}, like_dy);
      TPP_ON_DEVICE(dx, gemm_into(false, false, rows, in, out, dy2, out, w, in, 0, dx, in));
      dx = dx.view(x_shape);
    }
    if (need_w) {  // dw = dyᵀ · x
      dw = empty({out, in}, like_dy);
      TPP_ON_DEVICE(dw, gemm_into(true, false, out, in, rows, dy2, out, x2, in, 0, dw, in));
    }
    if (need_b) {
      db = empty({out}, like_dy);
      TPP_ON_DEVICE(db, sum_columns(dy2, db));
    }
    return Grads{dx, dw, db};
  });
  return y;
}

}  // namespace tpp::ops
