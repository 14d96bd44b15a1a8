#include "ops/cpu/matmul.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <vector>

#include "engine/dtype.h"
#include "engine/tensor.h"
#include "ops/cpu/onednn/gemm.h"

namespace tpp::ops::cpu {

namespace {

// Below this many multiply-adds a product runs on one thread: waking a
// second costs more than it saves.
constexpr int64_t kParallelMacs = 1 << 20;

void make_blas_single_threaded() {
  static const bool done = [] {
    openblas_set_num_threads(1);
    return true;
  }();
  (void)done;
}

// OpenBLAS refuses leading dimensions below 1, even for empty matrices.
blasint ld(int64_t v) { return static_cast<blasint>(std::max<int64_t>(v, 1)); }
blasint dim(int64_t v) { return static_cast<blasint>(v); }
CBLAS_TRANSPOSE trans(bool t) { return t ? CblasTrans : CblasNoTrans; }

// An empty inner dimension leaves C = beta * C, which BLAS need not honour.
template <class T>
void scale(int64_t m, int64_t n, T beta, T* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == T(0) ? T(0) : beta * c[i * ldc + j];
}

// f32 on oneDNN: measured as fast as OpenBLAS with its right kernels for the
// CPU, and several times faster where OpenBLAS does not know the CPU (see
// ops/cpu/onednn/gemm.h); it needs no environment variable either way.
void blas_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
               const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  onednn::sgemm(ta, tb, m, n, k, alpha, a, ld(lda), b, ld(ldb), beta, c, ld(ldc));
}

void blas_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda,
               const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, trans(ta), trans(tb), dim(m), dim(n), dim(k), alpha, a, ld(lda), b, ld(ldb), beta, c,
              ld(ldc));
}

}  // namespace

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* b,
          int64_t ldb, T beta, T* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) return scale(m, n, beta, c, ldc);
  make_blas_single_threaded();
  blas_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

template <class T>
void parallel_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
                   const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (threads == 1 || m * n * k < kParallelMacs)
    return gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  // Split C along its longer side into at most one block per thread; row
  // blocks in multiples of 16 and column blocks in multiples of 64 keep the
  // BLAS micro-kernels on full tiles. (Rounding the share down instead made a
  // third, tiny block, and the static schedule gave two blocks to one thread.)
  const bool split_rows = m >= n;
  const int64_t extent = split_rows ? m : n, align = split_rows ? 16 : 64;
  const int64_t share = (extent + threads - 1) / threads;
  const int64_t block = (share + align - 1) / align * align;
  const int64_t blocks = (extent + block - 1) / block;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t i = 0; i < blocks; ++i) {
    const int64_t begin = i * block, len = std::min(block, extent - begin);
    if (split_rows) {
      const T* a_block = trans_a ? a + begin : a + begin * lda;
      gemm(trans_a, trans_b, len, n, k, alpha, a_block, lda, b, ldb, beta, c + begin * ldc, ldc);
    } else {
      const T* b_block = trans_b ? b + begin * ldb : b + begin;
      gemm(trans_a, trans_b, m, len, k, alpha, a, lda, b_block, ldb, beta, c + begin, ldc);
    }
  }
}

template <class T>
void fill_rows_with(T* y, const T* bias, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) std::copy(bias, bias + cols, y + r * cols);
}

template <class T>
void column_sums(const T* dy, int64_t rows, int64_t cols, T* db) {
  std::vector<double> total(static_cast<size_t>(cols), 0.0);  // in double, as the CUDA kernel sums
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = dy + r * cols;
#pragma omp simd
    for (int64_t j = 0; j < cols; ++j) total[j] += static_cast<double>(row[j]);
  }
  for (int64_t j = 0; j < cols; ++j) db[j] = static_cast<T>(total[j]);
}

#define TPP_INSTANTIATE(T)                                                                                          \
  template void gemm<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*, int64_t, T, T*,      \
                        int64_t);                                                                                   \
  template void parallel_gemm<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*, int64_t, T, \
                                 T*, int64_t);                                                                      \
  template void fill_rows_with<T>(T*, const T*, int64_t, int64_t);                                                  \
  template void column_sums<T>(const T*, int64_t, int64_t, T*);
TPP_INSTANTIATE(float)
TPP_INSTANTIATE(double)
#undef TPP_INSTANTIATE

void gemm_into(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const Tensor& a, int64_t lda,
               const Tensor& b, int64_t ldb, double beta, const Tensor& c, int64_t ldc) {
  dispatch_floating(c.dtype(), "matmul", [&](auto type) {
    using T = decltype(type);
    parallel_gemm<T>(trans_a, trans_b, m, n, k, T(1), a.data<T>(), lda, b.data<T>(), ldb, static_cast<T>(beta),
                     c.data<T>(), ldc);
  });
}

void fill_rows_with_bias(const Tensor& y, const Tensor& bias) {
  dispatch_floating(y.dtype(), "linear", [&](auto type) {
    using T = decltype(type);
    fill_rows_with<T>(y.data<T>(), bias.data<T>(), y.size(0), y.size(1));
  });
}

void sum_columns(const Tensor& dy, const Tensor& db) {
  dispatch_floating(dy.dtype(), "linear backward", [&](auto type) {
    using T = decltype(type);
    column_sums<T>(dy.data<T>(), dy.size(0), dy.size(1), db.data<T>());
  });
}

}  // namespace tpp::ops::cpu
