#include "engine/distributed.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>

#include "engine/mpi_communicator.h"

#if TPP_WITH_CUDA
#include "engine/cuda/nccl_communicator.h"
#endif

extern char** environ;

namespace tpp::dist {
namespace {

// ---- launch environment ----

struct LauncherVars {
  std::string_view name;
  std::string_view rank, size, local_rank, local_size;  // local_size may be empty
  bool mpi;
};

// Innermost launcher first (see distributed.h).
constexpr LauncherVars kLaunchers[] = {
    {"torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", false},
    {"OpenMPI", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK",
     "OMPI_COMM_WORLD_LOCAL_SIZE", true},
    {"PMI", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "MPI_LOCALNRANKS", true},
    {"Slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "", true},
};

std::optional<std::string> lookup(const EnvMap& env, std::string_view name) {
  if (name.empty()) return std::nullopt;
  const auto it = env.find(std::string(name));
  if (it == env.end()) return std::nullopt;
  return it->second;
}

int parse_count(std::string_view name, const std::string& text) {
  int value = -1;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  TPP_CHECK(ec == std::errc() && end == text.data() + text.size() && value >= 0 && !text.empty(),
            "launch environment: {}='{}' is not a non-negative integer", name, text);
  return value;
}

std::optional<int> read_count(const EnvMap& env, std::string_view name) {
  const auto text = lookup(env, name);
  if (!text) return std::nullopt;
  return parse_count(name, *text);
}

void read_local_rank(const EnvMap& env, const LauncherVars& vars, LaunchEnv& out) {
  const auto local_rank = read_count(env, vars.local_rank);
  const auto local_size = read_count(env, vars.local_size);
  out.local_rank = local_rank.value_or(0);
  out.local_world_size = local_size.value_or(0);
  out.local_rank_known = local_rank.has_value() || out.world_size == 1;
  if (!local_rank) return;
  TPP_CHECK(*local_rank <= out.rank, "launch environment: {}={} is above {}={}: a local rank counts ranks of one node",
            vars.local_rank, *local_rank, vars.rank, out.rank);
  if (local_size) {
    TPP_CHECK(*local_rank < *local_size, "launch environment: {}={} is not below {}={}", vars.local_rank,
              *local_rank, vars.local_size, *local_size);
    TPP_CHECK(*local_size <= out.world_size, "launch environment: {}={} is above {}={}", vars.local_size,
              *local_size, vars.size, out.world_size);
  }
}

void read_master(const EnvMap& env, LaunchEnv& out) {
  out.master_addr = lookup(env, "MASTER_ADDR").value_or("");
  const auto port = lookup(env, "MASTER_PORT");
  if (!port) return;
  int value = 0;
  const auto [end, ec] = std::from_chars(port->data(), port->data() + port->size(), value);
  TPP_CHECK(ec == std::errc() && end == port->data() + port->size() && value >= 1 && value <= 65535,
            "launch environment: MASTER_PORT='{}' is not a port number (1-65535)", *port);
  out.master_port = value;
}

// Two launchers describing this very process must agree.
void check_agreement(const EnvMap& env, const LaunchEnv& out) {
  if (out.launcher != "OpenMPI") return;
  const auto pmix_rank = read_count(env, "PMIX_RANK");
  TPP_CHECK(!pmix_rank || *pmix_rank == out.rank,
            "launch environment: OMPI_COMM_WORLD_RANK={} but PMIX_RANK={}: the launchers disagree about this process",
            out.rank, *pmix_rank);
}

std::optional<double> read_seconds(const EnvMap& env, std::string_view name) {
  const auto text = lookup(env, name);
  if (!text) return std::nullopt;
  char* end = nullptr;
  const double value = std::strtod(text->c_str(), &end);
  TPP_CHECK(!text->empty() && end == text->c_str() + text->size() && std::isfinite(value) && value > 0,
            "{}='{}' is not a positive number of seconds", name, *text);
  return value;
}

EnvMap process_environment() {
  EnvMap env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const size_t equals = text.find('=');
    if (equals != std::string_view::npos) env.emplace(text.substr(0, equals), text.substr(equals + 1));
  }
  return env;
}

// ---- the one-process backend ----

class Done final : public PendingCollective {
 public:
  void wait() override {}
};

class SingleProcessCommunicator final : public Communicator {
 public:
  explicit SingleProcessCommunicator(Device device) : device_(device) {}
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  std::string_view backend() const override { return "single"; }
  Device device() const override { return device_; }

  std::unique_ptr<PendingCollective> all_reduce_async(Buffer, ReduceOp) override { return std::make_unique<Done>(); }
  void broadcast(Buffer, int root) override { check_root(root, "broadcast"); }
  void all_gather(Buffer input, Buffer output) override {
    TPP_CHECK(device_.is_cpu(), "all_gather: the single-process communicator copies on the CPU only");
    if (input.data != output.data)
      std::memcpy(output.data, input.data, static_cast<size_t>(input.count) * element_size(input.dtype));
  }
  void barrier() override {}
  void broadcast_bytes(std::vector<uint8_t>&, int root) override { check_root(root, "broadcast_bytes"); }

 private:
  Device device_;
};

}  // namespace

std::string LaunchEnv::describe() const {
  const std::string local = local_rank_known ? fmt::format("local rank {}", local_rank) : "local rank unknown";
  return fmt::format("rank {} of {} ({}, launcher {})", rank, world_size, local, launcher);
}

LaunchEnv detect_launch_env(const EnvMap& env) {
  LaunchEnv out;
  read_master(env, out);
  for (const LauncherVars& vars : kLaunchers) {
    const auto rank = read_count(env, vars.rank);
    const auto size = read_count(env, vars.size);
    if (!rank && !size) continue;
    TPP_CHECK(rank.has_value(), "launch environment: {} is set but {} is not ({} sets both)", vars.size, vars.rank,
              vars.name);
    TPP_CHECK(size.has_value(), "launch environment: {} is set but {} is not ({} sets both)", vars.rank, vars.size,
              vars.name);
    TPP_CHECK(*size >= 1, "launch environment: {}=0: a world has at least one rank", vars.size);
    TPP_CHECK(*rank < *size, "launch environment: {}={} is not below {}={}", vars.rank, *rank, vars.size, *size);
    out.rank = *rank;
    out.world_size = *size;
    out.launcher = std::string(vars.name);
    out.mpi_launched = vars.mpi;
    read_local_rank(env, vars, out);
    check_agreement(env, out);
    return out;
  }
  return out;
}

LaunchEnv detect_launch_env() { return detect_launch_env(process_environment()); }

Seconds collective_timeout(const EnvMap& env) {
  return Seconds(read_seconds(env, "TPP_COLLECTIVE_TIMEOUT").value_or(300.0));
}

Seconds collective_timeout() { return collective_timeout(process_environment()); }

// ---- checked tensor forms ----

Buffer buffer_of(const Tensor& t, std::string_view op) {
  TPP_CHECK(t.defined(), "{}: the tensor is undefined", op);
  TPP_CHECK(t.is_contiguous(), "{}: tensor {} must be contiguous (collectives work in place on its storage)", op,
            shape_str(t.sizes()));
  return Buffer{t.raw_data(), t.numel(), t.dtype(), t.device()};
}

Buffer Communicator::checked(const Tensor& t, std::string_view op) const {
  const Buffer buffer = buffer_of(t, op);
  TPP_CHECK(buffer.device == device(), "{}: the {} communicator works on {} tensors but got a {} tensor {}", op,
            backend(), device().str(), buffer.device.str(), shape_str(t.sizes()));
  return buffer;
}

void Communicator::check_root(int root, std::string_view op) const {
  TPP_CHECK(root >= 0 && root < world_size(), "{}: root {} is not a rank of a world of size {}", op, root,
            world_size());
}

std::unique_ptr<PendingCollective> Communicator::all_reduce_async(const Tensor& t, ReduceOp op) {
  const Buffer buffer = checked(t, "all_reduce");
  TPP_CHECK(is_floating(buffer.dtype), "all_reduce: expected an f32 or f64 tensor but got {} {}",
            dtype_name(buffer.dtype), shape_str(t.sizes()));
  return all_reduce_async(buffer, op);
}

void Communicator::all_reduce(const Tensor& t, ReduceOp op) { all_reduce_async(t, op)->wait(); }

void Communicator::broadcast(const Tensor& t, int root) {
  check_root(root, "broadcast");
  broadcast(checked(t, "broadcast"), root);
}

Tensor Communicator::all_gather(const Tensor& t) {
  Shape shape = t.sizes();
  shape.insert(shape.begin(), world_size());
  Tensor out = empty(shape, {.dtype = t.dtype(), .device = t.device()});
  all_gather(t, out);
  return out;
}

void Communicator::all_gather(const Tensor& t, const Tensor& out) {
  const Buffer input = checked(t, "all_gather");
  const Buffer output = checked(out, "all_gather");
  TPP_CHECK(output.dtype == input.dtype, "all_gather: output is {} but input is {}", dtype_name(output.dtype),
            dtype_name(input.dtype));
  TPP_CHECK(output.count == input.count * world_size(),
            "all_gather: output {} has {} elements but {} ranks x input {} need {}", shape_str(out.sizes()),
            output.count, world_size(), shape_str(t.sizes()), input.count * world_size());
  all_gather(input, output);
}

// ---- choosing a backend ----

std::unique_ptr<Communicator> make_single_process_communicator(Device device) {
  return std::make_unique<SingleProcessCommunicator>(device);
}

std::unique_ptr<Communicator> make_communicator(const LaunchEnv& env, Device device, Seconds timeout) {
  if (device.is_cuda()) {
#if TPP_WITH_CUDA
    std::unique_ptr<Communicator> bootstrap;
    if (env.distributed() && env.mpi_launched && mpi_built()) bootstrap = make_mpi_communicator(env, timeout);
    return make_nccl_communicator(env, std::move(bootstrap), timeout);
#else
    fail("communicator: {} tensors need a CUDA build of tpp, and this one is CPU-only", device.str());
#endif
  }
  if (!env.distributed()) return make_single_process_communicator(device);
  TPP_CHECK(env.mpi_launched,
            "communicator: {} on the CPU needs MPI, but torchrun started this process: launch with mpirun or srun",
            env.describe());
  TPP_CHECK(mpi_built(),
            "communicator: {} on the CPU needs MPI, and this build has none: install libopenmpi-dev and rebuild "
            "(cmake -DTPP_MPI=ON)",
            env.describe());
  return make_mpi_communicator(env, timeout);
}

std::unique_ptr<Communicator> make_communicator(Device device) {
  const EnvMap env = process_environment();
  return make_communicator(detect_launch_env(env), device, collective_timeout(env));
}

void abort_job(std::string_view message, int code) {
  fmt::print(stderr, "{}\n", message);
  std::fflush(nullptr);
  if (mpi_running()) mpi_abort(code);
  std::_Exit(code);  // no static destructors: other threads may still run
}

void broadcast_indices(Communicator& comm, std::vector<int64_t>& indices) {
  std::vector<uint8_t> bytes(indices.size() * sizeof(int64_t));
  if (!bytes.empty()) std::memcpy(bytes.data(), indices.data(), bytes.size());
  comm.broadcast_bytes(bytes, 0);
  TPP_CHECK(bytes.size() % sizeof(int64_t) == 0, "broadcast_indices: received {} bytes, not whole int64 values",
            bytes.size());
  indices.resize(bytes.size() / sizeof(int64_t));
  if (!bytes.empty()) std::memcpy(indices.data(), bytes.data(), bytes.size());
}

void broadcast_text(Communicator& comm, std::string& text) {
  std::vector<uint8_t> bytes(text.begin(), text.end());
  comm.broadcast_bytes(bytes, 0);
  text.assign(bytes.begin(), bytes.end());
}

void run_on_root(Communicator& comm, const std::function<void()>& work) {
  std::string error;
  if (comm.rank() == 0) {
    try {
      work();
    } catch (const std::exception& e) {
      error = e.what();
      if (error.empty()) error = "unknown error";
    }
  }
  if (comm.world_size() > 1) broadcast_text(comm, error);
  if (!error.empty()) fail("{}", error);
}

}  // namespace tpp::dist
