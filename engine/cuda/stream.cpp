// CUDA builds only: one compute stream per device.
#include "engine/cuda/stream.h"

#include <mutex>
#include <vector>

#include "engine/cuda/caching_allocator.h"
#include "engine/cuda/check.h"
#include "engine/error.h"

namespace tpp::cuda {

cudaStream_t compute_stream(int device) {
  static std::mutex mutex;
  static auto* streams = new std::vector<cudaStream_t>();  // never destroyed: buffers may outlive main
  const std::lock_guard lock(mutex);
  if (streams->empty()) {
    int count = 0;
    TPP_CUDA_CHECK(cudaGetDeviceCount(&count));
    streams->assign(static_cast<size_t>(count), nullptr);
  }
  TPP_CHECK(device >= 0 && static_cast<size_t>(device) < streams->size(),
            "cuda: device cuda:{} does not exist ({} GPU(s) visible)", device, streams->size());
  cudaStream_t& stream = (*streams)[static_cast<size_t>(device)];
  if (stream == nullptr) {
    const DeviceGuard guard(device);
    TPP_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  }
  return stream;
}

cudaStream_t current_stream() { return compute_stream(current_device()); }

DeviceGuard::DeviceGuard(int device) {
  int current = 0;
  TPP_CUDA_CHECK(cudaGetDevice(&current));
  if (current != device) {
    TPP_CUDA_CHECK(cudaSetDevice(device));
    previous_ = current;
  }
}

DeviceGuard::~DeviceGuard() {
  if (previous_ >= 0) cudaSetDevice(previous_);  // on a release path: the switch worked before
}

void synchronize(int device) { TPP_CUDA_CHECK(cudaStreamSynchronize(compute_stream(device))); }

}  // namespace tpp::cuda
