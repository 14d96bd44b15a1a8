// The cuDNN and cuBLAS handles of the current GPU (CUDA builds only). Each is
// made on first use, one per device, and kept for the process; every call
// here first points the handle at cuda::current_stream(), so that the work
// queues behind the kernels of the ops before it. Call under a DeviceGuard.
#pragma once

#include <cublas_v2.h>
#include <cudnn.h>

namespace tpp::ops::cuda {

cudnnHandle_t cudnn_handle();

// Also hands cuBLAS its workspace, from the caching allocator (cublasSetStream
// would otherwise drop it back to cuBLAS's own pool). The math mode is the
// caller's to set.
cublasHandle_t cublas_handle();

}  // namespace tpp::ops::cuda
