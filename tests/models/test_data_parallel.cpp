// The gradient bucket plan and the data-parallel helpers in one process.
// Their multi-process behaviour (two ranks = one process with the doubled
// batch) is the mpirun test `mpi:data-parallel` (tests/dist/mpi_main.cpp).
#include <doctest/doctest.h>

#include <algorithm>

#include "models/data_parallel.h"
#include "models/zoo.h"

using namespace tpp;
using namespace tpp::models;

TEST_SUITE("data_parallel") {

TEST_CASE("the bucket plan covers every parameter once, last layer first, in disjoint runs") {
  auto model = make_model("resnet20", 10);
  const ParameterArena arena = pack_parameters(*model);
  const auto buckets = plan_grad_buckets(arena, 64 << 10);
  std::vector<std::string> order;
  for (const auto& b : buckets) order.insert(order.end(), b.params.begin(), b.params.end());
  REQUIRE(order.size() == arena.views.size());
  for (size_t i = 0; i < order.size(); ++i) CHECK(order[i] == arena.views[arena.views.size() - 1 - i].first);
  for (size_t i = 0; i + 1 < buckets.size(); ++i)
    CHECK(buckets[i + 1].offset + buckets[i + 1].numel <= buckets[i].offset);
  for (const auto& b : buckets) CHECK((b.numel * 4 <= (64 << 10) || b.params.size() == 1));
  CHECK(buckets.size() > 1);
}

TEST_CASE("a bucket size below every parameter gives one bucket per parameter") {
  auto model = make_model("mlp7_linear", 10, 1);
  const ParameterArena arena = pack_parameters(*model);
  const auto buckets = plan_grad_buckets(arena, 1);
  CHECK(buckets.size() == arena.views.size());
  const Tensor& last = arena.views.back().second;
  CHECK(buckets.front().offset == last.offset() - arena.params.offset());
  CHECK(buckets.front().numel == last.numel());
}

TEST_CASE("a bucket size above the arena gives one bucket over all of it") {
  auto model = make_model("mlp7_linear", 10, 1);
  const ParameterArena arena = pack_parameters(*model);
  const auto buckets = plan_grad_buckets(arena, int64_t{1} << 40);
  REQUIRE(buckets.size() == 1);
  CHECK(buckets[0].offset == 0);
  CHECK(buckets[0].numel <= arena.grads.numel());
  CHECK(buckets[0].numel > arena.grads.numel() - 16);  // at most the trailing alignment padding left out
  CHECK_THROWS_WITH(plan_grad_buckets(arena, 0), "plan_grad_buckets: the bucket size must be positive but is 0 bytes");
}

TEST_CASE("in one process, averaging gradients and broadcasting the model change nothing") {
  auto model = make_model("mlp7_linear", 10, 1);
  const ParameterArena arena = pack_parameters(*model);
  arena.grads.detach().fill_(0.25);
  const auto comm = dist::make_single_process_communicator();
  average_gradients(*comm, arena, plan_grad_buckets(arena));
  const auto grads = arena.grads.to_vector<float>();
  CHECK(std::all_of(grads.begin(), grads.end(), [](float g) { return g == 0.25f; }));
  const auto before = arena.params.to_vector<float>();
  broadcast_model(*comm, *model);
  CHECK(arena.params.to_vector<float>() == before);
}

}  // TEST_SUITE
