// The pinned staging pool on a real GPU (skipped, saying so, without one).
#include <doctest/doctest.h>

#include "tests/gpu/gpu_available.h"

#ifdef TPP_WITH_CUDA
#include <cstring>
#include <numeric>
#include <vector>

#include "engine/cuda/caching_allocator.h"
#include "engine/cuda/check.h"
#include "engine/cuda/pinned_pool.h"
#include "engine/error.h"
#include "tests/gpu/streams.h"

using namespace tpp;
using namespace tpp::cuda;

namespace {
constexpr size_t kStagingBytes = size_t{1} << 20;
BlockCache make_pool() { return BlockCache(make_pinned_memory_source(), {.host_visible = true}); }
}  // namespace

TEST_SUITE("gpu") {
  TEST_CASE("data goes host -> device -> host through pinned buffers") {
    if (skip_without_gpu()) return;
    const TestStream stream;
    std::vector<float> values(100000);
    std::iota(values.begin(), values.end(), -5000.0f);
    const size_t bytes = values.size() * sizeof(float);
    PinnedBuffer up = pinned_allocate(bytes, stream.handle);
    PinnedBuffer down = pinned_allocate(bytes, stream.handle);
    std::memcpy(up.data(), values.data(), bytes);
    const DeviceBuffer device = device_allocate(bytes, stream.handle);
    copy_to_device_async(device.data(), up, bytes);
    copy_to_host_async(down, device.data(), bytes);
    TPP_CUDA_CHECK(cudaStreamSynchronize(stream.handle));
    CHECK(std::memcmp(down.data(), values.data(), bytes) == 0);
  }

  TEST_CASE("upload_async lets the caller reuse its host memory at once") {
    if (skip_without_gpu()) return;
    const TestStream stream;
    std::vector<int64_t> values = {3, 1, 4, 1, 5, 9, 2, 6};
    const size_t bytes = values.size() * sizeof(int64_t);
    DeviceBuffer device = device_allocate(bytes, stream.handle);
    upload_async(device, values.data(), bytes);
    const std::vector<int64_t> sent = values;
    std::fill(values.begin(), values.end(), -1);
    PinnedBuffer down = pinned_allocate(bytes, stream.handle);
    copy_to_host_async(down, device.data(), bytes);
    TPP_CUDA_CHECK(cudaStreamSynchronize(stream.handle));
    CHECK(std::memcmp(down.data(), sent.data(), bytes) == 0);
  }

  TEST_CASE("pinned buffers are page-locked host memory") {
    if (skip_without_gpu()) return;
    const PinnedBuffer buffer = pinned_allocate(4096);
    cudaPointerAttributes attributes{};
    TPP_CUDA_CHECK(cudaPointerGetAttributes(&attributes, buffer.data()));
    CHECK(attributes.type == cudaMemoryTypeHost);
  }

  TEST_CASE("a released pinned buffer waits for its stream's copies, even on the same stream") {
    if (skip_without_gpu()) return;
    BlockCache pool = make_pool();
    const TestStream stream;
    const DeviceBuffer device = device_allocate(kStagingBytes, stream.handle);
    void* released = nullptr;
    CachedBuffer while_busy;
    {
      const StreamGate gate(stream.handle);
      {
        const PinnedBuffer staging(pool.allocate(kStagingBytes, stream.handle));
        released = staging.data();
        copy_to_device_async(device.data(), staging, kStagingBytes);  // queued behind the gate
      }
      while_busy = pool.allocate(kStagingBytes, stream.handle);
      CHECK(while_busy.data() != released);
      CHECK(pool.stats().driver_allocations == 2);
    }
    TPP_CUDA_CHECK(cudaStreamSynchronize(stream.handle));
    const CachedBuffer after = pool.allocate(kStagingBytes, stream.handle);
    CHECK(after.data() == released);
    CHECK(pool.stats().cache_hits == 1);
  }

  TEST_CASE("a copy larger than its pinned buffer is refused") {
    if (skip_without_gpu()) return;
    const PinnedBuffer staging = pinned_allocate(100);
    const DeviceBuffer device = device_allocate(1000);
    CHECK_THROWS_WITH_AS(copy_to_device_async(device.data(), staging, 1000),
                         "copy_to_device_async: 1000 bytes do not fit the pinned buffer of 100 bytes", Error);
  }
}

TEST_CASE("the pinned out-of-memory message names the request, free host memory and the pool") {
  CHECK(format_pinned_out_of_memory(size_t{3} << 20, size_t{1} << 20, size_t{512} << 20) ==
        "CUDA out of pinned host memory: requested 3.0 MiB with 1.0 MiB of host memory free (512.0 MiB reserved by "
        "tpp's pinned pool); lower the batch size or the loader's prefetch");
}
#else
TEST_CASE("pinned staging pool") { MESSAGE("skipped: CPU-only build"); }
#endif
