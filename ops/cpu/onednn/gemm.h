// f32 GEMM on oneDNN's sgemm: JIT kernels for the instruction set oneDNN
// finds on the CPU itself, so that it is fast on any x86-64 whatever
// OpenBLAS makes of the CPU (Debian 12's OpenBLAS 0.3.21 falls back to its
// SSE3 "Prescott" kernels on CPUs it does not know unless OPENBLAS_CORETYPE
// is set, several times slower). f64 stays on OpenBLAS (oneDNN has no dgemm).
#pragma once

#include <cstdint>

namespace tpp::ops::cpu::onednn {

// C[m,n] = alpha * op(A) op(B) + beta * C, all row-major, as ops/cpu/matmul.h's
// gemm: on the calling thread (ops/cpu/matmul.h's parallel_gemm splits big
// products over the OpenMP threads itself).
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

}  // namespace tpp::ops::cpu::onednn
