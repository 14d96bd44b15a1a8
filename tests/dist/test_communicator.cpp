// The Communicator interface through its one-process backend, the checks of
// its tensor forms, and how make_communicator chooses (or refuses) a backend.
// Multi-process MPI runs are ctest tests of tests/dist/mpi_main.cpp.
#include <doctest/doctest.h>

#include "engine/distributed.h"

using namespace tpp;
using tpp::dist::EnvMap;

namespace {
std::unique_ptr<dist::Communicator> one_process() {
  return dist::make_communicator(dist::detect_launch_env(EnvMap{}), Device::cpu(), dist::Seconds(1));
}
}  // namespace

TEST_SUITE("distributed") {

TEST_CASE("one process gets the single-process backend: rank 0 of 1") {
  const auto comm = one_process();
  CHECK(comm->backend() == "single");
  CHECK(comm->rank() == 0);
  CHECK(comm->world_size() == 1);
  CHECK(comm->device() == Device::cpu());
}

TEST_CASE("single-process all_reduce sum and avg leave the values as they are") {
  const auto comm = one_process();
  Tensor t = from_vector<float>({1, -2, 3.5f}, {3});
  comm->all_reduce(t, dist::ReduceOp::sum);
  CHECK(t.to_vector<float>() == std::vector<float>{1, -2, 3.5f});
  comm->all_reduce_async(t, dist::ReduceOp::avg)->wait();
  CHECK(t.to_vector<float>() == std::vector<float>{1, -2, 3.5f});
}

TEST_CASE("single-process all_gather stacks the one rank's tensor") {
  const auto comm = one_process();
  const Tensor t = from_vector<double>({1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor gathered = comm->all_gather(t);
  CHECK(gathered.sizes() == Shape{1, 2, 3});
  CHECK(gathered.to_vector<double>() == t.to_vector<double>());
}

TEST_CASE("single-process broadcast and broadcast_bytes from rank 0 keep the data") {
  const auto comm = one_process();
  const Tensor t = from_vector<int64_t>({7, 8}, {2});
  comm->broadcast(t, 0);
  CHECK(t.to_vector<int64_t>() == std::vector<int64_t>{7, 8});
  std::vector<uint8_t> bytes{1, 2, 3};
  comm->broadcast_bytes(bytes, 0);
  CHECK(bytes == std::vector<uint8_t>{1, 2, 3});
  comm->barrier();
  comm->synchronize();
}

TEST_CASE("a broadcast root outside the world is an error") {
  const auto comm = one_process();
  CHECK_THROWS_WITH(comm->broadcast(zeros({2}), 1), "broadcast: root 1 is not a rank of a world of size 1");
  std::vector<uint8_t> bytes;
  CHECK_THROWS_WITH(comm->broadcast_bytes(bytes, -1), "broadcast_bytes: root -1 is not a rank of a world of size 1");
}

TEST_CASE("all_reduce refuses integer tensors") {
  const auto comm = one_process();
  CHECK_THROWS_WITH(comm->all_reduce(from_vector<int64_t>({1, 2}, {2})),
                    "all_reduce: expected an f32 or f64 tensor but got i64 [2]");
}

TEST_CASE("collectives refuse non-contiguous and undefined tensors") {
  const auto comm = one_process();
  const Tensor t = zeros({3, 4}).transpose(0, 1);
  CHECK_THROWS_WITH(comm->all_reduce(t),
                    "all_reduce: tensor [4, 3] must be contiguous (collectives work in place on its storage)");
  CHECK_THROWS_WITH(comm->broadcast(Tensor{}), "broadcast: the tensor is undefined");
}

TEST_CASE("a contiguous slice of a flat arena all-reduces in place") {
  const auto comm = one_process();
  const Tensor arena = arange(0, 10, 1);
  comm->all_reduce(arena.slice(0, 2, 6));
  CHECK(arena.to_vector<float>() == std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
}

TEST_CASE("all_gather into an output of the wrong size is an error") {
  const auto comm = one_process();
  CHECK_THROWS_WITH(comm->all_gather(zeros({2, 3}), zeros({5})),
                    "all_gather: output [5] has 5 elements but 1 ranks x input [2, 3] need 6");
  CHECK_THROWS_WITH(comm->all_gather(zeros({2}), zeros({2}, {.dtype = DType::f64})),
                    "all_gather: output is f64 but input is f32");
}

TEST_CASE("several CPU processes launched by torchrun are refused: CPU collectives need MPI") {
  const auto env = dist::detect_launch_env(EnvMap{{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "0"}});
  CHECK_THROWS_WITH(dist::make_communicator(env, Device::cpu(), dist::Seconds(1)),
                    "communicator: rank 0 of 2 (local rank 0, launcher torchrun) on the CPU needs MPI, but torchrun "
                    "started this process: launch with mpirun or srun");
}

TEST_CASE("without MPI in the build, several CPU processes are refused with the fix") {
  if (dist::mpi_built()) {
    MESSAGE("skipped: this build has MPI (the mpirun ctest tests cover it)");
    return;
  }
  const auto env = dist::detect_launch_env(EnvMap{{"OMPI_COMM_WORLD_RANK", "0"}, {"OMPI_COMM_WORLD_SIZE", "2"}});
  CHECK_THROWS_WITH(dist::make_communicator(env, Device::cpu(), dist::Seconds(1)),
                    "communicator: rank 0 of 2 (local rank unknown, launcher OpenMPI) on the CPU needs MPI, and this "
                    "build has none: install libopenmpi-dev and rebuild (cmake -DTPP_MPI=ON)");
}

#if !TPP_WITH_CUDA
TEST_CASE("CUDA tensors need a CUDA build") {
  CHECK_THROWS_WITH(dist::make_communicator(dist::detect_launch_env(EnvMap{}), Device::cuda(0), dist::Seconds(1)),
                    "communicator: cuda:0 tensors need a CUDA build of tpp, and this one is CPU-only");
}
#endif

}  // TEST_SUITE
