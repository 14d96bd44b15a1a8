// The bookkeeping of tpp's caching allocators (GPU memory, pinned host
// memory), kept apart from the driver so that CPU-only builds test it
// against a fake: engine/cuda/caching_allocator.h and pinned_pool.h plug in
// the CUDA calls.
//
// Requests are rounded up to a bucket (round_block_size); a freed block goes
// back to its bucket and serves the next request of that bucket. Blocks are
// never split or merged: training repeats the same sizes every step, so exact
// buckets reach a steady state with no driver calls at all.
//
// Stream order: a block freed on stream S is reusable on S at once (later work
// on S runs after the work that used it); on another stream only once an event
// recorded on S after the release has completed. Host-visible memory (pinned)
// waits for that event even on S, because the host writes into it outside any
// stream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace tpp {

using StreamHandle = void*;  // a cudaStream_t; nullptr is the default stream
using EventHandle = void*;   // a cudaEvent_t

inline constexpr size_t kSmallBlockStep = 512;
inline constexpr size_t kLargeBlockStep = size_t{2} << 20;
inline constexpr size_t kSmallBlockLimit = size_t{1} << 20;

// 512 B steps up to 1 MiB, 2 MiB steps above; 0 stays 0.
size_t round_block_size(size_t bytes);

// "CUDA out of memory: requested 3.0 MiB on cuda:0 with 1.5 MiB free (20.0 MiB reserved by tpp's cache); lower the
// batch size"
std::string format_device_out_of_memory(size_t requested, int device, size_t free_bytes, size_t reserved);

struct BlockCacheOptions {
  bool caching = true;        // false: every request and release goes to the driver, unrounded
  bool host_visible = false;  // reuse waits for the release's event even on the same stream
  // A released block that would take the free blocks past this goes back to
  // the driver instead (bounds what a run of ever-new sizes keeps).
  size_t max_cached_bytes = SIZE_MAX;
};

// The value of `variable` (TPP_CUDA_ALLOC, TPP_CPU_ALLOC): unset, "" or
// "cached" -> caching; "direct" -> no cache (for compute-sanitizer, ASan).
BlockCacheOptions allocation_options_from_env(const char* value, std::string_view variable = "TPP_CUDA_ALLOC");

// The driver calls a BlockCache makes. Only allocate may throw (errors other
// than out of memory); the others run on release paths and must not.
class MemorySource {
 public:
  virtual ~MemorySource() = default;
  virtual void* allocate(size_t bytes) = 0;  // nullptr when out of memory
  virtual void release(void* ptr) = 0;
  virtual EventHandle record_event(StreamHandle stream) = 0;  // marks the work queued so far; nullptr on failure
  virtual bool event_done(EventHandle event) = 0;
  virtual void wait_event(EventHandle event) = 0;
  virtual void release_event(EventHandle event) = 0;
  // The error for a request that failed even with the cache emptied.
  virtual std::string out_of_memory_message(size_t requested, size_t reserved) = 0;
};

struct CachedBlock {
  void* ptr = nullptr;
  size_t size = 0;  // the bucket: what the driver handed out
  StreamHandle stream = nullptr;
  EventHandle ready = nullptr;  // recorded on `stream` after the release
};

struct BlockCacheStats {
  size_t allocated_bytes = 0;  // in live buffers, by bucket size
  size_t reserved_bytes = 0;   // held from the driver: live and cached
  size_t peak_allocated_bytes = 0;
  size_t driver_allocations = 0;  // successful cudaMalloc / cudaHostAlloc calls
  size_t driver_releases = 0;
  size_t cache_hits = 0;  // requests served without the driver
  size_t cache_flushes = 0;  // emptied to retry a request that ran out of memory
};

class BlockCache;

// Memory from a BlockCache, returned to it on destruction. Move-only.
class CachedBuffer {
 public:
  CachedBuffer() = default;
  CachedBuffer(CachedBuffer&& other) noexcept { *this = std::move(other); }
  CachedBuffer& operator=(CachedBuffer&& other) noexcept;
  CachedBuffer(const CachedBuffer&) = delete;
  CachedBuffer& operator=(const CachedBuffer&) = delete;
  ~CachedBuffer() { reset(); }

  void* data() const { return block_.ptr; }
  template <class T>
  T* data_as() const {
    return static_cast<T*>(block_.ptr);
  }
  size_t size() const { return bytes_; }               // as requested
  size_t capacity() const { return block_.size; }      // the bucket
  StreamHandle stream() const { return block_.stream; }
  explicit operator bool() const { return block_.ptr != nullptr; }
  void reset();  // gives the memory back now

 private:
  friend class BlockCache;
  CachedBuffer(BlockCache* cache, CachedBlock block, size_t bytes) : cache_(cache), block_(block), bytes_(bytes) {}

  BlockCache* cache_ = nullptr;
  CachedBlock block_{};
  size_t bytes_ = 0;
};

// Thread-safe. Must outlive its buffers (the process-wide caches are never destroyed).
class BlockCache {
 public:
  BlockCache(std::unique_ptr<MemorySource> source, BlockCacheOptions options);
  ~BlockCache();
  BlockCache(const BlockCache&) = delete;
  BlockCache& operator=(const BlockCache&) = delete;

  // For use on `stream`. Out of memory: empties the cache, retries once, then
  // throws tpp::Error with the source's message. 0 bytes: an empty buffer.
  CachedBuffer allocate(size_t bytes, StreamHandle stream);
  // Returns every cached block to the driver (waiting for their events).
  void empty_cache();
  // Call before destroying a stream whose work has completed: its cached
  // blocks go back to the driver, so that no event is ever recorded on it.
  void forget_stream(StreamHandle stream);
  BlockCacheStats stats() const;
  void reset_peak();
  const BlockCacheOptions& options() const { return options_; }

 private:
  friend class CachedBuffer;
  using Key = std::pair<size_t, uintptr_t>;  // bucket, stream

  void give_back(CachedBlock block) noexcept;
  bool take_cached(size_t size, StreamHandle stream, CachedBlock& out);
  void release_cached();
  void release_block(CachedBlock& block);

  std::unique_ptr<MemorySource> source_;
  const BlockCacheOptions options_;
  mutable std::mutex mutex_;
  std::multimap<Key, CachedBlock> free_;
  BlockCacheStats stats_;
};

}  // namespace tpp
