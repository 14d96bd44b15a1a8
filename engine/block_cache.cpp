#include "engine/block_cache.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <string_view>

#include "engine/error.h"

namespace tpp {
namespace {

size_t round_up(size_t bytes, size_t step) { return (bytes + step - 1) / step * step; }
double mib(size_t bytes) { return static_cast<double>(bytes) / (1 << 20); }
uintptr_t stream_key(StreamHandle stream) { return reinterpret_cast<uintptr_t>(stream); }

}  // namespace

size_t round_block_size(size_t bytes) {
  return bytes <= kSmallBlockLimit ? round_up(bytes, kSmallBlockStep) : round_up(bytes, kLargeBlockStep);
}

std::string format_device_out_of_memory(size_t requested, int device, size_t free_bytes, size_t reserved) {
  return fmt::format(
      "CUDA out of memory: requested {:.1f} MiB on cuda:{} with {:.1f} MiB free ({:.1f} MiB reserved by tpp's "
      "cache); lower the batch size",
      mib(requested), device, mib(free_bytes), mib(reserved));
}

BlockCacheOptions allocation_options_from_env(const char* value, std::string_view variable) {
  const std::string_view mode = value ? value : "";
  if (mode.empty() || mode == "cached") return {};
  TPP_CHECK(mode == "direct", "{}={}: expected 'cached' (the default) or 'direct'", variable, mode);
  return BlockCacheOptions{.caching = false};
}

CachedBuffer& CachedBuffer::operator=(CachedBuffer&& other) noexcept {
  if (this != &other) {
    reset();
    cache_ = std::exchange(other.cache_, nullptr);
    block_ = std::exchange(other.block_, CachedBlock{});
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

void CachedBuffer::reset() {
  if (cache_ && block_.ptr) cache_->give_back(block_);
  cache_ = nullptr;
  block_ = {};
  bytes_ = 0;
}

BlockCache::BlockCache(std::unique_ptr<MemorySource> source, BlockCacheOptions options)
    : source_(std::move(source)), options_(options) {}

BlockCache::~BlockCache() { release_cached(); }

CachedBuffer BlockCache::allocate(size_t bytes, StreamHandle stream) {
  if (bytes == 0) return {};
  // Direct mode hands out exactly what was asked, so that compute-sanitizer
  // sees every overrun.
  const size_t size = options_.caching ? round_block_size(bytes) : bytes;
  const std::lock_guard lock(mutex_);
  CachedBlock block;
  if (options_.caching && take_cached(size, stream, block)) {
    ++stats_.cache_hits;
  } else {
    void* ptr = source_->allocate(size);
    if (!ptr && !free_.empty()) {
      release_cached();
      ++stats_.cache_flushes;
      ptr = source_->allocate(size);
    }
    if (!ptr) throw Error(source_->out_of_memory_message(bytes, stats_.reserved_bytes));
    block = CachedBlock{.ptr = ptr, .size = size, .stream = stream};
    ++stats_.driver_allocations;
    stats_.reserved_bytes += size;
  }
  stats_.allocated_bytes += size;
  stats_.peak_allocated_bytes = std::max(stats_.peak_allocated_bytes, stats_.allocated_bytes);
  return CachedBuffer(this, block, bytes);
}

// Under the lock. The same stream first: no event needed unless the host
// touches the memory; then other streams' blocks whose release has completed.
bool BlockCache::take_cached(size_t size, StreamHandle stream, CachedBlock& out) {
  const auto take = [&](std::multimap<Key, CachedBlock>::iterator it) {
    out = it->second;
    free_.erase(it);
    if (out.ready) source_->release_event(out.ready);
    out.ready = nullptr;
    out.stream = stream;
    return true;
  };
  if (!options_.host_visible) {
    const auto same = free_.find(Key{size, stream_key(stream)});
    if (same != free_.end()) return take(same);
  }
  const auto first = free_.lower_bound(Key{size, 0});
  const auto last = free_.upper_bound(Key{size, std::numeric_limits<uintptr_t>::max()});
  for (auto it = first; it != last; ++it) {
    CachedBlock& block = it->second;
    // Released without an event (device memory on its own stream): one
    // recorded now on the releasing stream covers everything that used it.
    if (!block.ready) block.ready = source_->record_event(block.stream);
    if (block.ready && source_->event_done(block.ready)) return take(it);
  }
  return false;
}

void BlockCache::give_back(CachedBlock block) noexcept {
  const std::lock_guard lock(mutex_);
  stats_.allocated_bytes -= block.size;
  const size_t cached_bytes = stats_.reserved_bytes - stats_.allocated_bytes - block.size;
  if (!options_.caching || cached_bytes + block.size > options_.max_cached_bytes) {
    source_->release(block.ptr);
    ++stats_.driver_releases;
    stats_.reserved_bytes -= block.size;
    return;
  }
  if (options_.host_visible) block.ready = source_->record_event(block.stream);
  try {
    free_.emplace(Key{block.size, stream_key(block.stream)}, block);
  } catch (...) {  // no memory for the bookkeeping: return the block to the driver instead
    release_block(block);
  }
}

void BlockCache::empty_cache() {
  const std::lock_guard lock(mutex_);
  release_cached();
}

void BlockCache::forget_stream(StreamHandle stream) {
  const std::lock_guard lock(mutex_);
  for (auto it = free_.begin(); it != free_.end();) {
    if (it->first.second != stream_key(stream)) {
      ++it;
      continue;
    }
    release_block(it->second);
    it = free_.erase(it);
  }
}

// Under the lock.
void BlockCache::release_cached() {
  for (auto& [key, block] : free_) release_block(block);
  free_.clear();
}

// Under the lock; the caller drops the block from free_.
void BlockCache::release_block(CachedBlock& block) {
  if (block.ready) {
    source_->wait_event(block.ready);
    source_->release_event(block.ready);
  }
  source_->release(block.ptr);
  ++stats_.driver_releases;
  stats_.reserved_bytes -= block.size;
}

BlockCacheStats BlockCache::stats() const {
  const std::lock_guard lock(mutex_);
  return stats_;
}

void BlockCache::reset_peak() {
  const std::lock_guard lock(mutex_);
  stats_.peak_allocated_bytes = stats_.allocated_bytes;
}

}  // namespace tpp
