#include "ops/cpu/matmul.h"

#include <cblas.h>

#include <algorithm>

namespace tpp::ops::cpu {

namespace {
// OpenBLAS refuses leading dimensions below 1, even for empty matrices.
blasint ld(int64_t v) { return static_cast<blasint>(std::max<int64_t>(v, 1)); }
CBLAS_TRANSPOSE trans(bool t) { return t ? CblasTrans : CblasNoTrans; }

// An empty inner dimension leaves C = beta * C, which BLAS need not honour.
template <class T>
void scale(int64_t m, int64_t n, T beta, T* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == T(0) ? T(0) : beta * c[i * ldc + j];
}
}  // namespace

template <>
void gemm<float>(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                 int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) return scale(m, n, beta, c, ldc);
  cblas_sgemm(CblasRowMajor, trans(trans_a), trans(trans_b), static_cast<blasint>(m), static_cast<blasint>(n),
              static_cast<blasint>(k), alpha, a, ld(lda), b, ld(ldb), beta, c, ld(ldc));
}

template <>
void gemm<double>(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
                  int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) return scale(m, n, beta, c, ldc);
  cblas_dgemm(CblasRowMajor, trans(trans_a), trans(trans_b), static_cast<blasint>(m), static_cast<blasint>(n),
              static_cast<blasint>(k), alpha, a, ld(lda), b, ld(ldb), beta, c, ld(ldc));
}

template <class T>
void fill_rows_with(T* y, const T* bias, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) std::copy(bias, bias + cols, y + r * cols);
}

template <class T>
void column_sums(const T* dy, int64_t rows, int64_t cols, T* db) {
  std::fill(db, db + cols, T(0));
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = dy + r * cols;
#pragma omp simd
    for (int64_t j = 0; j < cols; ++j) db[j] += row[j];
  }
}

template void fill_rows_with<float>(float*, const float*, int64_t, int64_t);
template void fill_rows_with<double>(double*, const double*, int64_t, int64_t);
template void column_sums<float>(const float*, int64_t, int64_t, float*);
template void column_sums<double>(const double*, int64_t, int64_t, double*);

BlasThreads::BlasThreads(int threads) : previous_(openblas_get_num_threads()) {
  if (threads != previous_) openblas_set_num_threads(threads);
}

BlasThreads::~BlasThreads() {
  if (openblas_get_num_threads() != previous_) openblas_set_num_threads(previous_);
}

}  // namespace tpp::ops::cpu
