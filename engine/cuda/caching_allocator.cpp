// CUDA builds only: cudaMalloc/cudaFree behind the block cache.
#include "engine/cuda/caching_allocator.h"

#include <cstdlib>
#include <mutex>
#include <vector>

#include "engine/cuda/check.h"
#include "engine/error.h"

namespace tpp::cuda {

bool CudaEventSource::event_done(EventHandle event) {
  const cudaError_t status = cudaEventQuery(static_cast<cudaEvent_t>(event));
  if (status == cudaSuccess) return true;
  if (status != cudaErrorNotReady) cudaGetLastError();  // not ours to report: clear it
  return false;
}

void CudaEventSource::wait_event(EventHandle event) { cudaEventSynchronize(static_cast<cudaEvent_t>(event)); }

namespace {

// Runs the calls of a scope on `device`, and puts the caller's device back.
class DeviceScope {
 public:
  explicit DeviceScope(int device) {
    if (cudaGetDevice(&previous_) == cudaSuccess && previous_ != device && cudaSetDevice(device) == cudaSuccess)
      switched_ = true;
  }
  ~DeviceScope() {
    if (switched_) cudaSetDevice(previous_);
  }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  int previous_ = 0;
  bool switched_ = false;
};

// Called by the BlockCache under its lock, so the spare events need no lock of their own.
class DeviceMemorySource final : public CudaEventSource {
 public:
  explicit DeviceMemorySource(int device) : device_(device) {}
  ~DeviceMemorySource() override {
    for (cudaEvent_t event : spare_events_) cudaEventDestroy(event);
  }

  void* allocate(size_t bytes) override {
    const DeviceScope scope(device_);
    void* ptr = nullptr;
    const cudaError_t status = cudaMalloc(&ptr, bytes);
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // not sticky: clear it, the cache retries
      return nullptr;
    }
    TPP_CUDA_CHECK(status);
    return ptr;
  }

  void release(void* ptr) override {
    const DeviceScope scope(device_);
    cudaFree(ptr);  // on a release path: nothing to do about a failure (the context is lost anyway)
  }

  EventHandle record_event(StreamHandle stream) override {
    const DeviceScope scope(device_);
    cudaEvent_t event = nullptr;
    if (!spare_events_.empty()) {
      event = spare_events_.back();
      spare_events_.pop_back();
    } else if (cudaEventCreateWithFlags(&event, cudaEventDisableTiming) != cudaSuccess) {
      cudaGetLastError();
      return nullptr;
    }
    if (cudaEventRecord(event, static_cast<cudaStream_t>(stream)) != cudaSuccess) {
      cudaGetLastError();
      spare_events_.push_back(event);
      return nullptr;
    }
    return event;
  }

  void release_event(EventHandle event) override {
    try {
      spare_events_.push_back(static_cast<cudaEvent_t>(event));
    } catch (...) {
      cudaEventDestroy(static_cast<cudaEvent_t>(event));
    }
  }

  std::string out_of_memory_message(size_t requested, size_t reserved) override {
    const DeviceScope scope(device_);
    size_t free_bytes = 0, total_bytes = 0;
    if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) cudaGetLastError();
    return format_device_out_of_memory(requested, device_, free_bytes, reserved);
  }

 private:
  const int device_;
  std::vector<cudaEvent_t> spare_events_;
};

}  // namespace

std::unique_ptr<MemorySource> make_device_memory_source(int device) {
  return std::make_unique<DeviceMemorySource>(device);
}

int current_device() {
  int device = 0;
  TPP_CUDA_CHECK(cudaGetDevice(&device));
  return device;
}

BlockCache& device_allocator(int device) {
  static std::mutex mutex;
  static auto* caches = new std::vector<std::unique_ptr<BlockCache>>();  // never destroyed: see the header
  const std::lock_guard lock(mutex);
  if (caches->empty()) {
    int count = 0;
    TPP_CUDA_CHECK(cudaGetDeviceCount(&count));
    caches->resize(static_cast<size_t>(count));
  }
  TPP_CHECK(device >= 0 && static_cast<size_t>(device) < caches->size(),
            "device_allocator: cuda:{} does not exist ({} GPU(s) visible)", device, caches->size());
  auto& cache = (*caches)[static_cast<size_t>(device)];
  if (!cache)
    cache = std::make_unique<BlockCache>(make_device_memory_source(device),
                                         allocation_options_from_env(std::getenv("TPP_CUDA_ALLOC")));
  return *cache;
}

DeviceBuffer device_allocate(size_t bytes, cudaStream_t stream) {
  return DeviceBuffer(device_allocator(current_device()).allocate(bytes, stream));
}

}  // namespace tpp::cuda
