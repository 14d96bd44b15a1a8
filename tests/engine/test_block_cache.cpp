// The caching allocators' bookkeeping against a fake driver: buckets, reuse,
// stream order, statistics, out of memory, direct mode. The same rules run on
// a GPU in tests/gpu/test_caching_allocator.cpp.
#include <doctest/doctest.h>

#include <memory>
#include <set>
#include <vector>

#include "engine/block_cache.h"
#include "engine/error.h"

using namespace tpp;

namespace {

constexpr size_t MiB = size_t{1} << 20;

// A driver with `capacity` bytes. Streams listed in `busy` have work queued:
// events recorded on them complete only when finish() is called.
struct FakeDriver {
  size_t capacity = 64 * MiB;
  size_t in_use = 0;
  uintptr_t next_address = 0x1000;
  std::set<void*> live;
  std::set<StreamHandle> busy;
  struct Event {
    StreamHandle stream;
    bool done;
  };
  std::vector<std::unique_ptr<Event>> events;
  int live_events = 0;

  void finish(StreamHandle stream) {
    busy.erase(stream);
    for (auto& event : events)
      if (event->stream == stream) event->done = true;
  }
};

class FakeSource final : public MemorySource {
 public:
  explicit FakeSource(FakeDriver& driver) : driver_(driver) {}
  void* allocate(size_t bytes) override {
    if (driver_.in_use + bytes > driver_.capacity) return nullptr;
    driver_.in_use += bytes;
    void* ptr = reinterpret_cast<void*>(driver_.next_address);
    driver_.next_address += bytes + 4096;
    sizes_[ptr] = bytes;
    driver_.live.insert(ptr);
    return ptr;
  }
  void release(void* ptr) override {
    REQUIRE(driver_.live.erase(ptr) == 1);
    driver_.in_use -= sizes_.at(ptr);
  }
  EventHandle record_event(StreamHandle stream) override {
    driver_.events.push_back(std::make_unique<FakeDriver::Event>(
        FakeDriver::Event{.stream = stream, .done = !driver_.busy.contains(stream)}));
    ++driver_.live_events;
    return driver_.events.back().get();
  }
  bool event_done(EventHandle event) override { return static_cast<FakeDriver::Event*>(event)->done; }
  void wait_event(EventHandle event) override { static_cast<FakeDriver::Event*>(event)->done = true; }
  void release_event(EventHandle) override { --driver_.live_events; }
  std::string out_of_memory_message(size_t requested, size_t reserved) override {
    return format_device_out_of_memory(requested, 0, driver_.capacity - driver_.in_use, reserved);
  }

 private:
  FakeDriver& driver_;
  std::map<void*, size_t> sizes_;
};

std::unique_ptr<BlockCache> make_cache(FakeDriver& driver, BlockCacheOptions options = {}) {
  return std::make_unique<BlockCache>(std::make_unique<FakeSource>(driver), options);
}

StreamHandle stream(int id) { return reinterpret_cast<StreamHandle>(static_cast<uintptr_t>(id)); }

}  // namespace

TEST_SUITE("block cache") {
  TEST_CASE("requests round up to 512 B up to 1 MiB and to 2 MiB above") {
    CHECK(round_block_size(0) == 0);
    CHECK(round_block_size(1) == 512);
    CHECK(round_block_size(512) == 512);
    CHECK(round_block_size(513) == 1024);
    CHECK(round_block_size(MiB - 1) == MiB);
    CHECK(round_block_size(MiB) == MiB);
    CHECK(round_block_size(MiB + 1) == 2 * MiB);
    CHECK(round_block_size(2 * MiB + 1) == 4 * MiB);
    CHECK(round_block_size(5 * MiB) == 6 * MiB);
  }

  TEST_CASE("a freed block serves the next request of its bucket without the driver") {
    FakeDriver driver;
    auto cache = make_cache(driver);
    void* first = nullptr;
    {
      const CachedBuffer buffer = cache->allocate(1000, stream(1));
      first = buffer.data();
      CHECK(buffer.size() == 1000);
      CHECK(buffer.capacity() == 1024);
    }
    const CachedBuffer again = cache->allocate(700, stream(1));
    CHECK(again.data() == first);
    CHECK(cache->stats().driver_allocations == 1);
    CHECK(cache->stats().cache_hits == 1);
  }

  TEST_CASE("different buckets do not share blocks") {
    FakeDriver driver;
    auto cache = make_cache(driver);
    cache->allocate(1000, stream(1)).reset();
    const CachedBuffer other = cache->allocate(2000, stream(1));
    CHECK(cache->stats().driver_allocations == 2);
    CHECK(cache->stats().cache_hits == 0);
  }

  TEST_CASE("statistics follow allocated, reserved and peak bytes") {
    FakeDriver driver;
    auto cache = make_cache(driver);
    const CachedBuffer small = cache->allocate(1000, stream(1));
    CachedBuffer large = cache->allocate(3 * MiB, stream(1));
    CHECK(cache->stats().allocated_bytes == 1024 + 4 * MiB);
    large.reset();
    const BlockCacheStats stats = cache->stats();
    CHECK(stats.allocated_bytes == 1024);
    CHECK(stats.reserved_bytes == 1024 + 4 * MiB);
    CHECK(stats.peak_allocated_bytes == 1024 + 4 * MiB);
    CHECK(stats.driver_releases == 0);
    cache->reset_peak();
    CHECK(cache->stats().peak_allocated_bytes == 1024);
  }

  TEST_CASE("a block is reusable on its own stream at once, even with work queued") {
    FakeDriver driver;
    auto cache = make_cache(driver);
    driver.busy.insert(stream(1));
    cache->allocate(1000, stream(1)).reset();
    const CachedBuffer again = cache->allocate(1000, stream(1));
    CHECK(cache->stats().cache_hits == 1);
    CHECK(driver.live_events == 0);
  }

  TEST_CASE("another stream reuses a block only once the releasing stream's event completed") {
    FakeDriver driver;
    auto cache = make_cache(driver);
    driver.busy.insert(stream(1));
    void* released = nullptr;
    {
      const CachedBuffer buffer = cache->allocate(1000, stream(1));
      released = buffer.data();
    }
    CachedBuffer on_other = cache->allocate(1000, stream(2));
    CHECK(on_other.data() != released);
    CHECK(cache->stats().driver_allocations == 2);

    driver.finish(stream(1));
    const CachedBuffer after = cache->allocate(1000, stream(3));
    CHECK(after.data() == released);
    CHECK(after.stream() == stream(3));
    CHECK(cache->stats().cache_hits == 1);
    CHECK(driver.live_events == 0);
  }

  TEST_CASE("host-visible memory waits for its event even on its own stream") {
    FakeDriver driver;
    auto cache = make_cache(driver, {.host_visible = true});
    driver.busy.insert(stream(1));
    cache->allocate(1000, stream(1)).reset();
    CachedBuffer second = cache->allocate(1000, stream(1));
    CHECK(cache->stats().driver_allocations == 2);
    driver.finish(stream(1));
    second.reset();
    const CachedBuffer third = cache->allocate(1000, stream(1));
    CHECK(cache->stats().cache_hits == 1);
  }

  TEST_CASE("direct mode goes to the driver for every request and release, unrounded") {
    FakeDriver driver;
    auto cache = make_cache(driver, allocation_options_from_env("direct"));
    for (int i = 0; i < 3; ++i) {
      const CachedBuffer buffer = cache->allocate(1000, stream(1));
      CHECK(buffer.capacity() == 1000);
    }
    const BlockCacheStats stats = cache->stats();
    CHECK(stats.driver_allocations == 3);
    CHECK(stats.driver_releases == 3);
    CHECK(stats.cache_hits == 0);
    CHECK(stats.reserved_bytes == 0);
    CHECK(driver.live.empty());
  }

  TEST_CASE("TPP_CUDA_ALLOC chooses the mode and refuses unknown ones") {
    CHECK(allocation_options_from_env(nullptr).caching);
    CHECK(allocation_options_from_env("").caching);
    CHECK(allocation_options_from_env("cached").caching);
    CHECK_FALSE(allocation_options_from_env("direct").caching);
    CHECK_THROWS_WITH_AS(allocation_options_from_env("off"),
                         "TPP_CUDA_ALLOC=off: expected 'cached' (the default) or 'direct'", Error);
    CHECK_THROWS_WITH_AS(allocation_options_from_env("off", "TPP_CPU_ALLOC"),
                         "TPP_CPU_ALLOC=off: expected 'cached' (the default) or 'direct'", Error);
  }

  TEST_CASE("a released block that would take the free blocks past max_cached_bytes goes back to the driver") {
    FakeDriver driver;
    auto cache = make_cache(driver, {.max_cached_bytes = 3 * MiB});
    CachedBuffer first = cache->allocate(2 * MiB, stream(1)), second = cache->allocate(2 * MiB, stream(1));
    first.reset();  // 2 MiB free: kept
    CHECK(cache->stats().driver_releases == 0);
    second.reset();  // would make 4 MiB free: released
    CHECK(cache->stats().driver_releases == 1);
    CHECK(cache->stats().reserved_bytes == 2 * MiB);
    const CachedBuffer again = cache->allocate(2 * MiB, stream(1));
    CHECK(cache->stats().cache_hits == 1);
  }

  TEST_CASE("out of memory empties the cache and retries once") {
    FakeDriver driver;
    driver.capacity = 10 * MiB;
    auto cache = make_cache(driver);
    cache->allocate(5 * MiB, stream(1)).reset();  // 6 MiB cached
    const CachedBuffer big = cache->allocate(8 * MiB, stream(1));
    CHECK(big);
    CHECK(cache->stats().cache_flushes == 1);
    CHECK(cache->stats().reserved_bytes == 8 * MiB);
  }

  TEST_CASE("a request that cannot fit throws the out-of-memory message and the cache stays usable") {
    FakeDriver driver;
    driver.capacity = 10 * MiB;
    auto cache = make_cache(driver);
    const CachedBuffer held = cache->allocate(3 * MiB, stream(1));  // 4 MiB
    CHECK_THROWS_WITH_AS(cache->allocate(7 * MiB, stream(1)),
                         "CUDA out of memory: requested 7.0 MiB on cuda:0 with 6.0 MiB free (4.0 MiB reserved by "
                         "tpp's cache); lower the batch size",
                         Error);
    CHECK(cache->stats().allocated_bytes == 4 * MiB);
    const CachedBuffer fits = cache->allocate(5 * MiB, stream(1));
    CHECK(fits);
  }

  TEST_CASE("empty_cache returns the cached blocks and keeps the live ones") {
    FakeDriver driver;
    auto cache = make_cache(driver);
    const CachedBuffer live = cache->allocate(1000, stream(1));
    cache->allocate(5000, stream(1)).reset();
    cache->allocate(3 * MiB, stream(2)).reset();
    cache->empty_cache();
    const BlockCacheStats stats = cache->stats();
    CHECK(stats.reserved_bytes == stats.allocated_bytes);
    CHECK(stats.driver_releases == 2);
    CHECK(driver.live == std::set<void*>{live.data()});
  }

  TEST_CASE("forget_stream returns that stream's cached blocks only") {
    FakeDriver driver;
    auto cache = make_cache(driver);
    {
      const CachedBuffer on_one = cache->allocate(1000, stream(1));
      const CachedBuffer on_two = cache->allocate(1000, stream(2));
    }
    cache->forget_stream(stream(1));
    CHECK(cache->stats().driver_releases == 1);
    CHECK(driver.live_events == 0);
    const CachedBuffer again = cache->allocate(1000, stream(2));
    CHECK(cache->stats().cache_hits == 1);
  }

  TEST_CASE("moving a buffer hands over its block, which goes back once") {
    FakeDriver driver;
    auto cache = make_cache(driver);
    CachedBuffer a = cache->allocate(1000, stream(1));
    void* ptr = a.data();
    CachedBuffer b = std::move(a);
    CHECK_FALSE(a);
    CHECK(b.data() == ptr);
    CachedBuffer c;
    c = std::move(b);
    c.reset();
    c.reset();
    CHECK(cache->stats().allocated_bytes == 0);
    const CachedBuffer d = cache->allocate(1000, stream(1));
    const CachedBuffer e = cache->allocate(1000, stream(1));
    CHECK(cache->stats().cache_hits == 1);  // one block came back, not two
  }

  TEST_CASE("zero bytes give an empty buffer without the driver") {
    FakeDriver driver;
    auto cache = make_cache(driver);
    const CachedBuffer empty = cache->allocate(0, stream(1));
    CHECK_FALSE(empty);
    CHECK(cache->stats().driver_allocations == 0);
  }

  TEST_CASE("a destroyed cache returns every cached block and event") {
    FakeDriver driver;
    {
      auto cache = make_cache(driver, {.host_visible = true});
      cache->allocate(1000, stream(1)).reset();
      cache->allocate(3 * MiB, stream(2)).reset();
    }
    CHECK(driver.live.empty());
    CHECK(driver.live_events == 0);
  }

  TEST_CASE("the out-of-memory message names the device, free and reserved memory") {
    CHECK(format_device_out_of_memory(3 * MiB / 2, 1, 512 * 1024, 20 * MiB) ==
          "CUDA out of memory: requested 1.5 MiB on cuda:1 with 0.5 MiB free (20.0 MiB reserved by tpp's cache); "
          "lower the batch size");
  }
}
