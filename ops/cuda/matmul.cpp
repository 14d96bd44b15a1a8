// matmul's CUDA glue: GEMMs on cuBLAS, the bias helpers on ops/cuda/matmul.cu.
// cuBLAS is column-major; a row-major [r, c] matrix with leading dim ld is the
// column-major [c, r] matrix with the same ld, so row-major C = op(A) op(B) is
// computed as column-major Cᵀ = op(B)ᵀ op(A)ᵀ over the same bytes: the
// operands swap places and the transpose flags stay as they are.
#include "ops/cuda/matmul.h"

#include <algorithm>
#include <climits>

#include "engine/cuda/check.h"
#include "engine/cuda/stream.h"
#include "engine/dtype.h"
#include "engine/error.h"
#include "engine/math_mode.h"
#include "engine/tensor.h"
#include "ops/cuda/handles.h"

namespace tpp::ops::cuda {

namespace {

namespace tc = ::tpp::cuda;

int blas_int(int64_t v) {
  TPP_CHECK(v >= 0 && v <= INT_MAX, "matmul: size {} exceeds cuBLAS's int range", v);
  return static_cast<int>(v);
}

// cuBLAS refuses leading dimensions below 1, even for empty matrices.
int blas_ld(int64_t v) { return blas_int(std::max<int64_t>(v, 1)); }

cublasOperation_t op(bool transposed) { return transposed ? CUBLAS_OP_T : CUBLAS_OP_N; }

// MathMode::tf32 lets f32 products round their inputs to TF32 on the tensor
// cores; the default math keeps full fp32 (and f64 is always f64).
cublasMath_t math_for(DType t) {
  return t == DType::f32 && math_mode() == MathMode::tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH;
}

void column_major_gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                       const float* a, int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  const float one = 1;
  TPP_CUBLAS_CHECK(cublasSgemm(h, ta, tb, m, n, k, &one, a, lda, b, ldb, &beta, c, ldc));
}

void column_major_gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                       const double* a, int lda, const double* b, int ldb, double beta, double* c, int ldc) {
  const double one = 1;
  TPP_CUBLAS_CHECK(cublasDgemm(h, ta, tb, m, n, k, &one, a, lda, b, ldb, &beta, c, ldc));
}

}  // namespace

void gemm_into(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const Tensor& a, int64_t lda,
               const Tensor& b, int64_t ldb, double beta, const Tensor& c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  const tc::DeviceGuard guard(c.device().index);
  const cudaStream_t stream = tc::current_stream();
  dispatch_floating(c.dtype(), "matmul", [&](auto type) {
    using T = decltype(type);
    T* out = c.data<T>();
    // An empty inner dimension leaves c = beta * c, which cuBLAS need not honour.
    if (k == 0) return kernels::scale_rows<T>(out, m, n, ldc, static_cast<T>(beta), stream);
    const cublasHandle_t h = cublas_handle();
    TPP_CUBLAS_CHECK(cublasSetMathMode(h, math_for(c.dtype())));
    column_major_gemm(h, op(trans_b), op(trans_a), blas_int(n), blas_int(m), blas_int(k), b.data<T>(), blas_ld(ldb),
                      a.data<T>(), blas_ld(lda), static_cast<T>(beta), out, blas_ld(ldc));
  });
}

void fill_rows_with_bias(const Tensor& y, const Tensor& bias) {
  const tc::DeviceGuard guard(y.device().index);
  dispatch_floating(y.dtype(), "linear", [&](auto type) {
    using T = decltype(type);
    kernels::fill_rows<T>(y.data<T>(), bias.data<T>(), y.size(0), y.size(1), tc::current_stream());
  });
}

void sum_columns(const Tensor& dy, const Tensor& db) {
  const tc::DeviceGuard guard(dy.device().index);
  dispatch_floating(dy.dtype(), "linear backward", [&](auto type) {
    using T = decltype(type);
    kernels::column_sums<T>(dy.data<T>(), dy.size(0), dy.size(1), db.data<T>(), tc::current_stream());
  });
}

}  // namespace tpp::ops::cuda
