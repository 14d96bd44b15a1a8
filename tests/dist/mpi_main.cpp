// Multi-process self-test of the MPI communicator, run by ctest under
// `mpirun -np 2` (tests/CMakeLists.txt; only in builds with MPI).
//   tpp_mpi_selftest collectives   every collective, checked on every rank
//   tpp_mpi_selftest data-parallel mlp7_linear SGD steps on a split batch = one process on the whole batch
//   tpp_mpi_selftest sync-bn       synchronised BN = one process on the concatenated batch (mpi_training.cpp)
//   tpp_mpi_selftest tpp-step      the Trainer with TPP's hooks = one process with the doubled batch (mpi_training.cpp)
//   tpp_mpi_selftest exit-early    the last rank exits before the first collective
//   tpp_mpi_selftest stall         the last rank sleeps instead (the others time out)
//   tpp_mpi_selftest throw         the last rank fails with an error
// In the failure modes every rank must exit non-zero, soon, with no hang.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <cstdlib>
#include <string>
#include <thread>

#include "engine/distributed.h"
#include "engine/optim.h"
#include "engine/philox.h"
#include "models/data_parallel.h"
#include "models/zoo.h"
#include "ops/loss.h"
#include "tests/dist/mpi_training.h"

using namespace tpp;

namespace {

int checks_passed = 0;

void expect(bool ok, std::string_view what) {
  TPP_CHECK(ok, "check failed: {}", what);
  ++checks_passed;
}

template <class T>
void expect_values(const Tensor& t, const std::vector<T>& want, std::string_view what) {
  expect(t.to_vector<T>() == want, what);
}

void check_all_reduce(dist::Communicator& comm) {
  const int rank = comm.rank(), world = comm.world_size();
  std::vector<float> mine(1000), sum(1000);
  for (int i = 0; i < 1000; ++i) {
    mine[i] = static_cast<float>((rank + 1) * i);
    sum[i] = static_cast<float>(world * (world + 1) / 2 * i);
  }
  Tensor t = from_vector<float>(mine, {10, 100});
  comm.all_reduce(t, dist::ReduceOp::sum);
  expect_values(t, sum, "all_reduce sum f32");

  std::vector<double> values(257), mean(257);
  for (int i = 0; i < 257; ++i) {
    values[i] = rank + 0.5 * i;
    mean[i] = (world - 1) / 2.0 + 0.5 * i;
  }
  Tensor d = from_vector<double>(values, {257});
  comm.all_reduce(d, dist::ReduceOp::avg);
  expect_values(d, mean, "all_reduce avg f64");

  // A bucket of a flat gradient arena: only the slice changes.
  const Tensor arena = full({10}, rank + 1.0);
  comm.all_reduce(arena.slice(0, 2, 6));
  const float total = static_cast<float>(world * (world + 1) / 2);
  const float own = static_cast<float>(rank + 1);
  expect_values(arena, std::vector<float>{own, own, total, total, total, total, own, own, own, own},
                "all_reduce of an arena slice leaves the rest");
}

// Buckets issued in a fixed order and waited in reverse, as the data-parallel
// trainer overlaps them with backward.
void check_async_buckets(dist::Communicator& comm) {
  const int world = comm.world_size();
  const std::vector<int64_t> sizes{3, 1000, 17, 1 << 20};
  std::vector<Tensor> buckets;
  std::vector<std::unique_ptr<dist::PendingCollective>> pending;
  for (size_t b = 0; b < sizes.size(); ++b) {
    buckets.push_back(full({sizes[b]}, comm.rank() + 1.0 + static_cast<double>(b)));
    pending.push_back(comm.all_reduce_async(buckets.back(), dist::ReduceOp::avg));
  }
  for (size_t b = pending.size(); b-- > 0;) pending[b]->wait();
  for (size_t b = 0; b < sizes.size(); ++b) {
    const float want = static_cast<float>((world + 1) / 2.0 + static_cast<double>(b));
    expect_values(buckets[b], std::vector<float>(sizes[b], want), fmt::format("async bucket {} (avg)", b));
  }
}

void check_broadcast(dist::Communicator& comm) {
  const int rank = comm.rank(), last = comm.world_size() - 1;
  Tensor labels = rank == last ? from_vector<int64_t>({100, -5, 1LL << 40}, {3}) : zeros({3}, {.dtype = DType::i64});
  comm.broadcast(labels, last);
  expect_values(labels, std::vector<int64_t>{100, -5, 1LL << 40}, "broadcast i64 from the last rank");

  const Tensor weights = rank == 0 ? arange(0, 4096, 1) : zeros({4096});
  comm.broadcast(weights, 0);
  expect(weights.to_vector<float>() == arange(0, 4096, 1).to_vector<float>(), "broadcast f32 from rank 0");

  const std::string plan = "keep filters 0 3 5 of layer1.0.conv1";
  std::vector<uint8_t> bytes = rank == 0 ? std::vector<uint8_t>(plan.begin(), plan.end()) : std::vector<uint8_t>{};
  comm.broadcast_bytes(bytes, 0);
  expect(std::string(bytes.begin(), bytes.end()) == plan, "broadcast_bytes from rank 0");
  std::vector<uint8_t> none = rank == 0 ? std::vector<uint8_t>{} : std::vector<uint8_t>{1, 2};
  comm.broadcast_bytes(none, 0);
  expect(none.empty(), "broadcast_bytes of nothing");
}

void check_all_gather(dist::Communicator& comm) {
  const int rank = comm.rank(), world = comm.world_size();
  const Tensor mine = from_vector<float>({rank * 10.0f, rank * 10.0f + 1, rank * 10.0f + 2}, {3});
  const Tensor all = comm.all_gather(mine);
  expect(all.sizes() == Shape{world, 3}, "all_gather shape");
  std::vector<float> want;
  for (int r = 0; r < world; ++r)
    for (int j = 0; j < 3; ++j) want.push_back(r * 10.0f + static_cast<float>(j));
  expect_values(all, want, "all_gather values in rank order");
}

void check_large(dist::Communicator& comm) {
  Tensor big = ones({1 << 22});  // 16 MB: past the eager limits of the shared-memory transport
  comm.all_reduce(big);
  expect_values(big, std::vector<float>(1 << 22, static_cast<float>(comm.world_size())), "all_reduce of 16 MB");
}

int run_collectives(dist::Communicator& comm) {
  check_all_reduce(comm);
  check_async_buckets(comm);
  check_broadcast(comm);
  check_all_gather(comm);
  check_large(comm);
  comm.barrier();
  expect(true, "barrier");
  const int mine = checks_passed;
  const Tensor count = full({1}, static_cast<double>(mine));
  comm.all_reduce(count);
  expect(count.item() == static_cast<double>(mine * comm.world_size()), "every rank passed as many checks");
  if (comm.rank() == 0)
    fmt::print("mpi_selftest: {} ranks, {} checks passed on every rank\n", comm.world_size(), checks_passed);
  return 0;
}

// Each rank trains on its share of every batch and averages gradients; one
// process trains on the whole batches (every rank computes it). The weights
// must agree, and be bit-identical across ranks.
int run_data_parallel(dist::Communicator& comm) {
  const int rank = comm.rank(), world = comm.world_size();
  constexpr int64_t per_rank = 4;
  constexpr int steps = 5;
  const SgdOptions options{.lr = 0.05, .momentum = 0.9, .weight_decay = 5e-4};

  manual_seed(100 + static_cast<uint64_t>(rank));  // different inits on purpose: broadcast_model aligns them
  auto model = models::make_model("mlp7_linear", 10, 1);
  models::broadcast_model(comm, *model);
  auto reference = models::make_model("mlp7_linear", 10, 1);
  std::map<std::string, Tensor> initial;
  for (const auto& [name, t] : model->state_dict()) initial[name] = t;
  reference->load_state_dict(initial);

  const models::ParameterArena arena = models::pack_parameters(*model);
  const auto buckets = models::plan_grad_buckets(arena, 64 << 10);  // several buckets even for this model
  Sgd sgd({arena.params}, options);
  const models::ParameterArena reference_arena = models::pack_parameters(*reference);
  Sgd reference_sgd({reference_arena.params}, options);

  Generator data(7);  // the same batches on every rank
  for (int step = 0; step < steps; ++step) {
    const Tensor x = randn({per_rank * world, 1, 32, 32}, {}, &data);
    const Tensor y = randint({per_rank * world}, 0, 10, &data);
    sgd.zero_grad();
    const int64_t begin = rank * per_rank, end = begin + per_rank;
    ops::cross_entropy((*model)(x.slice(0, begin, end)), y.slice(0, begin, end)).backward();
    models::average_gradients(comm, arena, buckets);
    sgd.step();
    reference_sgd.zero_grad();
    ops::cross_entropy((*reference)(x), y).backward();
    reference_sgd.step();
  }

  const auto got = arena.params.to_vector<float>(), want = reference_arena.params.to_vector<float>();
  double max_diff = 0;
  bool close = true;
  for (size_t i = 0; i < got.size(); ++i) {
    const double diff = std::abs(static_cast<double>(got[i]) - want[i]);
    max_diff = std::max(max_diff, diff);
    close = close && diff <= 1e-5 + 1e-4 * std::abs(want[i]);
  }
  expect(close, fmt::format("data-parallel weights match one process (max difference {:.3g})", max_diff));
  const Tensor rank0 = arena.params.clone();
  comm.broadcast(rank0, 0);
  expect(rank0.to_vector<float>() == got, "data-parallel weights are identical on every rank");
  comm.barrier();
  if (rank == 0)
    fmt::print("mpi_selftest: data-parallel mlp7_linear, {} ranks x {} samples, {} SGD steps, {} gradient buckets: "
               "max |w - w(one process, batch {})| = {:.3g}\n",
               world, per_rank, steps, buckets.size(), per_rank * world, max_diff);
  return 0;
}

// The last rank fails in the way `mode` names; the others enter an all-reduce
// that can never complete.
int run_failure(dist::Communicator& comm, const std::string& mode) {
  const bool failing = comm.rank() == comm.world_size() - 1;
  if (failing) {
    if (mode == "exit-early") {
      fmt::print(stderr, "mpi_selftest: rank {} exits early on purpose\n", comm.rank());
      std::fflush(nullptr);
      std::_Exit(3);
    }
    if (mode == "stall") {
      fmt::print(stderr, "mpi_selftest: rank {} stalls on purpose\n", comm.rank());
      std::fflush(nullptr);
      std::this_thread::sleep_for(std::chrono::minutes(5));
    }
    if (mode == "throw") fail("rank {} fails on purpose", comm.rank());
  }
  comm.all_reduce(zeros({16}));
  fmt::print(stderr, "mpi_selftest: rank {}: the all-reduce completed, which it must not\n", comm.rank());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "collectives";
  const dist::LaunchEnv env = dist::detect_launch_env();
  try {
    const std::shared_ptr<dist::Communicator> comm = dist::make_communicator(Device::cpu());
    if (mode == "collectives") return run_collectives(*comm);
    if (mode == "data-parallel") return run_data_parallel(*comm);
    if (mode == "sync-bn") return testing::run_sync_batch_norm(comm);
    if (mode == "tpp-step") return testing::run_tpp_step(comm);
    if (mode == "exit-early" || mode == "stall" || mode == "throw") return run_failure(*comm, mode);
    fail("unknown mode '{}' (collectives, data-parallel, sync-bn, tpp-step, exit-early, stall, throw)", mode);
  } catch (const std::exception& e) {
    dist::abort_job(fmt::format("mpi_selftest: rank {} of {}: error: {}", env.rank, env.world_size, e.what()), 1);
  }
}
