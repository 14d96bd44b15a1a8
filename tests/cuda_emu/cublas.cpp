// The cuBLAS entry points the engine calls, as host reference
// implementations written from NVIDIA's cuBLAS documentation: handles,
// stream/workspace/math-mode setters, and column-major S/D GEMM with
// transposes, leading dimensions and alpha/beta (beta = 0 never reads C),
// computed by OpenBLAS.
// Work runs in the handle's stream order.
#include <cblas.h>
#include <cublas_v2.h>

#include <cstdint>
#include <mutex>
#include <set>
#include <string>

#include "tests/cuda_emu/emu_state.h"

struct cublasContext {
  cudaStream_t stream = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  cublasMath_t math = CUBLAS_DEFAULT_MATH;
};

namespace {

std::mutex handles_mutex;
std::set<cublasHandle_t>& handles() {
  static auto* h = new std::set<cublasHandle_t>();
  return *h;
}

bool valid(cublasHandle_t h) {
  const std::lock_guard lock(handles_mutex);
  return handles().count(h) != 0;
}

bool valid_op(cublasOperation_t op) { return op == CUBLAS_OP_N || op == CUBLAS_OP_T || op == CUBLAS_OP_C; }

CBLAS_TRANSPOSE blas_op(cublasOperation_t op) { return op == CUBLAS_OP_N ? CblasNoTrans : CblasTrans; }

// C = alpha op(A) op(B) + beta C, column-major, by OpenBLAS (the reference
// BLAS semantics cuBLAS documents: beta = 0 never reads C).
void reference_gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha, const float* a,
                    int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  cblas_sgemm(CblasColMajor, blas_op(ta), blas_op(tb), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void reference_gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, double alpha, const double* a,
                    int lda, const double* b, int ldb, double beta, double* c, int ldc) {
  cblas_dgemm(CblasColMajor, blas_op(ta), blas_op(tb), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

template <class T>
cublasStatus_t gemm(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                    const T* alpha, const T* a, int lda, const T* b, int ldb, const T* beta, T* c, int ldc) {
  if (!valid(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  // The documented CUBLAS_STATUS_INVALID_VALUE cases.
  if (m < 0 || n < 0 || k < 0 || !valid_op(ta) || !valid_op(tb) || alpha == nullptr || beta == nullptr)
    return CUBLAS_STATUS_INVALID_VALUE;
  if (lda < std::max(1, ta == CUBLAS_OP_N ? m : k) || ldb < std::max(1, tb == CUBLAS_OP_N ? k : n) ||
      ldc < std::max(1, m))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (m == 0 || n == 0 || ((*alpha == T(0) || k == 0) && *beta == T(1))) return CUBLAS_STATUS_SUCCESS;
  const T alpha_v = *alpha, beta_v = *beta;  // host pointer mode: read at the call
  const cudaError_t queued = tpp_emu::enqueue(
      handle->stream,
      [=] { reference_gemm(ta, tb, m, n, k, alpha_v, a, lda, b, ldb, beta_v, c, ldc); }, true);
  return queued == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

}  // namespace

extern "C" {

cublasStatus_t cublasCreate_v2(cublasHandle_t* handle) {
  if (handle == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *handle = new cublasContext();
  const std::lock_guard lock(handles_mutex);
  handles().insert(*handle);
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
  {
    const std::lock_guard lock(handles_mutex);
    if (handles().erase(handle) == 0) return CUBLAS_STATUS_NOT_INITIALIZED;
  }
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetProperty(libraryPropertyType type, int* value) {
  if (value == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  switch (type) {
    case MAJOR_VERSION: *value = CUBLAS_VER_MAJOR; return CUBLAS_STATUS_SUCCESS;
    case MINOR_VERSION: *value = CUBLAS_VER_MINOR; return CUBLAS_STATUS_SUCCESS;
    case PATCH_LEVEL: *value = CUBLAS_VER_PATCH; return CUBLAS_STATUS_SUCCESS;
    default: return CUBLAS_STATUS_INVALID_VALUE;
  }
}

cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t stream) {
  if (!valid(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}

// The documentation asks for a workspace aligned to 256 bytes.
cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t handle, void* workspace, size_t bytes) {
  if (!valid(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (bytes > 0 && (workspace == nullptr || reinterpret_cast<uintptr_t>(workspace) % 256 != 0))
    return CUBLAS_STATUS_INVALID_VALUE;
  handle->workspace = workspace;
  handle->workspace_bytes = bytes;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  if (!valid(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  const int base = static_cast<int>(mode) & ~static_cast<int>(CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION);
  if (base != CUBLAS_DEFAULT_MATH && base != CUBLAS_TENSOR_OP_MATH && base != CUBLAS_PEDANTIC_MATH &&
      base != CUBLAS_TF32_TENSOR_OP_MATH)
    return CUBLAS_STATUS_INVALID_VALUE;
  handle->math = mode;  // TF32 is computed as fp32 here
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemm_v2(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                              const float* alpha, const float* a, int lda, const float* b, int ldb, const float* beta,
                              float* c, int ldc) {
  return gemm(handle, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

cublasStatus_t cublasDgemm_v2(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                              const double* alpha, const double* a, int lda, const double* b, int ldb,
                              const double* beta, double* c, int ldc) {
  return gemm(handle, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

const char* cublasGetStatusName(cublasStatus_t status) {
  switch (status) {
#define TPP_EMU_NAME(s) \
  case s: return #s;
    TPP_EMU_NAME(CUBLAS_STATUS_SUCCESS)
    TPP_EMU_NAME(CUBLAS_STATUS_NOT_INITIALIZED)
    TPP_EMU_NAME(CUBLAS_STATUS_ALLOC_FAILED)
    TPP_EMU_NAME(CUBLAS_STATUS_INVALID_VALUE)
    TPP_EMU_NAME(CUBLAS_STATUS_ARCH_MISMATCH)
    TPP_EMU_NAME(CUBLAS_STATUS_MAPPING_ERROR)
    TPP_EMU_NAME(CUBLAS_STATUS_EXECUTION_FAILED)
    TPP_EMU_NAME(CUBLAS_STATUS_INTERNAL_ERROR)
    TPP_EMU_NAME(CUBLAS_STATUS_NOT_SUPPORTED)
    TPP_EMU_NAME(CUBLAS_STATUS_LICENSE_ERROR)
#undef TPP_EMU_NAME
    default: return "CUBLAS_STATUS_UNKNOWN";
  }
}

const char* cublasGetStatusString(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
    case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    case CUBLAS_STATUS_LICENSE_ERROR: return "error detected trying to check the license";
    default: return "unknown error";
  }
}

}  // extern "C"
