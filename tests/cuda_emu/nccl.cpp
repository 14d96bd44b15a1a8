// The NCCL entry points the engine calls, written from NVIDIA's NCCL
// documentation. The ranks of a communicator meet in a POSIX shared-memory
// object named after the unique id, so they may be processes (as the engine
// runs them: one per GPU, under mpirun or torchrun, the id passed by MPI or
// the TCP rendezvous) or threads of one process (the emulator's own tests).
//
// A collective is queued on the caller's stream. The data moves through the
// shared object in chunks: each rank copies its chunk into its slot, the
// ranks meet (the last to arrive checks that they all called the same
// collective), each computes its own result from every slot, in rank order,
// so that all ranks get the same bits, and they meet again before the slots
// are reused.
//
// Communicators are non-blocking: set-up reports ncclInProgress through
// ncclCommGetAsyncError until every rank has joined; ncclCommAbort frees the
// ranks waiting in a collective (in every process), which then fail with
// ncclRemoteError.
#include <fcntl.h>
#include <nccl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "tests/cuda_emu/emu_state.h"

namespace {

thread_local std::string last_error;

ncclResult_t fail(ncclResult_t result, std::string message) {
  last_error = std::move(message);
  return result;
}

enum class Kind { all_reduce, broadcast, all_gather };

const char* kind_name(Kind k) {
  return k == Kind::all_reduce ? "ncclAllReduce" : k == Kind::broadcast ? "ncclBroadcast" : "ncclAllGather";
}

// What every rank must agree on (no pointers: it is shared between processes).
struct Shape {
  Kind kind = Kind::all_reduce;
  size_t count = 0;  // per rank
  ncclDataType_t type = ncclFloat32;
  ncclRedOp_t op = ncclSum;
  int root = 0;
  bool operator==(const Shape&) const = default;
};

struct Call {
  Shape shape;
  const void* send = nullptr;
  void* recv = nullptr;
};

size_t type_bytes(ncclDataType_t t) {
  switch (t) {
    case ncclInt8: case ncclUint8: return 1;
    case ncclFloat16: case ncclBfloat16: return 2;
    case ncclInt32: case ncclUint32: case ncclFloat32: return 4;
    case ncclInt64: case ncclUint64: case ncclFloat64: return 8;
    default: return 0;
  }
}

bool reducible(ncclDataType_t t) { return t != ncclFloat16 && t != ncclBfloat16 && type_bytes(t) != 0; }

template <class T>
void reduce_chunk(const std::vector<const unsigned char*>& parts, unsigned char* out, size_t n, ncclRedOp_t op) {
  for (size_t i = 0; i < n; ++i) {
    T acc;
    std::memcpy(&acc, parts[0] + i * sizeof(T), sizeof(T));
    for (size_t r = 1; r < parts.size(); ++r) {
      T v;
      std::memcpy(&v, parts[r] + i * sizeof(T), sizeof(T));
      switch (op) {
        case ncclSum: case ncclAvg: acc = static_cast<T>(acc + v); break;
        case ncclProd: acc = static_cast<T>(acc * v); break;
        case ncclMax: acc = acc < v ? v : acc; break;
        case ncclMin: acc = v < acc ? v : acc; break;
        default: break;
      }
    }
    if (op == ncclAvg) acc = static_cast<T>(acc / static_cast<T>(parts.size()));
    std::memcpy(out + i * sizeof(T), &acc, sizeof(T));
  }
}

void reduce(const std::vector<const unsigned char*>& parts, unsigned char* out, size_t n, ncclDataType_t type,
            ncclRedOp_t op) {
  switch (type) {
    case ncclFloat32: reduce_chunk<float>(parts, out, n, op); break;
    case ncclFloat64: reduce_chunk<double>(parts, out, n, op); break;
    case ncclInt64: reduce_chunk<int64_t>(parts, out, n, op); break;
    case ncclUint64: reduce_chunk<uint64_t>(parts, out, n, op); break;
    case ncclInt32: reduce_chunk<int32_t>(parts, out, n, op); break;
    case ncclUint32: reduce_chunk<uint32_t>(parts, out, n, op); break;
    case ncclUint8: reduce_chunk<uint8_t>(parts, out, n, op); break;
    case ncclInt8: reduce_chunk<int8_t>(parts, out, n, op); break;
    default: break;
  }
}

constexpr int kMaxRanks = 8;
constexpr size_t kChunkBytes = size_t{1} << 20;  // per rank and round
constexpr size_t kHeaderBytes = 4096;
constexpr size_t kSegmentBytes = kHeaderBytes + kMaxRanks * kChunkBytes;  // pages are touched only as used
constexpr auto kJoinTimeout = std::chrono::seconds(60);

// The head of the shared object: a process-shared, robust mutex, who joined,
// and the two-phase meeting of a collective's round. Waiting ranks poll (no
// process-shared condition variable: one whose waiter was killed hangs the
// next broadcast in glibc, and ranks that die are what abort must survive).
struct SharedClique {
  std::atomic<uint32_t> ready{0};  // the creator has initialised the rest
  pthread_mutex_t mutex;
  int size = 0;
  int joined = 0;
  bool member[kMaxRanks] = {};
  Shape shapes[kMaxRanks];
  int arrived = 0;
  uint64_t generation = 0;
  bool aborted = false;
  char mismatch[256] = {};
};
static_assert(sizeof(SharedClique) <= kHeaderBytes);
static_assert(std::atomic<uint32_t>::is_always_lock_free, "the ready flag is shared between processes");

// Locks the shared mutex; a rank that died holding it leaves it usable.
class SharedLock {
 public:
  explicit SharedLock(SharedClique& c) : c_(c) { recover(pthread_mutex_lock(&c_.mutex)); }
  ~SharedLock() { pthread_mutex_unlock(&c_.mutex); }
  SharedLock(const SharedLock&) = delete;
  SharedLock& operator=(const SharedLock&) = delete;
  // Lets the others in for a while (a short pause, growing up to 1 ms).
  void pause() {
    pthread_mutex_unlock(&c_.mutex);
    std::this_thread::sleep_for(pause_);
    pause_ = std::min(pause_ * 2, std::chrono::microseconds(1000));
    recover(pthread_mutex_lock(&c_.mutex));
  }

 private:
  void recover(int rc) {
    if (rc == EOWNERDEAD) pthread_mutex_consistent(&c_.mutex);
  }
  SharedClique& c_;
  std::chrono::microseconds pause_{20};
};

std::string object_name(const ncclUniqueId& id) {
  std::string name = "/tpp-emu-nccl-";
  for (size_t i = 0; i < 16; ++i) name += fmt::format("{:02x}", static_cast<unsigned char>(id.internal[i]));
  return name;
}

// This process's mapping of one clique's shared object.
class Clique {
 public:
  Clique(std::string name, void* base) : name_(std::move(name)), base_(static_cast<unsigned char*>(base)) {}
  ~Clique() { munmap(base_, kSegmentBytes); }
  Clique(const Clique&) = delete;
  Clique& operator=(const Clique&) = delete;

  SharedClique& shared() { return *reinterpret_cast<SharedClique*>(base_); }
  unsigned char* slot(int rank) { return base_ + kHeaderBytes + static_cast<size_t>(rank) * kChunkBytes; }
  int size() { return shared().size; }
  const std::string& name() const { return name_; }

  // Rank r's part in one collective: ncclRemoteError when the clique was
  // aborted, ncclInvalidUsage when the ranks called different collectives
  // (the reason in `why`).
  ncclResult_t run(int r, const Call& call, std::string& why) {
    const Shape& s = call.shape;
    const size_t elem = type_bytes(s.type), per_round = kChunkBytes / elem;
    const size_t rounds = std::max<size_t>(1, (s.count + per_round - 1) / per_round);
    const auto* send = static_cast<const unsigned char*>(call.send);
    auto* recv = static_cast<unsigned char*>(call.recv);
    for (size_t round = 0; round < rounds; ++round) {
      const size_t first = round * per_round, n = std::min(per_round, s.count - std::min(s.count, first));
      if (n > 0 && (s.kind != Kind::broadcast || r == s.root)) std::memcpy(slot(r), send + first * elem, n * elem);
      if (const ncclResult_t met = meet(r, &s, why); met != ncclSuccess) return met;
      combine(s, first, n, recv);
      if (const ncclResult_t met = meet(r, nullptr, why); met != ncclSuccess) return met;
    }
    return ncclSuccess;
  }

  void abort() {
    SharedLock lock(shared());
    shared().aborted = true;
  }

 private:
  // Waits until every rank has arrived; with a shape, the last to arrive
  // checks that all ranks posted the same one.
  ncclResult_t meet(int r, const Shape* shape, std::string& why) {
    SharedClique& c = shared();
    SharedLock lock(c);
    if (c.aborted) return why = "another rank aborted the communicator", ncclRemoteError;
    if (shape) c.shapes[r] = *shape;
    const uint64_t mine = c.generation;
    if (++c.arrived == c.size) {
      if (shape) check_shapes(c);
      c.arrived = 0;
      ++c.generation;
    } else {
      while (c.generation == mine && !c.aborted) lock.pause();
      if (c.generation == mine) return why = "another rank aborted the communicator", ncclRemoteError;
    }
    if (shape && c.mismatch[0] != '\0') return why = c.mismatch, ncclInvalidUsage;
    return ncclSuccess;
  }

  static void check_shapes(SharedClique& c) {
    c.mismatch[0] = '\0';
    const Shape& a = c.shapes[0];
    for (int r = 1; r < c.size; ++r) {
      const Shape& b = c.shapes[r];
      if (b == a) continue;
      const std::string text = fmt::format(
          "the ranks called different collectives: rank 0 {} of {} elements (type {}, op {}, root {}), rank {} {} of {} "
          "elements (type {}, op {}, root {})",
          kind_name(a.kind), a.count, static_cast<int>(a.type), static_cast<int>(a.op), a.root, r, kind_name(b.kind),
          b.count, static_cast<int>(b.type), static_cast<int>(b.op), b.root);
      std::snprintf(c.mismatch, sizeof c.mismatch, "%s", text.c_str());
      return;
    }
  }

  // This rank's result for elements [first, first + n) from every slot.
  void combine(const Shape& s, size_t first, size_t n, unsigned char* recv) {
    const size_t elem = type_bytes(s.type), bytes = n * elem;
    if (n == 0) return;
    switch (s.kind) {
      case Kind::all_reduce: {
        std::vector<const unsigned char*> parts;
        for (int r = 0; r < size(); ++r) parts.push_back(slot(r));
        reduce(parts, recv + first * elem, n, s.type, s.op);
        break;
      }
      case Kind::broadcast: std::memcpy(recv + first * elem, slot(s.root), bytes); break;
      case Kind::all_gather:
        for (int r = 0; r < size(); ++r)
          std::memcpy(recv + (static_cast<size_t>(r) * s.count + first) * elem, slot(r), bytes);
        break;
    }
  }

  std::string name_;
  unsigned char* base_;
};

// Maps the clique of `name`, creating and initialising it if this rank comes
// first; nullptr with the reason otherwise.
std::shared_ptr<Clique> open_clique(const std::string& name, int nranks, std::string& why) {
  int fd = shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  const bool creator = fd >= 0;
  if (!creator && errno == EEXIST) fd = shm_open(name.c_str(), O_RDWR, 0);
  if (fd < 0) return why = fmt::format("shm_open({}): {}", name, std::strerror(errno)), nullptr;
  const auto deadline = std::chrono::steady_clock::now() + kJoinTimeout;
  if (creator) {
    if (ftruncate(fd, static_cast<off_t>(kSegmentBytes)) != 0) {
      why = fmt::format("ftruncate({}): {}", name, std::strerror(errno));
      close(fd);
      shm_unlink(name.c_str());
      return nullptr;
    }
  } else {
    struct stat st {};
    while (fstat(fd, &st) == 0 && static_cast<size_t>(st.st_size) < kSegmentBytes) {
      if (std::chrono::steady_clock::now() > deadline) {
        close(fd);
        return why = fmt::format("{}: the rank that created it never sized it", name), nullptr;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  void* base = mmap(nullptr, kSegmentBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (base == MAP_FAILED) return why = fmt::format("mmap({}): {}", name, std::strerror(errno)), nullptr;
  auto clique = std::make_shared<Clique>(name, base);
  if (creator) {
    auto* c = new (base) SharedClique();
    pthread_mutexattr_t mutex_attr;
    pthread_mutexattr_init(&mutex_attr);
    pthread_mutexattr_setpshared(&mutex_attr, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&mutex_attr, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&c->mutex, &mutex_attr);
    pthread_mutexattr_destroy(&mutex_attr);
    c->size = nranks;
    c->ready.store(1, std::memory_order_release);
  } else {
    while (clique->shared().ready.load(std::memory_order_acquire) == 0) {
      if (std::chrono::steady_clock::now() > deadline)
        return why = fmt::format("{}: the rank that created it never initialised it", name), nullptr;
      std::this_thread::yield();
    }
  }
  return clique;
}

struct CommState {
  std::shared_ptr<Clique> clique;
  int rank = 0;
  std::atomic<ncclResult_t> async_error{ncclSuccess};
  std::mutex message_mutex;
  std::string message;
};

}  // namespace

struct ncclComm {
  std::shared_ptr<CommState> state;
};

namespace {

std::mutex comms_mutex;
std::map<ncclComm_t, bool>& comms() {
  static auto* c = new std::map<ncclComm_t, bool>();
  return *c;
}
bool valid(ncclComm_t comm) {
  const std::lock_guard lock(comms_mutex);
  return comms().count(comm) != 0;
}

ncclResult_t enqueue_collective(ncclComm_t comm, const Call& call, cudaStream_t stream) {
  const Shape& s = call.shape;
  if (!valid(comm)) return fail(ncclInvalidArgument, fmt::format("{}: not a communicator", kind_name(s.kind)));
  if ((call.send == nullptr || call.recv == nullptr) && s.count > 0)
    return fail(ncclInvalidArgument, fmt::format("{}: a null buffer", kind_name(s.kind)));
  if (type_bytes(s.type) == 0 || (s.kind == Kind::all_reduce && !reducible(s.type)))
    return fail(ncclInvalidArgument, fmt::format("{}: unsupported data type {}", kind_name(s.kind), static_cast<int>(s.type)));
  const std::shared_ptr<CommState> state = comm->state;
  if (s.root < 0 || s.root >= state->clique->size())
    return fail(ncclInvalidArgument, fmt::format("{}: root {} is not a rank of {}", kind_name(s.kind), s.root,
                                                 state->clique->size()));
  if (s.kind == Kind::all_reduce && (s.op < ncclSum || s.op > ncclAvg))
    return fail(ncclInvalidArgument, fmt::format("ncclAllReduce: unknown reduction {}", static_cast<int>(s.op)));
  // Never on the caller's thread: it must not wait for the other ranks.
  const cudaError_t queued = tpp_emu::enqueue(stream, [state, call] {
    std::string why;
    if (const ncclResult_t result = state->clique->run(state->rank, call, why); result != ncclSuccess) {
      const std::lock_guard lock(state->message_mutex);
      state->message = fmt::format("{}: {}", kind_name(call.shape.kind), why);
      state->async_error = result;
    }
  }, false);
  if (queued != cudaSuccess) return fail(ncclUnhandledCudaError, fmt::format("{}: the stream does not exist", kind_name(s.kind)));
  return ncclSuccess;
}

}  // namespace

extern "C" {

ncclResult_t ncclGetVersion(int* version) {
  if (version == nullptr) return fail(ncclInvalidArgument, "ncclGetVersion: null output");
  *version = NCCL_VERSION_CODE;
  return ncclSuccess;
}

ncclResult_t ncclGetUniqueId(ncclUniqueId* id) {
  if (id == nullptr) return fail(ncclInvalidArgument, "ncclGetUniqueId: null output");
  static std::mutex mutex;
  static std::mt19937_64 rng(std::random_device{}());
  const std::lock_guard lock(mutex);
  std::memset(id->internal, 0, sizeof id->internal);
  for (size_t i = 0; i + 8 <= 32; i += 8) {
    const uint64_t v = rng();
    std::memcpy(id->internal + i, &v, 8);
  }
  return ncclSuccess;
}

ncclResult_t ncclCommInitRankConfig(ncclComm_t* comm, int nranks, ncclUniqueId id, int rank, ncclConfig_t*) {
  if (comm == nullptr) return fail(ncclInvalidArgument, "ncclCommInitRankConfig: null output");
  if (nranks < 1 || rank < 0 || rank >= nranks)
    return fail(ncclInvalidArgument, fmt::format("ncclCommInitRankConfig: rank {} of {} ranks", rank, nranks));
  if (nranks > kMaxRanks)
    return fail(ncclInvalidArgument, fmt::format("ncclCommInitRankConfig: {} ranks; the emulator takes up to {}", nranks,
                                                 kMaxRanks));
  std::string why;
  const std::shared_ptr<Clique> clique = open_clique(object_name(id), nranks, why);
  if (clique == nullptr) return fail(ncclSystemError, "ncclCommInitRankConfig: " + why);
  {
    SharedClique& c = clique->shared();
    SharedLock lock(c);
    if (c.size != nranks)
      return fail(ncclInvalidUsage, fmt::format("ncclCommInitRankConfig: {} ranks, but another rank of this id said {}",
                                                nranks, c.size));
    if (c.member[rank]) return fail(ncclInvalidUsage, fmt::format("ncclCommInitRankConfig: rank {} joined this id twice", rank));
    c.member[rank] = true;
    // Every rank has the object mapped once the last has joined: its name can go.
    if (++c.joined == c.size) shm_unlink(clique->name().c_str());
  }
  auto* c = new ncclComm{std::make_shared<CommState>()};
  c->state->clique = clique;
  c->state->rank = rank;
  const std::lock_guard lock(comms_mutex);
  comms()[c] = true;
  *comm = c;
  return ncclSuccess;
}

ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* async_error) {
  if (!valid(comm) || async_error == nullptr) return fail(ncclInvalidArgument, "ncclCommGetAsyncError: not a communicator");
  const ncclResult_t error = comm->state->async_error.load();
  if (error != ncclSuccess) {
    const std::lock_guard lock(comm->state->message_mutex);
    last_error = comm->state->message;
    *async_error = error;
    return ncclSuccess;
  }
  SharedClique& c = comm->state->clique->shared();
  SharedLock lock(c);
  *async_error = c.joined < c.size ? ncclInProgress : ncclSuccess;
  return ncclSuccess;
}

ncclResult_t ncclAllReduce(const void* send, void* recv, size_t count, ncclDataType_t type, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream) {
  return enqueue_collective(comm, Call{{Kind::all_reduce, count, type, op, 0}, send, recv}, stream);
}

ncclResult_t ncclBroadcast(const void* send, void* recv, size_t count, ncclDataType_t type, int root, ncclComm_t comm,
                           cudaStream_t stream) {
  return enqueue_collective(comm, Call{{Kind::broadcast, count, type, ncclSum, root}, send, recv}, stream);
}

ncclResult_t ncclAllGather(const void* send, void* recv, size_t count, ncclDataType_t type, ncclComm_t comm,
                           cudaStream_t stream) {
  return enqueue_collective(comm, Call{{Kind::all_gather, count, type, ncclSum, 0}, send, recv}, stream);
}

ncclResult_t ncclCommFinalize(ncclComm_t comm) {
  if (!valid(comm)) return fail(ncclInvalidArgument, "ncclCommFinalize: not a communicator");
  return ncclSuccess;  // collectives complete in stream order; nothing is pending beyond them
}

static ncclResult_t forget(ncclComm_t comm, bool abort) {
  {
    const std::lock_guard lock(comms_mutex);
    if (comms().erase(comm) == 0) return fail(ncclInvalidArgument, "not a communicator");
  }
  Clique& clique = *comm->state->clique;
  if (abort) clique.abort();
  {
    SharedClique& c = clique.shared();
    SharedLock lock(c);
    if (c.joined < c.size) shm_unlink(clique.name().c_str());  // the others will never all join
  }
  delete comm;
  return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) { return forget(comm, false); }
ncclResult_t ncclCommAbort(ncclComm_t comm) { return comm == nullptr ? ncclSuccess : forget(comm, true); }

const char* ncclGetErrorString(ncclResult_t result) {
  switch (result) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error (run with NCCL_DEBUG=INFO for details)";
    case ncclSystemError: return "unhandled system error (run with NCCL_DEBUG=INFO for details)";
    case ncclInternalError: return "internal error - please report this issue to the NCCL developers";
    case ncclInvalidArgument: return "invalid argument (run with NCCL_DEBUG=WARN for details)";
    case ncclInvalidUsage: return "invalid usage (run with NCCL_DEBUG=WARN for details)";
    case ncclRemoteError: return "remote process exited or there was a network error";
    case ncclInProgress: return "NCCL operation in progress";
    default: return "unknown result code";
  }
}

const char* ncclGetLastError(ncclComm_t) { return last_error.c_str(); }

}  // extern "C"
