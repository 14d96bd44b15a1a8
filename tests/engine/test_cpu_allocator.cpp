// The CPU caching allocator behind every CPU tensor: training repeats the
// same sizes every step, so after a warm-up step nothing more comes from the
// system.
#include <doctest/doctest.h>

#include "engine/cpu_allocator.h"
#include "engine/optim.h"
#include "engine/philox.h"
#include "models/zoo.h"
#include "ops/loss.h"

using namespace tpp;

namespace {
// Direct mode (TPP_CPU_ALLOC=direct, sanitizer builds) has nothing to reuse.
bool caching_or_skip() {
  if (cpu_allocator_options().caching) return true;
  MESSAGE("skipped: the CPU allocator runs in direct mode (TPP_CPU_ALLOC=direct or a sanitizer build)");
  return false;
}
}  // namespace

TEST_SUITE("cpu allocator") {
  TEST_CASE("CPU tensors are 64-byte aligned and freed blocks are reused") {
    if (!caching_or_skip()) return;
    const size_t before = cpu_allocator_stats().driver_allocations;
    void* first = nullptr;
    {
      const Tensor t = empty({1000, 37});
      first = t.data<float>();
      CHECK(reinterpret_cast<uintptr_t>(first) % 64 == 0);
    }
    const Tensor again = empty({1000, 37});
    CHECK(again.data<float>() == first);
    CHECK(cpu_allocator_stats().driver_allocations <= before + 1);
  }

  TEST_CASE("a training step allocates nothing from the system after the first") {
    if (!caching_or_skip()) return;
    Generator gen(3);
    const auto model = models::make_model("resnet20", 10, 3);
    model->train();
    Sgd sgd(model->parameters(), {.lr = 0.01, .momentum = 0.9, .weight_decay = 5e-4});
    const Tensor x = randn({4, 3, 16, 16}, {}, &gen);
    const Tensor target = randint({4}, 0, 10, &gen);
    const auto step = [&] {
      sgd.zero_grad();
      ops::cross_entropy((*model)(x), target).backward();
      sgd.step();
    };
    step();
    step();
    const size_t warm = cpu_allocator_stats().driver_allocations;
    for (int i = 0; i < 3; ++i) step();
    CHECK(cpu_allocator_stats().driver_allocations == warm);
  }
}
