#include "ops/cuda/loss.h"

#include "engine/cuda/indexing.h"
#include "engine/cuda/block_reduce.cuh"

namespace tpp::ops::cuda::kernels {

namespace device = tpp::cuda::device;

namespace {

using tpp::cuda::with_floating_type;

using device::block_reduce;

__device__ bool target_in_range(int64_t t, int64_t c) { return t >= 0 && t < c; }

// Per row, with lse = log sum exp(x): -log p_t = lse - x_t and the mean over
// classes of -log p_j = lse - mean(x), as the CPU kernel.
template <class T>
__global__ void cross_entropy_rows_kernel(const T* logits, const int64_t* target, T* probs, double* row_loss,
                                          TargetFault* fault, int64_t n, int64_t c, FusedCrossEntropy opts) {
  for (int64_t r = blockIdx.x; r < n; r += gridDim.x) {
    const T* x = logits + r * c;
    T* p = probs + r * c;
    T m = device::negative_infinity<T>();
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) m = device::Max{}(m, x[j]);
    m = block_reduce(m, device::Max{}, device::negative_infinity<T>());
    double sum_exp = 0, sum_x = 0;
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
      const T e = device::exp_of(x[j] - m);
      p[j] = e;
      sum_exp += e;
      sum_x += x[j];
    }
    sum_exp = block_reduce(sum_exp, device::Sum{}, 0.0);
    sum_x = block_reduce(sum_x, device::Sum{}, 0.0);
    const T inv = static_cast<T>(1.0 / sum_exp);
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) p[j] *= inv;  // this thread's own e
    if (threadIdx.x == 0) {
      const int64_t t = target[r];
      if (t == opts.ignore_index) {
        row_loss[r] = 0;  // even where the logits are not finite
      } else if (!target_in_range(t, c)) {
        if (atomicCAS(&fault->flagged, 0ull, 1ull) == 0ull) {
          fault->position = r;
          fault->value = t;
          fault->classes = c;
        }
        row_loss[r] = CUDART_NAN;
      } else {
        // (m - x_t) + log sum exp(x - m), not lse - x_t, as the CPU: when x_t is
        // the maximum and the row's loss tiny, lse would round at the size of m first.
        const double log_sum = log(sum_exp);
        const double nll = (static_cast<double>(m) - static_cast<double>(x[t])) + log_sum;
        const double uniform = (static_cast<double>(m) - sum_x / static_cast<double>(c)) + log_sum;
        // No smoothing term without smoothing (as the CPU): 0 * inf is NaN.
        row_loss[r] = opts.smoothing > 0 ? (1 - opts.smoothing) * nll + opts.smoothing * uniform : nll;
      }
    }
  }
}

// loss[0] = the sum of row_loss over divisor[0]: the rows not ignored for a
// mean, else 1; one block.
template <class T>
__global__ void reduce_rows_kernel(const double* row_loss, const int64_t* target, T* loss, double* divisor, int64_t n,
                                   FusedCrossEntropy opts) {
  double total = 0, counted = 0;
  for (int64_t r = threadIdx.x; r < n; r += blockDim.x) {
    total += row_loss[r];
    counted += target[r] == opts.ignore_index ? 0 : 1;
  }
  total = block_reduce(total, device::Sum{}, 0.0);
  counted = block_reduce(counted, device::Sum{}, 0.0);
  if (threadIdx.x == 0) {
    const double by = opts.average ? counted : 1.0;
    loss[0] = static_cast<T>(total / by);  // 0 / 0 = NaN when a mean counts no row, as PyTorch
    divisor[0] = by;
  }
}

// An ignored row's gradient is 0 times its softmax: 0, or NaN where the
// softmax is (as the CPU, whose log_softmax runs over every row).
template <class T>
__global__ void cross_entropy_backward_kernel(const T* probs, const int64_t* target, const double* divisor,
                                              const T* dloss, T* dx, int64_t n, int64_t c, FusedCrossEntropy opts) {
  const T s = static_cast<T>(static_cast<double>(dloss[0]) / divisor[0]);
  const T off = static_cast<T>(opts.smoothing / static_cast<double>(c));
  const T on = static_cast<T>(1 - opts.smoothing) + off;
  TPP_GRID_STRIDE_LOOP(i, n * c) {
    const int64_t t = target[i / c], j = i % c;
    if (t == opts.ignore_index) dx[i] = probs[i] * static_cast<T>(0);
    else dx[i] = target_in_range(t, c) ? (probs[i] - (j == t ? on : off)) * s : static_cast<T>(CUDART_NAN);
  }
}

}  // namespace

void launch_cross_entropy_forward(const void* logits, const int64_t* target, void* probs, double* row_loss,
                                  void* loss, double* divisor, TargetFault* fault, DType dtype, int64_t n, int64_t c,
                                  const FusedCrossEntropy& opts, cudaStream_t stream) {
  with_floating_type(dtype, [&](auto type) {
    using T = decltype(type);
    if (n > 0) {  // also with no classes: every target not ignored is then out of range, which the kernel reports
      cross_entropy_rows_kernel<T><<<device::row_blocks(n), device::row_threads(c), 0, stream>>>(
          static_cast<const T*>(logits), target, static_cast<T*>(probs), row_loss, fault, n, c, opts);
      TPP_CUDA_CHECK_LAUNCH();
    }
    reduce_rows_kernel<T><<<1, device::kMaxRowThreads, 0, stream>>>(row_loss, target, static_cast<T*>(loss), divisor,
                                                                    n, opts);
    TPP_CUDA_CHECK_LAUNCH();
  });
}

void launch_cross_entropy_backward(const void* probs, const int64_t* target, const double* divisor, const void* dloss,
                                   void* dlogits, DType dtype, int64_t n, int64_t c, const FusedCrossEntropy& opts,
                                   cudaStream_t stream) {
  if (n * c == 0) return;
  with_floating_type(dtype, [&](auto type) {
    using T = decltype(type);
    cross_entropy_backward_kernel<T><<<tpp::cuda::blocks_for(n * c), tpp::cuda::kThreadsPerBlock, 0, stream>>>(
        static_cast<const T*>(probs), target, divisor, static_cast<const T*>(dloss), static_cast<T*>(dlogits), n, c,
        opts);
  });
  TPP_CUDA_CHECK_LAUNCH();
}

}  // namespace tpp::ops::cuda::kernels
