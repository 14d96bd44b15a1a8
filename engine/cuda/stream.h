// The stream every op of a GPU runs on (CUDA builds only). One non-blocking
// stream per device, made on first use and kept for the process: ops queue
// their kernels, cuBLAS and cuDNN calls on it in order, so that nothing waits
// for the host except reads of values back to it.
#pragma once

#include <cuda_runtime_api.h>

namespace tpp::cuda {

// The compute stream of `device`.
cudaStream_t compute_stream(int device);
// The compute stream of the current device (cudaGetDevice).
cudaStream_t current_stream();

// Makes `device` current for a scope and restores the previous one.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

// Waits for the work queued on `device`'s compute stream.
void synchronize(int device);

}  // namespace tpp::cuda
