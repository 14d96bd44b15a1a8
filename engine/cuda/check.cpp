// CUDA builds only: the libraries' error names and texts for engine/cuda/check.h.
#include "engine/cuda/check.h"

#include "engine/cuda_errors.h"
#include "engine/error.h"

namespace tpp::cuda {
namespace {

[[noreturn]] void throw_failure(const char* file, int line, const char* call, std::string_view name,
                                std::string_view text) {
  throw Error(format_gpu_call_failure(
      GpuCallFailure{.file = file, .line = line, .call = call, .error_name = name, .error_text = text}));
}

}  // namespace

void throw_cuda_failure(cudaError_t status, const char* call, const char* file, int line) {
  cudaGetLastError();  // clear a non-sticky error so that the next call starts clean
  throw_failure(file, line, call, cudaGetErrorName(status), cudaGetErrorString(status));
}

void throw_cudnn_failure(cudnnStatus_t status, const char* call, const char* file, int line) {
  char detail[1024] = {};
  cudnnGetLastErrorString(detail, sizeof detail);
  throw_failure(file, line, call, cudnnGetErrorString(status), detail);
}

void throw_cublas_failure(cublasStatus_t status, const char* call, const char* file, int line) {
  throw_failure(file, line, call, cublasGetStatusName(status), cublasGetStatusString(status));
}

const char* nccl_result_name(ncclResult_t status) {
  switch (status) {
    case ncclSuccess: return "ncclSuccess";
    case ncclUnhandledCudaError: return "ncclUnhandledCudaError";
    case ncclSystemError: return "ncclSystemError";
    case ncclInternalError: return "ncclInternalError";
    case ncclInvalidArgument: return "ncclInvalidArgument";
    case ncclInvalidUsage: return "ncclInvalidUsage";
    case ncclRemoteError: return "ncclRemoteError";
    case ncclInProgress: return "ncclInProgress";
    default: return "ncclUnknownResult";
  }
}

void throw_nccl_failure(ncclResult_t status, const char* call, const char* file, int line) {
  const char* detail = ncclGetLastError(nullptr);
  const std::string text = detail && *detail ? fmt::format("{}: {}", ncclGetErrorString(status), detail)
                                             : std::string(ncclGetErrorString(status));
  throw_failure(file, line, call, nccl_result_name(status), text);
}

}  // namespace tpp::cuda
