#include "prune/linalg.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/error.h"

namespace tpp::prune::linalg {

namespace {

using Index = std::size_t;

Index at(int64_t i) { return static_cast<Index>(i); }

double dot(const double* x, const double* y, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += x[i] * y[i];
  return s;
}

// Blocked Householder QR with the compact WY form (as LAPACK's geqrf/orgqr,
// written from the textbook algorithm): a panel of kPanel columns is reduced
// one reflector H_j = I − τ_j v_j v_jᵀ at a time, the panel's product
// H_k0 ⋯ H_k1 = I − V T Vᵀ (T upper triangular) is formed, and the trailing
// columns are updated with matrix products, so the O(m n²) work runs in dgemm.
constexpr int64_t kPanel = 32;

int blas(int64_t v) { return static_cast<int>(v); }

struct Panel {
  int64_t first = 0, width = 0;  // columns first .. first + width − 1
  std::vector<double> v;  // (m − first) × width, column-major; reflector j in column j − first, zero above row j
  std::vector<double> t;  // width × width, column-major, upper triangular
};

// Reduces the panel's columns of the column-major m×n `a` in place (R on and
// above the diagonal) and returns its V, T; r_diagonal gets R_jj.
Panel reduce_panel(std::vector<double>& a, int64_t m, int64_t first, int64_t width, std::vector<double>& r_diagonal) {
  const int64_t rows = m - first;
  Panel panel{first, width, std::vector<double>(at(rows * width), 0.0), std::vector<double>(at(width * width), 0.0)};
  std::vector<double> tau(at(width), 0.0);
  for (int64_t c = 0; c < width; ++c) {
    const int64_t j = first + c, len = m - j;
    double* x = a.data() + at(j * m + j);
    const double norm = std::sqrt(dot(x, x, len));
    if (norm == 0) continue;  // H_j = I (τ = 0, v = 0)
    // Reflect x onto alpha·e1 with alpha of the opposite sign to x0: no cancellation in v0.
    const double alpha = x[0] < 0 ? norm : -norm;
    double* v = panel.v.data() + at(c * rows + (j - first));
    std::copy(x, x + len, v);
    v[0] -= alpha;
    const double v_norm = std::sqrt(dot(v, v, len));
    for (int64_t i = 0; i < len; ++i) v[i] /= v_norm;
    tau[at(c)] = 2;
    for (int64_t k = j + 1; k < first + width; ++k) {  // the rest of the panel
      double* col = a.data() + at(k * m + j);
      const double d = 2 * dot(v, col, len);
      for (int64_t i = 0; i < len; ++i) col[i] -= d * v[i];
    }
    x[0] = alpha;
    std::fill(x + 1, x + len, 0.0);
    r_diagonal[at(j)] = alpha;
  }
  // T: column c is (−τ_c T[0:c, 0:c] V[:, 0:c]ᵀ v_c, τ_c).
  std::vector<double> z(at(width));
  for (int64_t c = 0; c < width; ++c) {
    double* t_col = panel.t.data() + at(c * width);
    t_col[c] = tau[at(c)];
    if (tau[at(c)] == 0 || c == 0) continue;
    cblas_dgemv(CblasColMajor, CblasTrans, blas(rows), blas(c), -tau[at(c)], panel.v.data(), blas(rows),
                panel.v.data() + at(c * rows), 1, 0.0, t_col, 1);
    cblas_dtrmv(CblasColMajor, CblasUpper, CblasNoTrans, CblasNonUnit, blas(c), panel.t.data(), blas(width), t_col, 1);
  }
  return panel;
}

// B ← (I − V op(T) Vᵀ) B for the block B = rows first..m−1, columns
// col0..n−1 of the column-major m×n `b`; op(T) = Tᵀ applies Qᵀ (reduction), T applies Q.
void apply_panel(const Panel& panel, std::vector<double>& b, int64_t m, int64_t n, int64_t col0, bool transpose_t) {
  const int64_t rows = m - panel.first, cols = n - col0, width = panel.width;
  if (cols <= 0) return;
  double* block = b.data() + at(col0 * m + panel.first);
  std::vector<double> w(at(width * cols));
  cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, blas(width), blas(cols), blas(rows), 1.0, panel.v.data(),
              blas(rows), block, blas(m), 0.0, w.data(), blas(width));
  cblas_dtrmm(CblasColMajor, CblasLeft, CblasUpper, transpose_t ? CblasTrans : CblasNoTrans, CblasNonUnit, blas(width),
              blas(cols), 1.0, panel.t.data(), blas(width), w.data(), blas(width));
  cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, blas(rows), blas(cols), blas(width), -1.0, panel.v.data(),
              blas(rows), w.data(), blas(width), 1.0, block, blas(m));
}

// Rotates rows/columns p and q of the symmetric n×n `a` so that a[p][q] = 0
// (A' = Pᵀ A P with P_pp = P_qq = c, P_pq = s, P_qp = −s), and V' = V P.
void jacobi_rotate(std::vector<double>& a, std::vector<double>* v, int64_t n, int64_t p, int64_t q) {
  const double apq = a[at(p * n + q)];
  const double theta = (a[at(q * n + q)] - a[at(p * n + p)]) / (2 * apq);
  const double t = (theta >= 0 ? 1.0 : -1.0) / (std::abs(theta) + std::sqrt(theta * theta + 1));
  const double c = 1 / std::sqrt(t * t + 1), s = t * c;
  for (int64_t k = 0; k < n; ++k) {  // columns: A P
    const double akp = a[at(k * n + p)], akq = a[at(k * n + q)];
    a[at(k * n + p)] = c * akp - s * akq;
    a[at(k * n + q)] = s * akp + c * akq;
  }
  for (int64_t k = 0; k < n; ++k) {  // rows: Pᵀ (A P)
    const double apk = a[at(p * n + k)], aqk = a[at(q * n + k)];
    a[at(p * n + k)] = c * apk - s * aqk;
    a[at(q * n + k)] = s * apk + c * aqk;
  }
  a[at(p * n + q)] = a[at(q * n + p)] = 0;
  if (!v) return;
  for (int64_t k = 0; k < n; ++k) {
    const double vkp = (*v)[at(k * n + p)], vkq = (*v)[at(k * n + q)];
    (*v)[at(k * n + p)] = c * vkp - s * vkq;
    (*v)[at(k * n + q)] = s * vkp + c * vkq;
  }
}

double off_diagonal_mass(const std::vector<double>& a, int64_t n) {
  double s = 0;
  for (int64_t p = 0; p < n; ++p)
    for (int64_t q = 0; q < n; ++q)
      if (p != q) s += a[at(p * n + q)] * a[at(p * n + q)];
  return s;
}

}  // namespace

std::vector<double> orthonormal_factor(std::span<const double> a, int64_t m, int64_t n) {
  TPP_CHECK(m >= n && n >= 0 && a.size() == at(m * n), "orthonormal_factor: expected a tall {}x{} matrix of {} values",
            m, n, m * n);
  std::vector<double> columns(at(m * n));  // A, column-major; becomes R
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) columns[at(j * m + i)] = a[at(i * n + j)];

  std::vector<double> r_diagonal(at(n), 0.0);
  std::vector<Panel> panels;
  for (int64_t first = 0; first < n; first += kPanel) {
    panels.push_back(reduce_panel(columns, m, first, std::min(kPanel, n - first), r_diagonal));
    apply_panel(panels.back(), columns, m, n, first + panels.back().width, /*transpose_t=*/true);
  }

  // Q = P_0 P_1 ⋯ E (P_b = I − V_b T_b V_bᵀ, E the first n columns of I),
  // applied right to left; P_b only mixes rows ≥ its first column, where the
  // columns before it are still zero.
  std::vector<double> q(at(m * n), 0.0);
  for (int64_t j = 0; j < n; ++j) q[at(j * m + j)] = 1;
  for (auto panel = panels.rbegin(); panel != panels.rend(); ++panel)
    apply_panel(*panel, q, m, n, panel->first, /*transpose_t=*/false);

  std::vector<double> out(at(m * n));
  for (int64_t j = 0; j < n; ++j) {
    const double sign = r_diagonal[at(j)] < 0 ? -1.0 : 1.0;
    for (int64_t i = 0; i < m; ++i) out[at(i * n + j)] = sign * q[at(j * m + i)];
  }
  return out;
}

SymmetricEigen symmetric_eigen(std::span<const double> a_in, int64_t n, bool want_vectors) {
  TPP_CHECK(n >= 0 && a_in.size() == at(n * n), "symmetric_eigen: expected {}x{} = {} values, got {}", n, n, n * n,
            a_in.size());
  std::vector<double> a(a_in.begin(), a_in.end());
  std::vector<double> v;
  if (want_vectors) {
    v.assign(at(n * n), 0.0);
    for (int64_t i = 0; i < n; ++i) v[at(i * n + i)] = 1;
  }
  const double total = std::inner_product(a.begin(), a.end(), a.begin(), 0.0);
  constexpr int kMaxSweeps = 100;
  for (int sweep = 0; sweep < kMaxSweeps && off_diagonal_mass(a, n) > 1e-30 * total; ++sweep)
    for (int64_t p = 0; p < n - 1; ++p)
      for (int64_t q = p + 1; q < n; ++q)
        if (a[at(p * n + q)] != 0) jacobi_rotate(a, want_vectors ? &v : nullptr, n, p, q);

  std::vector<int64_t> order(at(n));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return a[at(x * n + x)] < a[at(y * n + y)]; });
  SymmetricEigen result;
  for (const int64_t k : order) result.values.push_back(a[at(k * n + k)]);
  if (want_vectors) {
    result.vectors.resize(at(n * n));
    for (int64_t col = 0; col < n; ++col)
      for (int64_t i = 0; i < n; ++i) result.vectors[at(i * n + col)] = v[at(i * n + order[at(col)])];
  }
  return result;
}

std::vector<double> matmul_transposed(std::span<const double> a, std::span<const double> b, int64_t m, int64_t n,
                                      int64_t k) {
  TPP_CHECK(a.size() == at(m * k) && b.size() == at(n * k),
            "matmul_transposed: sizes do not match [{}, {}] x [{}, {}]ᵀ", m, k, n, k);
  std::vector<double> c(at(m * n), 0.0);
  if (m == 0 || n == 0 || k == 0) return c;
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k),
              1.0, a.data(), static_cast<int>(k), b.data(), static_cast<int>(k), 0.0, c.data(), static_cast<int>(n));
  return c;
}

std::vector<double> matmul(std::span<const double> a, std::span<const double> b, int64_t m, int64_t k, int64_t n) {
  TPP_CHECK(a.size() == at(m * k) && b.size() == at(k * n), "matmul: sizes do not match [{}, {}] x [{}, {}]", m, k, k,
            n);
  std::vector<double> c(at(m * n), 0.0);
  if (m == 0 || n == 0 || k == 0) return c;
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k),
              1.0, a.data(), static_cast<int>(k), b.data(), static_cast<int>(n), 0.0, c.data(), static_cast<int>(n));
  return c;
}

std::vector<double> singular_values(std::span<const double> a, int64_t rows, int64_t cols) {
  TPP_CHECK(rows >= 0 && cols >= 0 && a.size() == at(rows * cols),
            "singular_values: expected {}x{} = {} values, got {}", rows, cols, rows * cols, a.size());
  std::vector<double> gram;
  int64_t small = rows;
  if (rows <= cols) {
    gram = matmul_transposed(a, a, rows, rows, cols);  // A Aᵀ
  } else {
    std::vector<double> transposed(a.size());  // Aᵀ, so that Aᵀ A = (Aᵀ)(Aᵀ)ᵀ
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) transposed[at(j * rows + i)] = a[at(i * cols + j)];
    gram = matmul_transposed(transposed, transposed, cols, cols, rows);
    small = cols;
  }
  std::vector<double> values = symmetric_eigen(gram, small).values;
  for (double& e : values) e = std::sqrt(std::max(e, 0.0));
  std::reverse(values.begin(), values.end());
  return values;
}

}  // namespace tpp::prune::linalg
