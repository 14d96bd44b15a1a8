#include "engine/cpu_allocator.h"

#include <fmt/format.h>

#include <cstdlib>
#include <memory>
#include <string>

namespace tpp {
namespace {

constexpr size_t kCpuAlignment = 64;
// Free blocks kept for reuse, at most: several training steps' worth of the
// paper's models at batch 128; beyond it released blocks go back to the system.
constexpr size_t kMaxCachedBytes = size_t{4} << 30;

// Host memory has no streams or events: release order is program order.
class HostMemory final : public MemorySource {
 public:
  void* allocate(size_t bytes) override {
    return std::aligned_alloc(kCpuAlignment, (bytes + kCpuAlignment - 1) / kCpuAlignment * kCpuAlignment);
  }
  void release(void* ptr) override { std::free(ptr); }
  EventHandle record_event(StreamHandle) override { return nullptr; }
  bool event_done(EventHandle) override { return true; }
  void wait_event(EventHandle) override {}
  void release_event(EventHandle) override {}
  std::string out_of_memory_message(size_t requested, size_t reserved) override {
    return fmt::format("out of host memory allocating {} bytes ({:.1f} MiB held by tpp's CPU cache)", requested,
                       static_cast<double>(reserved) / (1 << 20));
  }
};

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
constexpr bool kAddressSanitizer = __has_feature(address_sanitizer);
#else
constexpr bool kAddressSanitizer = false;
#endif

BlockCacheOptions host_options() {
  const char* fallback = kAddressSanitizer ? "direct" : nullptr;  // so that ASan sees every overrun
  const char* value = std::getenv("TPP_CPU_ALLOC");
  BlockCacheOptions options = allocation_options_from_env(value ? value : fallback, "TPP_CPU_ALLOC");
  options.max_cached_bytes = kMaxCachedBytes;
  return options;
}

// Never destroyed: tensors in static storage may outlive any static object.
BlockCache& host_cache() {
  static BlockCache* const cache = new BlockCache(std::make_unique<HostMemory>(), host_options());
  return *cache;
}

}  // namespace

CachedBuffer cpu_allocate(size_t bytes) { return host_cache().allocate(bytes, nullptr); }

const BlockCacheOptions& cpu_allocator_options() { return host_cache().options(); }

BlockCacheStats cpu_allocator_stats() { return host_cache().stats(); }

void cpu_empty_cache() { host_cache().empty_cache(); }

}  // namespace tpp
