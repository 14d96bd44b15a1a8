// GPU memory for tpp (CUDA builds only): one caching allocator per device,
// with the reuse rules of engine/block_cache.h. This file's .cpp is the only
// place that calls cudaMalloc and cudaFree.
//
//   DeviceBuffer grads = device_allocate(bytes, stream);   // back to the cache when it goes
//
// A buffer belongs to the stream it was allocated for. Before destroying a
// stream, drop its buffers, synchronize it and call forget_stream on the cache.
//
// TPP_CUDA_ALLOC=direct turns caching off (every buffer is its own exact-size
// cudaMalloc, freed at once) so that compute-sanitizer sees every overrun.
#pragma once

#include <cuda_runtime_api.h>

#include <memory>

#include "engine/block_cache.h"

namespace tpp::cuda {

// A CachedBuffer of GPU memory; data() is a device pointer.
class DeviceBuffer : public CachedBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(CachedBuffer&& buffer) : CachedBuffer(std::move(buffer)) {}
  cudaStream_t stream() const { return static_cast<cudaStream_t>(CachedBuffer::stream()); }
};

// The CUDA-event half of a MemorySource, shared by the device and the pinned
// host sources: whether an event has completed, and waiting for it.
class CudaEventSource : public MemorySource {
 public:
  bool event_done(EventHandle event) override;
  void wait_event(EventHandle event) override;
};

// The allocator of GPU `device`, made on first use with the TPP_CUDA_ALLOC
// mode and kept until the process ends (buffers may outlive main's locals).
BlockCache& device_allocator(int device);

// `bytes` of memory on the current GPU, to be used on `stream`. Throws
// tpp::Error "CUDA out of memory: ..." when even an emptied cache cannot serve it.
DeviceBuffer device_allocate(size_t bytes, cudaStream_t stream = nullptr);

// The cudaMalloc/cudaFree source of one GPU, for caches of one's own (tests).
std::unique_ptr<MemorySource> make_device_memory_source(int device);

int current_device();

}  // namespace tpp::cuda
