#include "ops/cuda/pad.h"

namespace tpp::ops::cuda::kernels {

namespace {

// y[i] = x at i's coordinates less the padding before, or value when any
// coordinate falls in the padding.
template <class T>
__global__ void constant_pad_kernel(const T* x, T* y, PadGeometry g, int64_t out_numel, T value) {
  TPP_GRID_STRIDE_LOOP(i, out_numel) {
    int64_t rest = i, source = 0, in_stride = 1;
    bool inside = true;
    for (int d = g.ndim - 1; d >= 0 && inside; --d) {
      const int64_t at = rest % g.out_sizes[d] - g.before[d];
      rest /= g.out_sizes[d];
      inside = at >= 0 && at < g.in_sizes[d];
      source += at * in_stride;
      in_stride *= g.in_sizes[d];
    }
    y[i] = inside ? x[source] : value;
  }
}

}  // namespace

void launch_constant_pad(const void* x, void* y, DType dtype, const PadGeometry& g, int64_t out_numel, double value,
                         cudaStream_t stream) {
  if (out_numel == 0) return;
  const unsigned blocks = tpp::cuda::blocks_for(out_numel);
  tpp::cuda::with_floating_type(dtype, [&](auto type) {
    using T = decltype(type);
    constant_pad_kernel<T><<<blocks, tpp::cuda::kThreadsPerBlock, 0, stream>>>(
        static_cast<const T*>(x), static_cast<T*>(y), g, out_numel, static_cast<T>(value));
  });
  TPP_CUDA_CHECK_LAUNCH();
}

}  // namespace tpp::ops::cuda::kernels
