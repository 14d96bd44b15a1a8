// CUDA matrix products (CUDA builds only; nvcc-safe): GEMM on cuBLAS, and the
// bias helpers of linear layers as small kernels. The Tensor-level entry
// points mirror ops/cpu/matmul.h.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace tpp {
class Tensor;
}

namespace tpp::ops::cuda {

// c[m,n] = op(a) op(b) + beta * c, all row-major with leading dims, as
// cpu::gemm: op(a) is [m,k], a itself when !trans_a (lda >= k), else a is
// stored [k,m] (lda >= m). The tensors supply the dtype (f32 or f64), the GPU
// and the data at their offset. f32 may use TF32 tensor cores under
// MathMode::tf32; never under fp32.
void gemm_into(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const Tensor& a, int64_t lda,
               const Tensor& b, int64_t ldb, double beta, const Tensor& c, int64_t ldc);
// Every row of the contiguous [rows, cols] y = the contiguous bias [cols].
void fill_rows_with_bias(const Tensor& y, const Tensor& bias);
// db [cols] = the column sums of the contiguous dy [rows, cols];
// deterministic (a fixed summation order, in double).
void sum_columns(const Tensor& dy, const Tensor& db);

namespace kernels {

// y[r, j] = bias[j] for a contiguous [rows, cols] y.
template <class T>
void fill_rows(T* y, const T* bias, int64_t rows, int64_t cols, cudaStream_t stream);

// db[j] = sum over r of dy[r * cols + j].
template <class T>
void column_sums(const T* dy, int64_t rows, int64_t cols, T* db, cudaStream_t stream);

// c[i * ldc + j] = beta * c[i * ldc + j] for i < m, j < n; 0 when beta is 0
// (NaNs in c do not survive), as BLAS leaves c when k is 0.
template <class T>
void scale_rows(T* c, int64_t m, int64_t n, int64_t ldc, T beta, cudaStream_t stream);

}  // namespace kernels

}  // namespace tpp::ops::cuda
