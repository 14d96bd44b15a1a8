// Tensors on cuda:0: creation, copies between devices, views, in-place
// updates and autograd across devices (skipped, saying so, without a GPU).
#include <doctest/doctest.h>

#include <string>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/finite.h"
#include "engine/philox.h"
#include "engine/tensor.h"
#include "ops/elementwise.h"
#include "tests/gpu/gpu_available.h"
#if TPP_WITH_CUDA
#include "engine/cuda/caching_allocator.h"
#endif

using namespace tpp;

namespace {
const Device gpu = Device::cuda(0);
Tensor cpu_values(const Shape& shape) { return arange(0.0, static_cast<double>(numel_of(shape)), 1.0).view(shape); }
}  // namespace

TEST_SUITE("gpu") {
  TEST_CASE("values survive a round trip host -> cuda:0 -> host for every dtype") {
    if (skip_without_gpu()) return;
    for (const DType dtype : {DType::f32, DType::f64, DType::i64, DType::u8}) {
      const Tensor host = cpu_values({3, 5}).to(dtype);
      const Tensor device = host.to(gpu);
      CHECK(device.device() == gpu);
      CHECK(device.dtype() == dtype);
      CHECK(device.to(Device::cpu()).to_vector<double>() == host.to_vector<double>());
    }
  }

  TEST_CASE("strided views copy to and from the GPU in place") {
    if (skip_without_gpu()) return;
    const Tensor host = cpu_values({4, 6});
    const Tensor on_gpu = host.to(gpu);
    // a transposed, sliced view read on the device and written back to the host
    const Tensor view = on_gpu.transpose(0, 1).slice(0, 1, 5, 2);
    CHECK(view.contiguous().to_vector<float>() == host.transpose(0, 1).slice(0, 1, 5, 2).contiguous().to_vector<float>());
    Tensor target = zeros({6, 4}).transpose(0, 1);  // strided destination on the host
    target.copy_(on_gpu);
    CHECK(target.contiguous().to_vector<float>() == host.to_vector<float>());
  }

  TEST_CASE("fill_, zeros and full make their values on the device") {
    if (skip_without_gpu()) return;
    CHECK(full({2, 3}, 2.5, {.device = gpu}).to_vector<float>() == std::vector<float>(6, 2.5f));
    Tensor t = zeros({4, 4}, {.device = gpu});
    t.slice(1, 1, 3).fill_(7);
    const std::vector<float> v = t.to_vector<float>();
    CHECK(v[1] == 7.0f);
    CHECK(v[0] == 0.0f);
  }

  TEST_CASE("the same seed draws the same random numbers on the CPU and on the GPU") {
    if (skip_without_gpu()) return;
    manual_seed(7);
    const Tensor host = randn({33});
    manual_seed(7);
    const Tensor device = randn({33}, {.device = gpu});
    CHECK(device.device() == gpu);
    CHECK(device.to_vector<float>() == host.to_vector<float>());
  }

  TEST_CASE("gradients flow back through to(device) to the source device") {
    if (skip_without_gpu()) return;
    Tensor x = cpu_values({2, 3}).set_requires_grad(true);
    const Tensor on_gpu = x.to(gpu);
    const Tensor picked = on_gpu.select(0, 1);  // select's backward scatters on the GPU
    picked.backward(ones({3}, {.device = gpu}));
    REQUIRE(x.grad().defined());
    CHECK(x.grad().device() == Device::cpu());
    CHECK(x.grad().to_vector<float>() == std::vector<float>{0, 0, 0, 1, 1, 1});
  }

  TEST_CASE("a GPU leaf accumulates its gradient on the GPU") {
    if (skip_without_gpu()) return;
    Tensor w = ones({4}, {.device = gpu}).set_requires_grad(true);
    w.expand({3, 4}).backward(ones({3, 4}, {.device = gpu}));  // sum_to_shape reduces on the device
    w.expand({2, 4}).backward(ones({2, 4}, {.device = gpu}));
    CHECK(w.grad().device() == gpu);
    CHECK(w.grad().to_vector<float>() == std::vector<float>(4, 5.0f));
  }

  TEST_CASE("index_select gathers on the GPU and scatter-adds its gradient there") {
    if (skip_without_gpu()) return;
    Tensor x = cpu_values({4, 2}).to(gpu).detach().set_requires_grad(true);
    const Tensor picked = x.index_select(0, from_vector<int64_t>({3, 1, 3}, {3}));
    CHECK(picked.to_vector<float>() == std::vector<float>{6, 7, 2, 3, 6, 7});
    picked.backward(ones({3, 2}, {.device = gpu}));
    CHECK(x.grad().to_vector<float>() == std::vector<float>{0, 0, 1, 1, 0, 0, 2, 2});
  }

  TEST_CASE("a tensor larger than the GPU gives the out-of-memory error and the process goes on") {
    if (skip_without_gpu()) return;
    std::string message;
    try {
      (void)empty({int64_t{1} << 40}, {.device = gpu});  // 4 TiB of f32
    } catch (const Error& e) {
      message = e.what();
    }
    CHECK(message.starts_with("CUDA out of memory: requested 4194304.0 MiB on cuda:0 with "));
    CHECK(message.find(" free (") != std::string::npos);
    CHECK(zeros({8}, {.device = gpu}).to_vector<float>() == std::vector<float>(8, 0.0f));
  }

  TEST_CASE("a GPU that does not exist is refused by name") {
    if (skip_without_gpu()) return;
    CHECK_THROWS_WITH(empty({2}, {.device = Device::cuda(999)}),
                      doctest::Contains("storage: cuda:999 is not available"));
  }

  TEST_CASE("tensors come from the caching allocator and go back to it") {
    if (skip_without_gpu()) return;
#if TPP_WITH_CUDA
    BlockCache& cache = cuda::device_allocator(0);
    const size_t before = cache.stats().allocated_bytes;
    {
      const Tensor t = empty({1024, 1024}, {.device = gpu});
      CHECK(cache.stats().allocated_bytes >= before + 4 * 1024 * 1024);
    }
    CHECK(cache.stats().allocated_bytes == before);
    const size_t driver_calls = cache.stats().driver_allocations;
    const Tensor again = empty({1024, 1024}, {.device = gpu});
    // Served from the cache; TPP_CUDA_ALLOC=direct (the sanitizer runs) asks the driver every time.
    CHECK(cache.stats().driver_allocations == driver_calls + (cache.options().caching ? 0 : 1));
#endif
  }

  TEST_CASE("TPP_SYNC_DEBUG checks GPU op outputs and names the op") {
    if (skip_without_gpu()) return;
    const SyncDebugOverride on(true);
    const Tensor x = from_vector<float>({1, -1}, {2}).to(gpu);
    CHECK_THROWS_WITH(ops::log(x), "TPP_SYNC_DEBUG: op 'log' produced nan (shape [2]) at element 1; its inputs are finite");
  }
}
