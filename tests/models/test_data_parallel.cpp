// The gradient bucket plan and the data-parallel helpers in one process.
// Their multi-process behaviour (two ranks = one process with the doubled
// batch) is the mpirun test `mpi:data-parallel` (tests/dist/mpi_main.cpp).
#include <doctest/doctest.h>

#include <algorithm>
#include <stdexcept>

#include "models/data_parallel.h"
#include "models/layers.h"
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

TEST_SUITE("data_parallel") {

TEST_CASE("--distributed off, or no launcher: one process, rank 0 of 1, the single-process backend") {
  const DistributedContext off = init_distributed(parse_distributed_mode("off"));
  CHECK(off.world_size == 1);
  CHECK(off.is_root());
  CHECK_FALSE(off.distributed());
  CHECK(off.comm->backend() == "single");
  CHECK(parse_distributed_mode("auto") == DistributedMode::automatic);
  CHECK_THROWS_WITH(parse_distributed_mode("on"), "`distributed`: expected auto or off but got 'on'");
}

TEST_CASE("in one process, broadcast_indices and broadcast_text keep rank 0's values") {
  const auto comm = dist::make_single_process_communicator();
  std::vector<int64_t> indices{5, 0, 1LL << 40};
  broadcast_indices(*comm, indices);
  CHECK(indices == std::vector<int64_t>{5, 0, 1LL << 40});
  std::vector<int64_t> none;
  broadcast_indices(*comm, none);
  CHECK(none.empty());
  std::string text = "runs/x";
  broadcast_text(*comm, text);
  CHECK(text == "runs/x");
}

TEST_CASE("run_on_root runs the work on rank 0 and turns its failure into every rank's error") {
  const auto comm = dist::make_single_process_communicator();
  int runs = 0;
  run_on_root(*comm, [&] { ++runs; });
  CHECK(runs == 1);
  CHECK_THROWS_WITH(run_on_root(*comm, [] { throw std::runtime_error("runs/x is not empty"); }), "runs/x is not empty");
}

TEST_CASE("set_sync_batch_norm switches every BatchNorm2d, and back") {
  auto model = make_model("resnet20", 10);
  const std::shared_ptr<dist::Communicator> comm = dist::make_single_process_communicator();
  CHECK(set_sync_batch_norm(*model, comm) == 19);
  int synced = 0;
  for (auto& [name, m] : model->named_modules())
    if (auto* bn = dynamic_cast<BatchNorm2d*>(m)) synced += bn->sync == comm;
  CHECK(synced == 19);
  CHECK(set_sync_batch_norm(*model, nullptr) == 19);
  for (auto& [name, m] : model->named_modules())
    if (auto* bn = dynamic_cast<BatchNorm2d*>(m)) CHECK(bn->sync == nullptr);
}

TEST_CASE("in one process, average_buffers leaves the BN statistics as they are") {
  auto model = make_model("resnet20", 10);
  const auto comm = dist::make_single_process_communicator();
  std::vector<std::vector<float>> before;
  for (const auto& [name, b] : model->named_buffers())
    if (b.dtype() == DType::f32) before.push_back(b.to_vector<float>());
  average_buffers(*comm, *model);
  size_t i = 0;
  for (const auto& [name, b] : model->named_buffers())
    if (b.dtype() == DType::f32) CHECK(b.to_vector<float>() == before[i++]);
}

}  // TEST_SUITE
