// The caching device allocator on a real GPU (skipped, saying so, without
// one). Each test makes its own cache on cuda:0 so that statistics start at
// zero; the rules themselves are also tested on CPU (tests/engine/test_block_cache.cpp).
#include <doctest/doctest.h>

#include "tests/gpu/gpu_available.h"

#ifdef TPP_WITH_CUDA
#include <fmt/format.h>

#include <vector>

#include "engine/cuda/caching_allocator.h"
#include "engine/cuda/check.h"
#include "engine/error.h"
#include "tests/gpu/streams.h"

using namespace tpp;
using namespace tpp::cuda;

namespace {

constexpr size_t MiB = size_t{1} << 20;

BlockCache make_cache(BlockCacheOptions options = {}) { return BlockCache(make_device_memory_source(0), options); }

}  // namespace

TEST_SUITE("gpu") {
  TEST_CASE("a freed device block serves the next request of its bucket without cudaMalloc") {
    if (skip_without_gpu()) return;
    BlockCache cache = make_cache();
    const TestStream stream;
    void* first = cache.allocate(1000, stream.handle).data();
    const CachedBuffer again = cache.allocate(900, stream.handle);
    CHECK(again.data() == first);
    CHECK(cache.stats().driver_allocations == 1);
    CHECK(cache.stats().cache_hits == 1);
  }

  TEST_CASE("device blocks are rounded to their bucket and the whole bucket is writable") {
    if (skip_without_gpu()) return;
    BlockCache cache = make_cache();
    for (const size_t bytes : {size_t{1}, size_t{513}, MiB + 1, 5 * MiB}) {
      const CachedBuffer buffer = cache.allocate(bytes, nullptr);
      CHECK(buffer.capacity() == round_block_size(bytes));
      TPP_CUDA_CHECK(cudaMemset(buffer.data(), 0xab, buffer.capacity()));
    }
    TPP_CUDA_CHECK(cudaDeviceSynchronize());
  }

  TEST_CASE("peak allocated bytes survive frees until reset") {
    if (skip_without_gpu()) return;
    BlockCache cache = make_cache();
    {
      std::vector<CachedBuffer> buffers;
      for (int i = 0; i < 4; ++i) buffers.push_back(cache.allocate(3 * MiB, nullptr));
      CHECK(cache.stats().allocated_bytes == 16 * MiB);
    }
    CHECK(cache.stats().allocated_bytes == 0);
    CHECK(cache.stats().peak_allocated_bytes == 16 * MiB);
    CHECK(cache.stats().reserved_bytes == 16 * MiB);
    cache.reset_peak();
    CHECK(cache.stats().peak_allocated_bytes == 0);
  }

  TEST_CASE("another stream reuses a device block only after the releasing stream's event") {
    if (skip_without_gpu()) return;
    BlockCache cache = make_cache();
    const TestStream producer, consumer;
    void* released = nullptr;
    CachedBuffer while_busy;
    {
      StreamGate gate(producer.handle);
      {
        const CachedBuffer buffer = cache.allocate(MiB, producer.handle);
        released = buffer.data();
        TPP_CUDA_CHECK(cudaMemsetAsync(buffer.data(), 0, MiB, producer.handle));  // queued behind the gate
      }
      while_busy = cache.allocate(MiB, consumer.handle);
      CHECK(while_busy.data() != released);
      CHECK(cache.stats().driver_allocations == 2);
    }
    TPP_CUDA_CHECK(cudaStreamSynchronize(producer.handle));
    const CachedBuffer after = cache.allocate(MiB, consumer.handle);
    CHECK(after.data() == released);
    CHECK(after.stream() == static_cast<StreamHandle>(consumer.handle));
    CHECK(cache.stats().driver_allocations == 2);
    CHECK(cache.stats().cache_hits == 1);
  }

  TEST_CASE("direct mode calls cudaMalloc and cudaFree for every buffer") {
    if (skip_without_gpu()) return;
    BlockCache cache = make_cache(allocation_options_from_env("direct"));
    for (int i = 0; i < 3; ++i) {
      const CachedBuffer buffer = cache.allocate(1000, nullptr);
      CHECK(buffer.capacity() == 1000);
    }
    CHECK(cache.stats().driver_allocations == 3);
    CHECK(cache.stats().driver_releases == 3);
    CHECK(cache.stats().reserved_bytes == 0);
  }

  TEST_CASE("a request beyond the free memory throws the out-of-memory message and the process goes on") {
    if (skip_without_gpu()) return;
    BlockCache cache = make_cache();
    cache.allocate(8 * MiB, nullptr).reset();  // cached: emptied before the retry
    size_t free_bytes = 0, total_bytes = 0;
    TPP_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
    const size_t request = total_bytes + (size_t{1} << 30);
    std::string message;
    try {
      cache.allocate(request, nullptr);
    } catch (const Error& e) {
      message = e.what();
    }
    CHECK(message.starts_with(fmt::format("CUDA out of memory: requested {:.1f} MiB on cuda:0 with ",
                                          static_cast<double>(request) / MiB)));
    CHECK(message.ends_with(" MiB free (0.0 MiB reserved by tpp's cache); lower the batch size"));
    CHECK(cache.stats().cache_flushes == 1);
    CHECK(cache.stats().reserved_bytes == 0);
    CHECK(cudaGetLastError() == cudaSuccess);
    const CachedBuffer after = cache.allocate(MiB, nullptr);
    TPP_CUDA_CHECK(cudaMemset(after.data(), 0, MiB));
    TPP_CUDA_CHECK(cudaDeviceSynchronize());
  }

  TEST_CASE("empty_cache gives the cached device blocks back") {
    if (skip_without_gpu()) return;
    BlockCache cache = make_cache();
    const CachedBuffer live = cache.allocate(MiB, nullptr);
    cache.allocate(4 * MiB, nullptr).reset();
    cache.empty_cache();
    CHECK(cache.stats().reserved_bytes == cache.stats().allocated_bytes);
    CHECK(cache.stats().driver_releases == 1);
  }

  TEST_CASE("device_allocate hands out device memory for the current GPU") {
    if (skip_without_gpu()) return;
    const std::vector<float> host = {1, 2, 3, 4, 5};
    const size_t bytes = host.size() * sizeof(float);
    const DeviceBuffer buffer = device_allocate(bytes);
    CHECK(buffer.size() == bytes);
    TPP_CUDA_CHECK(cudaMemcpy(buffer.data(), host.data(), bytes, cudaMemcpyHostToDevice));
    std::vector<float> back(host.size());
    TPP_CUDA_CHECK(cudaMemcpy(back.data(), buffer.data(), bytes, cudaMemcpyDeviceToHost));
    CHECK(back == host);
    cudaPointerAttributes attributes{};
    TPP_CUDA_CHECK(cudaPointerGetAttributes(&attributes, buffer.data()));
    CHECK(attributes.type == cudaMemoryTypeDevice);
  }
}
#else
TEST_CASE("caching device allocator") { MESSAGE("skipped: CPU-only build"); }
#endif
