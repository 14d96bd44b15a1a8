#include "ops/cuda/batch_norm.h"

#include "engine/cuda/indexing.h"
#include "engine/cuda/block_reduce.cuh"

namespace tpp::ops::cuda::kernels {

namespace device = tpp::cuda::device;

namespace {

using tpp::cuda::with_floating_type;

using device::block_reduce;
using device::Sum;
using tpp::cuda::blocks_for;
using tpp::cuda::kThreadsPerBlock;

// Up to 512 threads per channel: a network has few channels and many values
// in each, so the blocks must be wide to fill the GPU.
constexpr int kMaxChannelThreads = 512;

// Where the k-th value of channel c lies in [N, C, HW].
__device__ int64_t channel_offset(const BatchNormShape& s, int64_t c, int64_t k) {
  const int64_t n = k / s.hw;
  return (n * s.c + c) * s.hw + (k - n * s.hw);
}

template <class T>
__device__ double value_or(const T* p, int64_t i, double fallback) {
  return p ? static_cast<double>(p[i]) : fallback;
}

// Σ (x - shift) and Σ (x - shift)² over channel c, block-wide.
template <class T>
__device__ void shifted_sums(const T* x, const BatchNormShape& s, int64_t c, double shift, double& s1, double& s2) {
  double a = 0, b = 0;
  for (int64_t k = threadIdx.x; k < s.n * s.hw; k += blockDim.x) {
    const double d = static_cast<double>(x[channel_offset(s, c, k)]) - shift;
    a += d;
    b += d * d;
  }
  s1 = block_reduce(a, Sum{}, 0.0);
  s2 = block_reduce(b, Sum{}, 0.0);
}

// Mean and biased variance of channel c (at least one value), block-wide, in
// two passes as the CPU kernel: the mean (around the channel's first value),
// then the sums around it with the first pass's rounding corrected.
template <class T>
__device__ void channel_moments(const T* x, const BatchNormShape& s, int64_t c, double& mean, double& var) {
  const double count = static_cast<double>(s.n * s.hw);
  const double shift = static_cast<double>(x[c * s.hw]);
  double s1, s2, d1, d2;
  shifted_sums(x, s, c, shift, s1, s2);
  const double first = shift + s1 / count;
  shifted_sums(x, s, c, first, d1, d2);
  mean = first + d1 / count;
  var = fmax((d2 - d1 * d1 / count) / count, 0.0);
}

// y = (x - mean) * scale + shift over channel c, in T as the CPU kernel.
template <class T>
__device__ void normalize_channel(const T* x, T* y, const BatchNormShape& s, int64_t c, double mean, double scale,
                                  double shift) {
  const SplitMean<T> m(mean);
  const T a = static_cast<T>(scale), b = static_cast<T>(shift);
  for (int64_t k = threadIdx.x; k < s.n * s.hw; k += blockDim.x) {
    const int64_t at = channel_offset(s, c, k);
    y[at] = m.centre(x[at]) * a + b;
  }
}

template <class T>
__device__ T blend(T running, double value, double momentum) {
  return static_cast<T>((1 - momentum) * static_cast<double>(running) + momentum * value);
}

template <class T>
__global__ void forward_train_kernel(const T* x, const T* weight, const T* bias, T* y, double* mean_out,
                                     double* invstd_out, T* running_mean, T* running_var, BatchNormShape s,
                                     double eps, double momentum) {
  const double count = static_cast<double>(s.n * s.hw);
  for (int64_t c = blockIdx.x; c < s.c; c += gridDim.x) {
    double mean, var;
    channel_moments(x, s, c, mean, var);
    const double invstd = 1.0 / sqrt(var + eps);
    if (threadIdx.x == 0) {
      mean_out[c] = mean;
      invstd_out[c] = invstd;
      if (running_mean) running_mean[c] = blend(running_mean[c], mean, momentum);
      if (running_var) running_var[c] = blend(running_var[c], var * count / (count - 1), momentum);
    }
    normalize_channel(x, y, s, c, mean, invstd * value_or(weight, c, 1.0), value_or(bias, c, 0.0));
  }
}

template <class T>
__global__ void stats_from_running_kernel(const T* running_mean, const T* running_var, double* mean,
                                          double* invstd, int64_t channels, double eps) {
  TPP_GRID_STRIDE_LOOP(c, channels) {
    mean[c] = static_cast<double>(running_mean[c]);
    invstd[c] = 1.0 / sqrt(static_cast<double>(running_var[c]) + eps);
  }
}

// One thread per element.
template <class T>
__global__ void forward_eval_kernel(const T* x, const T* weight, const T* bias, const double* mean,
                                    const double* invstd, T* y, BatchNormShape s) {
  TPP_GRID_STRIDE_LOOP(i, s.n * s.c * s.hw) {
    const int64_t c = i / s.hw % s.c;
    const SplitMean<T> m(mean[c]);
    const T a = static_cast<T>(invstd[c] * value_or(weight, c, 1.0));
    const T b = static_cast<T>(value_or(bias, c, 0.0));
    y[i] = m.centre(x[i]) * a + b;
  }
}

// Σ dy and Σ dy·(x − mean) over channel c, block-wide.
template <class T>
__device__ void channel_dy_sums(const T* x, const T* dy, const BatchNormShape& s, int64_t c, double mean,
                                double& sum_dy, double& sum_dy_centred) {
  double a = 0, b = 0;
  for (int64_t k = threadIdx.x; k < s.n * s.hw; k += blockDim.x) {
    const int64_t at = channel_offset(s, c, k);
    a += static_cast<double>(dy[at]);
    b += static_cast<double>(dy[at]) * (static_cast<double>(x[at]) - mean);
  }
  sum_dy = block_reduce(a, Sum{}, 0.0);
  sum_dy_centred = block_reduce(b, Sum{}, 0.0);
}

// dx = a·dy + k·(x − mean) + k0 over channel c.
template <class T>
__device__ void write_channel_dx(T* dx, const T* x, const T* dy, const BatchNormShape& s, int64_t c, double a,
                                 double k, double k0, double mean) {
  const T ta = static_cast<T>(a), tk = static_cast<T>(k), tk0 = static_cast<T>(k0);
  const SplitMean<T> m(mean);
  for (int64_t j = threadIdx.x; j < s.n * s.hw; j += blockDim.x) {
    const int64_t at = channel_offset(s, c, j);
    dx[at] = ta * dy[at] + tk * m.centre(x[at]) + tk0;
  }
}

// With xhat = (x - mean) * invstd and M values per channel:
//   dbias = sum dy, dweight = sum dy * xhat,
//   dx = w * invstd * (dy - [sum dy + xhat * sum dy * xhat] / M)   (batch statistics)
//   dx = w * invstd * dy                                             (fixed statistics)
template <class T>
__global__ void backward_kernel(const T* x, const T* dy, const T* weight, const double* mean_in,
                                const double* invstd_in, bool batch_stats, T* dx, T* dweight, T* dbias,
                                BatchNormShape s) {
  const double count = static_cast<double>(s.n * s.hw);
  const bool need_sums = batch_stats || dweight || dbias;  // the same for every block
  for (int64_t c = blockIdx.x; c < s.c; c += gridDim.x) {
    const double mean = mean_in[c], invstd = invstd_in[c];
    double sum_dy = 0, sum_dy_centred = 0;
    if (need_sums) channel_dy_sums(x, dy, s, c, mean, sum_dy, sum_dy_centred);
    const double sum_dy_xhat = sum_dy_centred * invstd;
    if (threadIdx.x == 0) {
      if (dweight) dweight[c] = static_cast<T>(sum_dy_xhat);
      if (dbias) dbias[c] = static_cast<T>(sum_dy);
    }
    if (!dx) continue;
    const double a = value_or(weight, c, 1.0) * invstd;
    const double k = batch_stats ? -a * sum_dy_xhat * invstd / count : 0.0;
    const double k0 = batch_stats ? -a * sum_dy / count : 0.0;
    write_channel_dx(dx, x, dy, s, c, a, k, k0, mean);
  }
}

template <class T>
__global__ void local_moments_kernel(const T* x, double* moments, BatchNormShape s) {
  const int64_t count = s.n * s.hw;  // the same for every block
  for (int64_t c = blockIdx.x; c < s.c; c += gridDim.x) {
    double mean = 0, var = 0;
    if (count > 0) channel_moments(x, s, c, mean, var);
    if (threadIdx.x == 0) {
      moments[c] = static_cast<double>(count);
      moments[s.c + c] = mean;
      moments[2 * s.c + c] = var * static_cast<double>(count);
    }
  }
}

template <class T>
__global__ void backward_sums_kernel(const T* x, const T* dy, const double* mean, const double* invstd, double* sums,
                                     T* dweight, T* dbias, BatchNormShape s) {
  for (int64_t c = blockIdx.x; c < s.c; c += gridDim.x) {
    double sum_dy, sum_dy_centred;
    channel_dy_sums(x, dy, s, c, mean[c], sum_dy, sum_dy_centred);
    if (threadIdx.x == 0) {
      sums[c] = sum_dy;
      sums[s.c + c] = sum_dy_centred;
      if (dweight) dweight[c] = static_cast<T>(sum_dy_centred * invstd[c]);
      if (dbias) dbias[c] = static_cast<T>(sum_dy);
    }
  }
}

// One thread per element: dx = w * invstd * (dy - [sum dy + xhat * sum dy * xhat] / count).
template <class T>
__global__ void backward_input_kernel(const T* x, const T* dy, const T* weight, const double* mean,
                                      const double* invstd_in, const double* sums, double count, T* dx,
                                      BatchNormShape s) {
  TPP_GRID_STRIDE_LOOP(i, s.n * s.c * s.hw) {
    const int64_t c = i / s.hw % s.c;
    const double invstd = invstd_in[c];
    const double a = value_or(weight, c, 1.0) * invstd;
    const double k = -a * sums[s.c + c] * invstd * invstd / count;  // sum dy*xhat = sum_dy_centred * invstd
    const double k0 = -a * sums[c] / count;
    dx[i] = static_cast<T>(a) * dy[i] + static_cast<T>(k) * SplitMean<T>(mean[c]).centre(x[i]) + static_cast<T>(k0);
  }
}

template <class T>
__global__ void update_running_stat_kernel(T* running, const double* value, int64_t channels, double momentum) {
  TPP_GRID_STRIDE_LOOP(c, channels) running[c] = blend(running[c], value[c], momentum);
}

template <class T>
const T* typed(const void* p) {
  return static_cast<const T*>(p);
}
template <class T>
T* typed(void* p) {
  return static_cast<T*>(p);
}

unsigned channel_blocks(const BatchNormShape& s) { return device::row_blocks(s.c); }
int channel_threads(const BatchNormShape& s) { return device::row_threads(s.n * s.hw, kMaxChannelThreads); }

}  // namespace

void launch_batch_norm_forward_train(const void* x, const void* weight, const void* bias, void* y, double* mean,
                                     double* invstd, void* running_mean, void* running_var, DType dtype,
                                     const BatchNormShape& s, double eps, double momentum, cudaStream_t stream) {
  if (s.c == 0 || s.n * s.hw == 0) return;  // the op refuses empty channels in training
  with_floating_type(dtype, [&](auto type) {
    using T = decltype(type);
    forward_train_kernel<T><<<channel_blocks(s), channel_threads(s), 0, stream>>>(
        typed<T>(x), typed<T>(weight), typed<T>(bias), typed<T>(y), mean, invstd, typed<T>(running_mean),
        typed<T>(running_var), s, eps, momentum);
  });
  TPP_CUDA_CHECK_LAUNCH();
}

void launch_batch_norm_stats_from_running(const void* running_mean, const void* running_var, double* mean,
                                          double* invstd, DType dtype, int64_t channels, double eps,
                                          cudaStream_t stream) {
  if (channels == 0) return;
  with_floating_type(dtype, [&](auto type) {
    using T = decltype(type);
    stats_from_running_kernel<T><<<blocks_for(channels), kThreadsPerBlock, 0, stream>>>(
        typed<T>(running_mean), typed<T>(running_var), mean, invstd, channels, eps);
  });
  TPP_CUDA_CHECK_LAUNCH();
}

void launch_batch_norm_forward_eval(const void* x, const void* weight, const void* bias, const double* mean,
                                    const double* invstd, void* y, DType dtype, const BatchNormShape& s,
                                    cudaStream_t stream) {
  const int64_t total = s.n * s.c * s.hw;
  if (total == 0) return;
  with_floating_type(dtype, [&](auto type) {
    using T = decltype(type);
    forward_eval_kernel<T><<<blocks_for(total), kThreadsPerBlock, 0, stream>>>(
        typed<T>(x), typed<T>(weight), typed<T>(bias), mean, invstd, typed<T>(y), s);
  });
  TPP_CUDA_CHECK_LAUNCH();
}

void launch_batch_norm_backward(const void* x, const void* dy, const void* weight, const double* mean,
                                const double* invstd, bool batch_stats, void* dx, void* dweight, void* dbias,
                                DType dtype, const BatchNormShape& s, cudaStream_t stream) {
  if (s.c == 0) return;  // empty channels still get dweight = dbias = 0
  with_floating_type(dtype, [&](auto type) {
    using T = decltype(type);
    backward_kernel<T><<<channel_blocks(s), channel_threads(s), 0, stream>>>(
        typed<T>(x), typed<T>(dy), typed<T>(weight), mean, invstd, batch_stats, typed<T>(dx), typed<T>(dweight),
        typed<T>(dbias), s);
  });
  TPP_CUDA_CHECK_LAUNCH();
}

void launch_batch_norm_local_moments(const void* x, double* moments, DType dtype, const BatchNormShape& s,
                                     cudaStream_t stream) {
  if (s.c == 0) return;
  with_floating_type(dtype, [&](auto type) {
    using T = decltype(type);
    local_moments_kernel<T><<<channel_blocks(s), channel_threads(s), 0, stream>>>(typed<T>(x), moments, s);
  });
  TPP_CUDA_CHECK_LAUNCH();
}

void launch_batch_norm_backward_sums(const void* x, const void* dy, const double* mean, const double* invstd,
                                     double* sums, void* dweight, void* dbias, DType dtype, const BatchNormShape& s,
                                     cudaStream_t stream) {
  if (s.c == 0) return;
  with_floating_type(dtype, [&](auto type) {
    using T = decltype(type);
    backward_sums_kernel<T><<<channel_blocks(s), channel_threads(s), 0, stream>>>(
        typed<T>(x), typed<T>(dy), mean, invstd, sums, typed<T>(dweight), typed<T>(dbias), s);
  });
  TPP_CUDA_CHECK_LAUNCH();
}

void launch_batch_norm_backward_input(const void* x, const void* dy, const void* weight, const double* mean,
                                      const double* invstd, const double* sums, double count, void* dx, DType dtype,
                                      const BatchNormShape& s, cudaStream_t stream) {
  const int64_t total = s.n * s.c * s.hw;
  if (total == 0) return;
  with_floating_type(dtype, [&](auto type) {
    using T = decltype(type);
    backward_input_kernel<T><<<blocks_for(total), kThreadsPerBlock, 0, stream>>>(
        typed<T>(x), typed<T>(dy), typed<T>(weight), mean, invstd, sums, count, typed<T>(dx), s);
  });
  TPP_CUDA_CHECK_LAUNCH();
}

void launch_update_running_stat(void* running, const double* value, DType dtype, int64_t channels, double momentum,
                                cudaStream_t stream) {
  if (channels == 0) return;
  with_floating_type(dtype, [&](auto type) {
    using T = decltype(type);
    update_running_stat_kernel<T><<<blocks_for(channels), kThreadsPerBlock, 0, stream>>>(typed<T>(running), value,
                                                                                        channels, momentum);
  });
  TPP_CUDA_CHECK_LAUNCH();
}

}  // namespace tpp::ops::cuda::kernels
