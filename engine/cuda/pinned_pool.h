// Pinned (page-locked) host memory for staging copies between host and GPU
// (CUDA builds only): one process-wide cache of cudaHostAlloc blocks with
// the reuse rules of engine/block_cache.h for host-visible memory. A released
// buffer is reused only once the copies queued on its stream before the
// release have completed, because the host writes into it outside any stream.
// This file's .cpp is the only place that calls cudaHostAlloc and cudaFreeHost.
//
//   PinnedBuffer staging = pinned_allocate(bytes, stream);
//   std::memcpy(staging.data(), batch, bytes);
//   copy_to_device_async(device.data(), staging, bytes);   // on staging's stream
//   // staging may go now: its block waits for the copy before serving again
#pragma once

#include <cuda_runtime_api.h>

#include <memory>

#include "engine/block_cache.h"
#include "engine/cuda/caching_allocator.h"

namespace tpp::cuda {

// A CachedBuffer of pinned host memory, for copies on stream().
class PinnedBuffer : public CachedBuffer {
 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(CachedBuffer&& buffer) : CachedBuffer(std::move(buffer)) {}
  cudaStream_t stream() const { return static_cast<cudaStream_t>(CachedBuffer::stream()); }
};

// The process-wide pool (portable across GPUs), made on first use with the
// TPP_CUDA_ALLOC mode.
BlockCache& pinned_pool();

PinnedBuffer pinned_allocate(size_t bytes, cudaStream_t stream = nullptr);

// Queue `bytes` from the pinned buffer to device memory, or back, on the
// pinned buffer's stream; the host returns at once.
void copy_to_device_async(void* device_dst, const PinnedBuffer& src, size_t bytes);
void copy_to_host_async(PinnedBuffer& dst, const void* device_src, size_t bytes);

// Copies host bytes into `dst` through a pinned buffer, on dst's stream: the
// caller may reuse `host` as soon as this returns.
void upload_async(DeviceBuffer& dst, const void* host, size_t bytes);

// The cudaHostAlloc/cudaFreeHost source, for pools of one's own (tests).
std::unique_ptr<MemorySource> make_pinned_memory_source();

std::string format_pinned_out_of_memory(size_t requested, size_t free_bytes, size_t reserved);

}  // namespace tpp::cuda
