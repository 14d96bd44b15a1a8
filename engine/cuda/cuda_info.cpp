// CUDA builds only (compiled when TPP_WITH_CUDA): library versions and device
// discovery. Any CUDA error here means "no usable GPU", never a crash.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <fmt/format.h>
#include <nccl.h>

#include "engine/cuda_info.h"

namespace tpp {

namespace {
std::string cuda_triplet(int v) { return fmt::format("{}.{}", v / 1000, (v % 1000) / 10); }
}  // namespace

int cuda_device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so later calls start clean
    return 0;
  }
  return count;
}

std::string cuda_version_text() {
  std::string out;
  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  out += fmt::format("CUDA runtime: {} (built with {})\n", cuda_triplet(runtime), cuda_triplet(CUDART_VERSION));
  out += fmt::format("CUDA driver: {}\n", driver ? cuda_triplet(driver) : std::string("none"));
  const size_t cudnn = cudnnGetVersion();
  out += fmt::format("cuDNN: {}.{}.{} (built with {}.{}.{})\n", cudnn / 10000, (cudnn % 10000) / 100, cudnn % 100,
                     CUDNN_MAJOR, CUDNN_MINOR, CUDNN_PATCHLEVEL);
  int cublas = 0;
  if (cublasGetProperty(MAJOR_VERSION, &cublas) == CUBLAS_STATUS_SUCCESS) {
    int minor = 0, patch = 0;
    cublasGetProperty(MINOR_VERSION, &minor);
    cublasGetProperty(PATCH_LEVEL, &patch);
    out += fmt::format("cuBLAS: {}.{}.{}\n", cublas, minor, patch);
  }
  int nccl = 0;
  ncclGetVersion(&nccl);
  out += fmt::format("NCCL: {}.{}.{}\n", nccl / 10000, (nccl % 10000) / 100, nccl % 100);
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  // No driver (a machine without a GPU) or no device is the common case, said plainly; other
  // failures (a driver too old for the runtime) are named.
  const bool no_gpu = status == cudaErrorNoDevice || (status == cudaErrorInsufficientDriver && driver == 0) ||
                      (status == cudaSuccess && count == 0);
  if (no_gpu || status != cudaSuccess) {
    out += no_gpu ? std::string("GPUs: no GPU found\n")
                  : fmt::format("GPUs: none usable ({})\n", cudaGetErrorString(status));
    cudaGetLastError();
    return out;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) == cudaSuccess)
      out += fmt::format("GPU {}: {} (sm_{}{}, {:.1f} GiB)\n", i, prop.name, prop.major, prop.minor,
                         static_cast<double>(prop.totalGlobalMem) / (1 << 30));
  }
  return out;
}

}  // namespace tpp
