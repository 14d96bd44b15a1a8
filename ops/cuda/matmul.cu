#include <cstdint>

#include "engine/cuda/indexing.h"
#include "ops/cuda/matmul.h"

namespace tpp::ops::cuda::kernels {

namespace {

using ::tpp::cuda::blocks_for;
using ::tpp::cuda::kThreadsPerBlock;

// Column sums: a block covers kSumColumns adjacent columns (one warp wide, so
// each row read is coalesced) with kSumLanes threads per column, each summing
// every kSumLanes-th row; the lanes' partials are then added in lane order.
constexpr int kSumColumns = 32;
constexpr int kSumLanes = 16;

template <class T>
__global__ void fill_rows_kernel(T* y, const T* bias, int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  TPP_GRID_STRIDE_LOOP(i, n) y[i] = bias[i % cols];
}

template <class T>
__global__ void column_sums_kernel(const T* dy, int64_t rows, int64_t cols, T* db) {
  __shared__ double partial[kSumLanes][kSumColumns];
  const int64_t tiles = (cols + kSumColumns - 1) / kSumColumns;
  for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const int64_t j = tile * kSumColumns + threadIdx.x;
    double sum = 0;
    if (j < cols)
      for (int64_t r = threadIdx.y; r < rows; r += kSumLanes) sum += static_cast<double>(dy[r * cols + j]);
    partial[threadIdx.y][threadIdx.x] = sum;
    __syncthreads();
    if (threadIdx.y == 0 && j < cols) {
      double total = 0;
      for (int lane = 0; lane < kSumLanes; ++lane) total += partial[lane][threadIdx.x];
      db[j] = static_cast<T>(total);
    }
    __syncthreads();  // partial is reused by the next tile
  }
}

template <class T>
__global__ void scale_rows_kernel(T* c, int64_t m, int64_t n, int64_t ldc, T beta) {
  const int64_t count = m * n;
  TPP_GRID_STRIDE_LOOP(i, count) {
    T& v = c[(i / n) * ldc + i % n];
    v = beta == T(0) ? T(0) : beta * v;
  }
}

}  // namespace

template <class T>
void fill_rows(T* y, const T* bias, int64_t rows, int64_t cols, cudaStream_t stream) {
  if (rows == 0 || cols == 0) return;
  fill_rows_kernel<T><<<blocks_for(rows * cols), kThreadsPerBlock, 0, stream>>>(y, bias, rows, cols);
  TPP_CUDA_CHECK_LAUNCH();
}

template <class T>
void column_sums(const T* dy, int64_t rows, int64_t cols, T* db, cudaStream_t stream) {
  if (cols == 0) return;
  const int64_t tiles = (cols + kSumColumns - 1) / kSumColumns;
  const unsigned blocks = static_cast<unsigned>(tiles < 65535 * 8 ? tiles : 65535 * 8);
  column_sums_kernel<T><<<blocks, dim3(kSumColumns, kSumLanes), 0, stream>>>(dy, rows, cols, db);
  TPP_CUDA_CHECK_LAUNCH();
}

template <class T>
void scale_rows(T* c, int64_t m, int64_t n, int64_t ldc, T beta, cudaStream_t stream) {
  if (m == 0 || n == 0) return;
  scale_rows_kernel<T><<<blocks_for(m * n), kThreadsPerBlock, 0, stream>>>(c, m, n, ldc, beta);
  TPP_CUDA_CHECK_LAUNCH();
}

#define TPP_INSTANTIATE(T)                                                            \
  template void fill_rows<T>(T*, const T*, int64_t, int64_t, cudaStream_t);          \
  template void column_sums<T>(const T*, int64_t, int64_t, T*, cudaStream_t);        \
  template void scale_rows<T>(T*, int64_t, int64_t, int64_t, T, cudaStream_t);
TPP_INSTANTIATE(float)
TPP_INSTANTIATE(double)
#undef TPP_INSTANTIATE

}  // namespace tpp::ops::cuda::kernels
