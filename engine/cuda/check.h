// Checked calls into the CUDA runtime, cuDNN, cuBLAS and NCCL (CUDA builds
// only). A failure throws tpp::Error with one line: file:line, the call as
// written, the library's error name and description, and a hint
// (engine/cuda_errors.h):
//   TPP_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, stream));
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <nccl.h>

namespace tpp::cuda {

[[noreturn]] void throw_cuda_failure(cudaError_t status, const char* call, const char* file, int line);
[[noreturn]] void throw_cudnn_failure(cudnnStatus_t status, const char* call, const char* file, int line);
[[noreturn]] void throw_cublas_failure(cublasStatus_t status, const char* call, const char* file, int line);
[[noreturn]] void throw_nccl_failure(ncclResult_t status, const char* call, const char* file, int line);

const char* nccl_result_name(ncclResult_t status);

}  // namespace tpp::cuda

#define TPP_CUDA_CHECK(call)                                                                 \
  do {                                                                                       \
    const cudaError_t tpp_status_ = (call);                                                  \
    if (tpp_status_ != cudaSuccess) ::tpp::cuda::throw_cuda_failure(tpp_status_, #call, __FILE__, __LINE__); \
  } while (0)

#define TPP_CUDNN_CHECK(call)                                                                  \
  do {                                                                                         \
    const cudnnStatus_t tpp_status_ = (call);                                                  \
    if (tpp_status_ != CUDNN_STATUS_SUCCESS)                                                   \
      ::tpp::cuda::throw_cudnn_failure(tpp_status_, #call, __FILE__, __LINE__);                \
  } while (0)

#define TPP_CUBLAS_CHECK(call)                                                                 \
  do {                                                                                         \
    const cublasStatus_t tpp_status_ = (call);                                                 \
    if (tpp_status_ != CUBLAS_STATUS_SUCCESS)                                                  \
      ::tpp::cuda::throw_cublas_failure(tpp_status_, #call, __FILE__, __LINE__);               \
  } while (0)

// ncclInProgress passes: non-blocking communicators return it and the caller
// polls ncclCommGetAsyncError.
#define TPP_NCCL_CHECK(call)                                                                   \
  do {                                                                                         \
    const ncclResult_t tpp_status_ = (call);                                                   \
    if (tpp_status_ != ncclSuccess && tpp_status_ != ncclInProgress)                           \
      ::tpp::cuda::throw_nccl_failure(tpp_status_, #call, __FILE__, __LINE__);                 \
  } while (0)
