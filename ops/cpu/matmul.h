// CPU GEMM over raw row-major pointers (OpenBLAS), the bias helpers of
// linear layers, and control of OpenBLAS's own thread pool.
#pragma once

#include <cstdint>

namespace tpp::ops::cpu {

// C[m,n] = alpha * op(A) op(B) + beta * C, all row-major. op(A) is [m,k]:
// A itself when !trans_a (lda >= k), else A is stored [k,m] (lda >= m).
template <class T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* b,
          int64_t ldb, T beta, T* c, int64_t ldc);

// y[r, :] = bias for every row r of a [rows, cols] matrix.
template <class T>
void fill_rows_with(T* y, const T* bias, int64_t rows, int64_t cols);

// db[j] = sum over rows of dy[r, j].
template <class T>
void column_sums(const T* dy, int64_t rows, int64_t cols, T* db);

// While alive, OpenBLAS runs each GEMM on `threads` threads; the previous
// count comes back on destruction. Kernels that parallelise with OpenMP
// themselves ask for 1 so the two pools do not oversubscribe the cores.
class BlasThreads {
 public:
  explicit BlasThreads(int threads);
  ~BlasThreads();
  BlasThreads(const BlasThreads&) = delete;
  BlasThreads& operator=(const BlasThreads&) = delete;

 private:
  int previous_;
};

}  // namespace tpp::ops::cpu
