// CUDA builds only: cudaHostAlloc/cudaFreeHost behind the block cache.
#include "engine/cuda/pinned_pool.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <mutex>

#include "engine/cuda/check.h"
#include "engine/error.h"

namespace tpp::cuda {
namespace {

double mib(size_t bytes) { return static_cast<double>(bytes) / (1 << 20); }

size_t available_host_bytes() {
  const long pages = sysconf(_SC_AVPHYS_PAGES), page_size = sysconf(_SC_PAGESIZE);
  return pages > 0 && page_size > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page_size) : 0;
}

// Staging is per batch, not per op: events are made and destroyed each time,
// on the device of the stream they mark.
class PinnedMemorySource final : public CudaEventSource {
 public:
  void* allocate(size_t bytes) override {
    void* ptr = nullptr;
    const cudaError_t status = cudaHostAlloc(&ptr, bytes, cudaHostAllocPortable);
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      return nullptr;
    }
    TPP_CUDA_CHECK(status);
    return ptr;
  }

  void release(void* ptr) override { cudaFreeHost(ptr); }

  EventHandle record_event(StreamHandle handle) override {
    const auto stream = static_cast<cudaStream_t>(handle);
    int device = 0, previous = 0;
    if (cudaStreamGetDevice(stream, &device) != cudaSuccess || cudaGetDevice(&previous) != cudaSuccess) {
      cudaGetLastError();
      return nullptr;
    }
    if (device != previous) cudaSetDevice(device);
    cudaEvent_t event = nullptr;
    if (cudaEventCreateWithFlags(&event, cudaEventDisableTiming) == cudaSuccess &&
        cudaEventRecord(event, stream) != cudaSuccess) {
      cudaEventDestroy(event);
      event = nullptr;
    }
    if (!event) cudaGetLastError();
    if (device != previous) cudaSetDevice(previous);
    return event;
  }

  void release_event(EventHandle event) override { cudaEventDestroy(static_cast<cudaEvent_t>(event)); }

  std::string out_of_memory_message(size_t requested, size_t reserved) override {
    return format_pinned_out_of_memory(requested, available_host_bytes(), reserved);
  }
};

void check_fits(const PinnedBuffer& buffer, size_t bytes, const char* what) {
  TPP_CHECK(bytes <= buffer.size(), "{}: {} bytes do not fit the pinned buffer of {} bytes", what, bytes,
            buffer.size());
}

}  // namespace

std::string format_pinned_out_of_memory(size_t requested, size_t free_bytes, size_t reserved) {
  return fmt::format(
      "CUDA out of pinned host memory: requested {:.1f} MiB with {:.1f} MiB of host memory free ({:.1f} MiB "
      "reserved by tpp's pinned pool); lower the batch size or the loader's prefetch",
      mib(requested), mib(free_bytes), mib(reserved));
}

std::unique_ptr<MemorySource> make_pinned_memory_source() { return std::make_unique<PinnedMemorySource>(); }

BlockCache& pinned_pool() {
  static auto* pool = [] {
    BlockCacheOptions options = allocation_options_from_env(std::getenv("TPP_CUDA_ALLOC"));
    options.host_visible = true;
    return new BlockCache(make_pinned_memory_source(), options);  // never destroyed: buffers may outlive main
  }();
  return *pool;
}

PinnedBuffer pinned_allocate(size_t bytes, cudaStream_t stream) {
  return PinnedBuffer(pinned_pool().allocate(bytes, stream));
}

void copy_to_device_async(void* device_dst, const PinnedBuffer& src, size_t bytes) {
  check_fits(src, bytes, "copy_to_device_async");
  TPP_CUDA_CHECK(cudaMemcpyAsync(device_dst, src.data(), bytes, cudaMemcpyHostToDevice, src.stream()));
}

void copy_to_host_async(PinnedBuffer& dst, const void* device_src, size_t bytes) {
  check_fits(dst, bytes, "copy_to_host_async");
  TPP_CUDA_CHECK(cudaMemcpyAsync(dst.data(), device_src, bytes, cudaMemcpyDeviceToHost, dst.stream()));
}

void upload_async(DeviceBuffer& dst, const void* host, size_t bytes) {
  TPP_CHECK(bytes <= dst.size(), "upload_async: {} bytes do not fit the device buffer of {} bytes", bytes,
            dst.size());
  if (bytes == 0) return;
  const PinnedBuffer staging = pinned_allocate(bytes, dst.stream());
  std::memcpy(staging.data(), host, bytes);
  copy_to_device_async(dst.data(), staging, bytes);
}

}  // namespace tpp::cuda
