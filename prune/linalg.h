// Small dense linear algebra in f64 on host vectors, for OrthP (§7.2) and the
// Jacobian singular values (§8.3): our own Householder QR and cyclic Jacobi
// eigen solver, so the engine needs no LAPACK. Matrices are row-major.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace tpp::prune::linalg {

// The Q of the reduced QR A = Q R of a tall m×n matrix A (m >= n), with the
// sign fix of Mezzadri: column j of Q times sign(R_jj), so that Q is the
// factor of the unique QR whose R has a positive diagonal (for full-rank A
// this is the same Q LAPACK's geqrf gives after the fix). A zero R_jj (a
// rank-deficient A) counts as positive, so Q keeps orthonormal columns.
// Returns Q as a row-major m×n vector.
std::vector<double> orthonormal_factor(std::span<const double> a, int64_t m, int64_t n);

struct SymmetricEigen {
  std::vector<double> values;   // ascending
  std::vector<double> vectors;  // n×n row-major, column k is the unit eigenvector of values[k]; empty unless asked
};

// Eigen-decomposition of the symmetric n×n matrix `a` (only its values are
// read; the upper and lower triangles must agree) by cyclic Jacobi rotations,
// swept until the off-diagonal mass is below 1e-15 of the whole.
SymmetricEigen symmetric_eigen(std::span<const double> a, int64_t n, bool want_vectors = false);

// The min(rows, cols) singular values of a rows×cols matrix, descending: the
// square roots of the eigenvalues of the smaller gram (A Aᵀ or Aᵀ A).
std::vector<double> singular_values(std::span<const double> a, int64_t rows, int64_t cols);

// A B for row-major A [m, k] and B [k, n] -> [m, n] (OpenBLAS).
std::vector<double> matmul(std::span<const double> a, std::span<const double> b, int64_t m, int64_t k, int64_t n);

// A Bᵀ for row-major A [m, k] and B [n, k] -> [m, n] (OpenBLAS).
std::vector<double> matmul_transposed(std::span<const double> a, std::span<const double> b, int64_t m, int64_t n,
                                      int64_t k);

}  // namespace tpp::prune::linalg
