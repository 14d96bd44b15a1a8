#include "engine/mpi_communicator.h"

#include <cstdlib>

#if TPP_WITH_MPI
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <limits>
#include <thread>
#endif

namespace tpp::dist {

#if TPP_WITH_MPI
namespace {

void check_mpi(int code, const char* call, const char* file, int line) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  MPI_Error_string(code, text, &length);
  const std::string_view path(file);
  fail("{}:{}: {} failed: {}", path.substr(path.rfind('/') + 1), line, call, std::string_view(text, length));
}
#define TPP_MPI_CHECK(call) check_mpi((call), #call, __FILE__, __LINE__)

// MPI_Init once per process; MPI_Finalize at exit, after every communicator
// (constructed later, so destroyed earlier) has freed its MPI_Comm.
class MpiRuntime {
 public:
  static void ensure_initialized() { static MpiRuntime runtime; }
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;
  ~MpiRuntime() {
    if (owner_ && mpi_running()) MPI_Finalize();
  }

 private:
  MpiRuntime() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized) return;  // someone else owns MPI
    int provided = 0;
    // Only the thread that made the communicator calls MPI (data loader and
    // OpenMP threads never do).
    TPP_MPI_CHECK(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided));
    owner_ = true;
  }
  bool owner_ = false;
};

MPI_Datatype mpi_type(DType t) {
  switch (t) {
    case DType::f32: return MPI_FLOAT;
    case DType::f64: return MPI_DOUBLE;
    case DType::i64: return MPI_INT64_T;
    case DType::u8: return MPI_UINT8_T;
  }
  fail("mpi: unknown dtype {}", static_cast<int>(t));
}

// MPI counts are int: longer buffers go in pieces of at most this many elements.
constexpr int64_t kMaxPiece = int64_t{1} << 30;

// What a collective was, for the timeout message.
struct CollectiveInfo {
  std::string_view op;
  int64_t count = 0;
  DType dtype = DType::u8;
  std::string str() const { return fmt::format("{} of {} {} elements", op, count, dtype_name(dtype)); }
};

class MpiCommunicator;

class MpiPending final : public PendingCollective {
 public:
  MpiPending(const MpiCommunicator& comm, std::vector<MPI_Request> requests, Buffer buffer, ReduceOp op)
      : comm_(comm), requests_(std::move(requests)), buffer_(buffer), op_(op) {}
  ~MpiPending() override;
  void wait() override;

 private:
  const MpiCommunicator& comm_;
  std::vector<MPI_Request> requests_;
  Buffer buffer_;
  ReduceOp op_;
  bool done_ = false;
};

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator(const LaunchEnv& env, Seconds timeout) : timeout_(timeout) {
    MpiRuntime::ensure_initialized();
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    TPP_CHECK(rank_ == env.rank && size_ == env.world_size,
              "communicator: MPI sees rank {} of {} but the launch environment says {}: was tpp started by an MPI "
              "launcher matching the MPI it was built with (srun needs --mpi=pmix or pmi2)?",
              rank_, size_, env.describe());
    // Our own communicator, so that our traffic never matches anyone else's.
    std::vector<MPI_Request> dup(1);
    TPP_MPI_CHECK(MPI_Comm_idup(MPI_COMM_WORLD, &comm_, dup.data()));
    wait_for(dup, {"communicator set-up (MPI_Comm_idup)"});
    TPP_MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
  }
  ~MpiCommunicator() override {
    if (comm_ != MPI_COMM_NULL && mpi_running()) MPI_Comm_free(&comm_);
  }
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int world_size() const override { return size_; }
  std::string_view backend() const override { return "mpi"; }
  Device device() const override { return Device::cpu(); }

  std::unique_ptr<PendingCollective> all_reduce_async(Buffer buffer, ReduceOp op) override {
    TPP_CHECK(is_floating(buffer.dtype), "all_reduce: expected f32 or f64 but got {}", dtype_name(buffer.dtype));
    std::vector<MPI_Request> requests;
    auto* bytes = static_cast<char*>(buffer.data);
    for (int64_t start = 0; start < buffer.count; start += kMaxPiece) {
      const int n = static_cast<int>(std::min(kMaxPiece, buffer.count - start));
      MPI_Request& request = requests.emplace_back(MPI_REQUEST_NULL);
      TPP_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, bytes + start * element_size(buffer.dtype), n,
                                   mpi_type(buffer.dtype), MPI_SUM, comm_, &request));
    }
    return std::make_unique<MpiPending>(*this, std::move(requests), buffer, op);
  }

  void broadcast(Buffer buffer, int root) override {
    check_root(root, "broadcast");
    const int64_t nbytes = buffer.count * static_cast<int64_t>(element_size(buffer.dtype));
    auto* bytes = static_cast<char*>(buffer.data);
    std::vector<MPI_Request> requests;
    for (int64_t start = 0; start < nbytes; start += kMaxPiece) {
      const int n = static_cast<int>(std::min(kMaxPiece, nbytes - start));
      TPP_MPI_CHECK(MPI_Ibcast(bytes + start, n, MPI_BYTE, root, comm_, &requests.emplace_back(MPI_REQUEST_NULL)));
    }
    wait_for(requests, {"broadcast", buffer.count, buffer.dtype});
  }

  void all_gather(Buffer input, Buffer output) override {
    TPP_CHECK(input.count <= std::numeric_limits<int>::max(),
              "all_gather: {} elements per rank is more than MPI's int count allows", input.count);
    TPP_CHECK(output.count == input.count * size_, "all_gather: output has {} elements but {} ranks x {} need {}",
              output.count, size_, input.count, input.count * size_);
    const int n = static_cast<int>(input.count);
    std::vector<MPI_Request> requests(1);
    TPP_MPI_CHECK(MPI_Iallgather(input.data, n, mpi_type(input.dtype), output.data, n, mpi_type(input.dtype), comm_,
                                 requests.data()));
    wait_for(requests, {"all_gather", input.count, input.dtype});
  }

  void barrier() override {
    std::vector<MPI_Request> requests(1);
    TPP_MPI_CHECK(MPI_Ibarrier(comm_, requests.data()));
    wait_for(requests, {"barrier"});
  }

  void broadcast_bytes(std::vector<uint8_t>& bytes, int root) override {
    check_root(root, "broadcast_bytes");
    uint64_t size = bytes.size();
    std::vector<MPI_Request> requests(1);
    TPP_MPI_CHECK(MPI_Ibcast(&size, 1, MPI_UINT64_T, root, comm_, requests.data()));
    wait_for(requests, {"broadcast_bytes (size)", 1, DType::i64});
    bytes.resize(size);
    broadcast(Buffer{bytes.data(), static_cast<int64_t>(size), DType::u8, Device::cpu()}, root);
  }

  // Polls until every request completes; past the timeout, ends the job.
  // Spinning first keeps small collectives fast; sleeping later leaves the
  // cores to the ranks still computing.
  void wait_for(std::vector<MPI_Request>& requests, const CollectiveInfo& info) const {
    using clock = std::chrono::steady_clock;
    const auto start = clock::now();
    const auto deadline = start + std::chrono::duration_cast<clock::duration>(timeout_);
    for (int64_t polls = 0;; ++polls) {
      int done = 0;
      TPP_MPI_CHECK(MPI_Testall(static_cast<int>(requests.size()), requests.data(), &done, MPI_STATUSES_IGNORE));
      if (done) return;
      const auto now = clock::now();
      if (now >= deadline)
        abort_job(fmt::format("tpp: rank {} of {}: {} did not complete within {:g} s (TPP_COLLECTIVE_TIMEOUT): "
                              "another rank died, hangs, or runs different collectives; aborting the job",
                              rank_, size_, info.str(), timeout_.count()),
                  kCollectiveTimeoutExitCode);
      if (polls < 1000) continue;
      std::this_thread::sleep_for(now - start < std::chrono::seconds(1) ? std::chrono::microseconds(50)
                                                                       : std::chrono::microseconds(1000));
    }
  }

 private:
  Seconds timeout_;
  int rank_ = 0;
  int size_ = 1;
  MPI_Comm comm_ = MPI_COMM_NULL;
};

MpiPending::~MpiPending() {
  if (done_) return;
  try {
    wait();
  } catch (const std::exception& e) {
    abort_job(fmt::format("tpp: rank {}: all_reduce failed while being dropped: {}", comm_.rank(), e.what()), 1);
  }
}

void MpiPending::wait() {
  if (done_) return;
  comm_.wait_for(requests_, {"all_reduce", buffer_.count, buffer_.dtype});
  done_ = true;
  if (op_ != ReduceOp::avg) return;
  const int world = comm_.world_size();
  dispatch_floating(buffer_.dtype, "all_reduce", [&](auto zero) {
    using T = decltype(zero);
    T* values = static_cast<T*>(buffer_.data);
    for (int64_t i = 0; i < buffer_.count; ++i) values[i] /= static_cast<T>(world);
  });
}

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(const LaunchEnv& env, Seconds timeout) {
  return std::make_unique<MpiCommunicator>(env, timeout);
}

bool mpi_built() { return true; }

bool mpi_running() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized && !finalized;
}

std::string mpi_version_text() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int length = 0;
  MPI_Get_library_version(text, &length);  // callable before MPI_Init
  const std::string_view version(text, static_cast<size_t>(length));
  return fmt::format("MPI: {}\n", version.substr(0, version.find_first_of(",\n")));
}

void mpi_abort(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);  // MPI_Abort does not return; this keeps [[noreturn]] honest
}

#else  // no MPI in this build

std::unique_ptr<Communicator> make_mpi_communicator(const LaunchEnv& env, Seconds) {
  fail("communicator: {} needs MPI, and this build of tpp has none: install libopenmpi-dev and rebuild "
       "(cmake -DTPP_MPI=ON)",
       env.describe());
}

bool mpi_built() { return false; }
bool mpi_running() { return false; }
std::string mpi_version_text() { return "MPI: not built\n"; }
void mpi_abort(int code) { std::_Exit(code); }

#endif

}  // namespace tpp::dist
