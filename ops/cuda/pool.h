// CUDA pooling kernels over contiguous NCHW tensors (CUDA builds only; free of
// fmt for nvcc). Same work and arguments as ops/cpu/pool.h.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "engine/dtype_core.h"
#include "ops/pool_types.h"

namespace tpp {
class Tensor;
}

namespace tpp::ops::cuda {

// y [planes, out_h, out_w]; argmax holds each maximum's flat index in its input plane.
void max_pool2d_forward(const Tensor& x, const PoolGeometry& g, const Tensor& y, const Tensor& argmax);
void max_pool2d_backward(const Tensor& dy, const Tensor& argmax, const PoolGeometry& g, const Tensor& dx);

void avg_pool2d_forward(const Tensor& x, const PoolGeometry& g, const Tensor& y);
void avg_pool2d_backward(const Tensor& dy, const PoolGeometry& g, const Tensor& dx);

// Adaptive average pooling: only planes, in_h/in_w and out_h/out_w of g are read.
void adaptive_avg_pool2d_forward(const Tensor& x, const PoolGeometry& g, const Tensor& y);
void adaptive_avg_pool2d_backward(const Tensor& dy, const PoolGeometry& g, const Tensor& dx);

namespace kernels {

// Forward: one thread per output element. Backward: one thread per input
// element, gathering from the windows that cover it in the order the CPU
// kernel scatters (no atomics: windows overlap when stride < kernel).
void launch_max_pool2d_forward(const void* x, void* y, int64_t* argmax, DType dtype, const PoolGeometry& g,
                               cudaStream_t stream);
void launch_max_pool2d_backward(const void* dy, const int64_t* argmax, void* dx, DType dtype, const PoolGeometry& g,
                                cudaStream_t stream);
void launch_avg_pool2d_forward(const void* x, void* y, DType dtype, const PoolGeometry& g, cudaStream_t stream);
void launch_avg_pool2d_backward(const void* dy, void* dx, DType dtype, const PoolGeometry& g, cudaStream_t stream);
void launch_adaptive_avg_pool2d_forward(const void* x, void* y, DType dtype, const PoolGeometry& g,
                                        cudaStream_t stream);
void launch_adaptive_avg_pool2d_backward(const void* dy, void* dx, DType dtype, const PoolGeometry& g,
                                         cudaStream_t stream);

}  // namespace kernels

}  // namespace tpp::ops::cuda
