// CPU GEMM over raw row-major pointers (f32: oneDNN's sgemm, see
// ops/cpu/onednn/gemm.h; f64: OpenBLAS) and the bias helpers of linear layers.
//
// Threads: the engine has one thread pool, OpenMP's. Each GEMM call runs on
// its calling thread (OpenBLAS is switched to a single thread on first use),
// and big products are split over OpenMP threads here, so BLAS workers never
// compete with OpenMP workers for the cores (the pthread OpenBLAS spins for a
// while after each threaded call).
#pragma once

#include <cstdint>

namespace tpp {
class Tensor;
}

namespace tpp::ops::cpu {

// C[m,n] = alpha * op(A) op(B) + beta * C, all row-major. op(A) is [m,k]:
// A itself when !trans_a (lda >= k), else A is stored [k,m] (lda >= m).
// Runs on the calling thread: for kernels that parallelise around it.
template <class T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* b,
          int64_t ldb, T beta, T* c, int64_t ldc);

// The same product, split into blocks of C over the OpenMP threads when it
// is big enough to pay for them (and not already inside a parallel region).
template <class T>
void parallel_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
                   const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

// y[r, :] = bias for every row r of a [rows, cols] matrix.
template <class T>
void fill_rows_with(T* y, const T* bias, int64_t rows, int64_t cols);

// db[j] = sum over rows of dy[r, j].
template <class T>
void column_sums(const T* dy, int64_t rows, int64_t cols, T* db);

// The Tensor-level forms ops/matmul.cpp dispatches by device (ops/cuda/matmul.h
// declares the same). The tensors supply the dtype (f32 or f64) and the data
// at their offset; the layout is given as for gemm, with alpha = 1.
void gemm_into(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const Tensor& a, int64_t lda,
               const Tensor& b, int64_t ldb, double beta, const Tensor& c, int64_t ldc);
// Every row of the contiguous [rows, cols] y = the contiguous bias [cols].
void fill_rows_with_bias(const Tensor& y, const Tensor& bias);
// db [cols] = the column sums of the contiguous dy [rows, cols].
void sum_columns(const Tensor& dy, const Tensor& db);

}  // namespace tpp::ops::cpu
