// One cuDNN and one cuBLAS handle per GPU, never destroyed (like the compute
// streams: work may still be queued when main returns).
#include "ops/cuda/handles.h"

#include <mutex>
#include <utility>
#include <vector>

#include "engine/cuda/caching_allocator.h"
#include "engine/cuda/check.h"
#include "engine/cuda/stream.h"
#include "engine/error.h"

namespace tpp::ops::cuda {

namespace {

// cuBLAS's recommended workspace on Hopper; enough for the GEMMs of others.
constexpr size_t kCublasWorkspaceBytes = size_t{32} << 20;

struct DeviceHandles {
  cudnnHandle_t cudnn = nullptr;
  cublasHandle_t cublas = nullptr;
  ::tpp::cuda::DeviceBuffer cublas_workspace;
};

// The handles of the current device, made on first use. The slot is stable:
// the vector is sized once and never grows.
DeviceHandles& current_handles() {
  static std::mutex mutex;
  static auto* handles = new std::vector<DeviceHandles>();
  const std::lock_guard lock(mutex);
  if (handles->empty()) {
    int count = 0;
    TPP_CUDA_CHECK(cudaGetDeviceCount(&count));
    handles->resize(static_cast<size_t>(count));
  }
  const int device = ::tpp::cuda::current_device();
  TPP_CHECK(device >= 0 && static_cast<size_t>(device) < handles->size(),
            "cuda: device cuda:{} does not exist ({} GPU(s) visible)", device, handles->size());
  DeviceHandles& h = (*handles)[static_cast<size_t>(device)];
  if (h.cudnn == nullptr) TPP_CUDNN_CHECK(cudnnCreate(&h.cudnn));
  if (h.cublas == nullptr) {
    ::tpp::cuda::DeviceBuffer workspace =
        ::tpp::cuda::device_allocate(kCublasWorkspaceBytes, ::tpp::cuda::current_stream());
    TPP_CUBLAS_CHECK(cublasCreate(&h.cublas));
    h.cublas_workspace = std::move(workspace);
  }
  return h;
}

}  // namespace

cudnnHandle_t cudnn_handle() {
  const DeviceHandles& h = current_handles();
  TPP_CUDNN_CHECK(cudnnSetStream(h.cudnn, ::tpp::cuda::current_stream()));
  return h.cudnn;
}

cublasHandle_t cublas_handle() {
  const DeviceHandles& h = current_handles();
  TPP_CUBLAS_CHECK(cublasSetStream(h.cublas, ::tpp::cuda::current_stream()));
  TPP_CUBLAS_CHECK(cublasSetWorkspace(h.cublas, h.cublas_workspace.data(), h.cublas_workspace.size()));
  return h.cublas;
}

}  // namespace tpp::ops::cuda
