// Data-parallel scale-out: who we are in the job (rank, world size, local
// rank, read from the launcher's environment) and the collectives that ranks
// run together (all-reduce, broadcast, all-gather, barrier).
//
// Backends: one process (world size 1), MPI for CPU tensors
// (engine/mpi_communicator.cpp, built when MPI is found), NCCL for CUDA tensors
// (engine/cuda/nccl_communicator.cpp, CUDA builds). make_communicator() picks.
//
// No collective waits forever: each one completes within the collective
// timeout (TPP_COLLECTIVE_TIMEOUT seconds, default 300) or the job is aborted
// with a message naming the rank and the collective, so a dead or stuck rank
// makes every rank exit with an error instead of hanging.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/tensor.h"

namespace tpp::dist {

using Seconds = std::chrono::duration<double>;

// ---- Launch environment ----------------------------------------------------
//
// Variables read, first matching launcher wins:
//   1. torchrun style  RANK, WORLD_SIZE, LOCAL_RANK [, LOCAL_WORLD_SIZE]
//   2. OpenMPI         OMPI_COMM_WORLD_RANK, _SIZE, _LOCAL_RANK [, _LOCAL_SIZE]
//   3. PMI (MPICH, Intel MPI, srun --mpi=pmi2)  PMI_RANK, PMI_SIZE [, MPI_LOCALRANKID, MPI_LOCALNRANKS]
//   4. Slurm           SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID [, SLURM_NTASKS_PER_NODE]
//   5. none: one process, rank 0 of 1.
// The innermost launcher wins: torchrun started by srun, or mpirun inside an
// sbatch allocation, inherit the outer launcher's variables, which describe
// the outer job. MASTER_ADDR / MASTER_PORT (any launcher) locate the TCP
// rendezvous. Inconsistent values (a rank without a size, rank >= size, text
// where a number belongs, OMPI_COMM_WORLD_RANK != PMIX_RANK) are an error
// naming the variables.
struct LaunchEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 0;        // 0: the launcher did not say
  bool local_rank_known = true;    // false: no local rank variable; local_rank is 0
  std::string launcher = "none";   // "torchrun", "OpenMPI", "PMI", "Slurm" or "none"
  bool mpi_launched = false;       // an MPI-capable launcher started us: MPI_Init will find the job
  std::string master_addr;         // empty when unset
  int master_port = 0;             // 0 when unset

  bool distributed() const { return world_size > 1; }
  std::string describe() const;    // "rank 1 of 4 (local rank 1, from OpenMPI)"
};

using EnvMap = std::map<std::string, std::string>;
LaunchEnv detect_launch_env(const EnvMap& env);
LaunchEnv detect_launch_env();  // from this process's environment

// TPP_COLLECTIVE_TIMEOUT (seconds, > 0), default 300; bad text is an error.
Seconds collective_timeout(const EnvMap& env);
Seconds collective_timeout();

// ---- Communicator ----------------------------------------------------------

enum class ReduceOp { sum, avg };

// A contiguous run of elements; what the backends work on. Tensors become
// buffers through the checked wrappers of Communicator below.
struct Buffer {
  void* data = nullptr;
  int64_t count = 0;  // elements
  DType dtype = DType::f32;
  Device device = Device::cpu();
};
Buffer buffer_of(const Tensor& t, std::string_view op);  // checks: defined, contiguous

// An all-reduce in flight. wait() makes its result visible to later work: on
// CPU the buffer holds the result when wait() returns; on CUDA work queued on
// the compute stream after wait() sees it (the host does not block). The
// destructor waits if wait() was not called, so the buffer is never left
// half-written.
class PendingCollective {
 public:
  virtual ~PendingCollective() = default;
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual std::string_view backend() const = 0;  // "single", "mpi" or "nccl"
  virtual Device device() const = 0;             // where its buffers live

  // Collectives on raw buffers: every rank calls them in the same order with
  // the same counts and dtypes. all_reduce takes f32/f64 only, in place.
  virtual std::unique_ptr<PendingCollective> all_reduce_async(Buffer buffer, ReduceOp op) = 0;
  virtual void broadcast(Buffer buffer, int root) = 0;
  virtual void all_gather(Buffer input, Buffer output) = 0;  // output: world_size * input.count elements, rank order
  virtual void barrier() = 0;
  // Host bytes of any length from root to every rank; `bytes` is resized.
  virtual void broadcast_bytes(std::vector<uint8_t>& bytes, int root) = 0;
  // Blocks the host until everything issued so far has completed (bounded
  // by the timeout). A no-op where collectives complete on the host anyway.
  virtual void synchronize() {}

  // Checked tensor forms: contiguous tensors on device(); all-reduce on f32/f64.
  void all_reduce(const Tensor& t, ReduceOp op = ReduceOp::sum);
  std::unique_ptr<PendingCollective> all_reduce_async(const Tensor& t, ReduceOp op = ReduceOp::sum);
  void broadcast(const Tensor& t, int root = 0);
  Tensor all_gather(const Tensor& t);  // [world_size, *t.sizes()]
  void all_gather(const Tensor& t, const Tensor& out);

 protected:
  Buffer checked(const Tensor& t, std::string_view op) const;
  void check_root(int root, std::string_view op) const;
};

// The communicator for tensors on `device`: CUDA → NCCL (any world size, so
// one GPU runs the same path as many); CPU → single process for world size 1,
// MPI otherwise (an error naming the fix when this build has no MPI or the
// launcher is not an MPI one). MPI's view of the job must match `env`.
std::unique_ptr<Communicator> make_communicator(const LaunchEnv& env, Device device, Seconds timeout);
std::unique_ptr<Communicator> make_communicator(Device device);  // environment + TPP_COLLECTIVE_TIMEOUT

std::unique_ptr<Communicator> make_single_process_communicator(Device device = Device::cpu());

// ---- Rank 0 decides -----------------------------------------------------------

// Rank 0's decisions everywhere: `indices` (any length on rank 0; resized
// elsewhere) and `text` become rank 0's on every rank.
void broadcast_indices(Communicator& comm, std::vector<int64_t>& indices);
void broadcast_text(Communicator& comm, std::string& text);

// Runs `work` on rank 0 only (file system checks and writes). If it throws,
// every rank throws tpp::Error with rank 0's message, so all ranks stop
// together and say the same thing; otherwise every rank returns.
void run_on_root(Communicator& comm, const std::function<void()>& work);

// Exit code of a rank whose collective timed out (as coreutils' timeout).
inline constexpr int kCollectiveTimeoutExitCode = 124;

// For top-level error handlers of multi-process runs: prints `message` to
// stderr and ends the whole job (MPI_Abort when MPI is running, so the other
// ranks do not wait for this one until their timeout), else exits with `code`.
[[noreturn]] void abort_job(std::string_view message, int code);

// Whether this build has the MPI backend; whether MPI_Init has run (and
// MPI_Finalize has not); "MPI: <library version>" or "MPI: not built".
bool mpi_built();
bool mpi_running();
std::string mpi_version_text();

}  // namespace tpp::dist
