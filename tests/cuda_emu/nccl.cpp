// The NCCL entry points the engine calls, written from NVIDIA's NCCL
// documentation, with the ranks as threads of one process: communicators
// made from one unique id form a clique; a collective is queued on the
// caller's stream and completes when every rank of the clique has reached it
// (the last one to arrive computes the result for all). Communicators are
// non-blocking: set-up reports ncclInProgress through ncclCommGetAsyncError
// until every rank has joined; ncclCommAbort frees the ranks waiting in a
// collective, which then fail with ncclRemoteError.
#include <nccl.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
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

struct Call {
  Kind kind = Kind::all_reduce;
  const void* send = nullptr;
  void* recv = nullptr;
  size_t count = 0;
  ncclDataType_t type = ncclFloat32;
  ncclRedOp_t op = ncclSum;
  int root = 0;
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

template <class T>
void reduce_into(const std::vector<Call>& calls, ncclRedOp_t op) {
  const size_t n = calls.front().count;
  std::vector<T> result(n);
  for (size_t i = 0; i < n; ++i) {
    T acc = static_cast<const T*>(calls[0].send)[i];
    for (size_t r = 1; r < calls.size(); ++r) {
      const T v = static_cast<const T*>(calls[r].send)[i];
      switch (op) {
        case ncclSum: case ncclAvg: acc = static_cast<T>(acc + v); break;
        case ncclProd: acc = static_cast<T>(acc * v); break;
        case ncclMax: acc = acc < v ? v : acc; break;
        case ncclMin: acc = v < acc ? v : acc; break;
        default: break;
      }
    }
    result[i] = op == ncclAvg ? static_cast<T>(acc / static_cast<T>(calls.size())) : acc;
  }
  for (const Call& c : calls) std::memcpy(c.recv, result.data(), n * sizeof(T));
}

void reduce_all(const std::vector<Call>& calls) {
  const Call& c = calls.front();
  switch (c.type) {
    case ncclFloat32: reduce_into<float>(calls, c.op); break;
    case ncclFloat64: reduce_into<double>(calls, c.op); break;
    case ncclInt64: reduce_into<int64_t>(calls, c.op); break;
    case ncclUint64: reduce_into<uint64_t>(calls, c.op); break;
    case ncclInt32: reduce_into<int32_t>(calls, c.op); break;
    case ncclUint32: reduce_into<uint32_t>(calls, c.op); break;
    case ncclUint8: reduce_into<uint8_t>(calls, c.op); break;
    case ncclInt8: reduce_into<int8_t>(calls, c.op); break;
    default: break;
  }
}

void execute(const std::vector<Call>& calls) {
  const Call& first = calls.front();
  const size_t bytes = first.count * type_bytes(first.type);
  switch (first.kind) {
    case Kind::all_reduce: reduce_all(calls); break;
    case Kind::broadcast: {
      const std::vector<unsigned char> data(static_cast<const unsigned char*>(calls[first.root].send),
                                            static_cast<const unsigned char*>(calls[first.root].send) + bytes);
      for (const Call& c : calls) std::memcpy(c.recv, data.data(), bytes);
      break;
    }
    case Kind::all_gather: {
      std::vector<unsigned char> data(bytes * calls.size());
      for (size_t r = 0; r < calls.size(); ++r) std::memcpy(data.data() + r * bytes, calls[r].send, bytes);
      for (const Call& c : calls) std::memcpy(c.recv, data.data(), data.size());
      break;
    }
  }
}

// The ranks of one unique id.
struct Clique {
  explicit Clique(int n) : size(n), calls(static_cast<size_t>(n)), posted(static_cast<size_t>(n), false) {}
  const int size;
  std::mutex mutex;
  std::condition_variable changed;
  int joined = 0;
  std::vector<bool> member = std::vector<bool>(static_cast<size_t>(size), false);
  std::vector<Call> calls;
  std::vector<bool> posted;
  int arrived = 0;
  uint64_t generation = 0;
  bool aborted = false;
  std::string mismatch;

  // Rank r's part of the next collective; false when the clique was aborted
  // or the ranks' calls do not match (message in `why`).
  bool take_part(int r, const Call& call, std::string& why) {
    std::unique_lock lock(mutex);
    if (aborted) return why = "another rank aborted the communicator", false;
    calls[static_cast<size_t>(r)] = call;
    posted[static_cast<size_t>(r)] = true;
    const uint64_t mine = generation;
    if (++arrived == size) {
      const Call& a = calls.front();
      mismatch.clear();
      for (const Call& b : calls)
        if (b.kind != a.kind || b.count != a.count || b.type != a.type || b.op != a.op || b.root != a.root)
          mismatch = fmt::format("the ranks called different collectives: {} of {} elements and {} of {} elements",
                                 kind_name(a.kind), a.count, kind_name(b.kind), b.count);
      if (mismatch.empty()) execute(calls);
      arrived = 0;
      std::fill(posted.begin(), posted.end(), false);
      ++generation;
      changed.notify_all();
    } else {
      changed.wait(lock, [&] { return generation != mine || aborted; });
      if (generation == mine) return why = "another rank aborted the communicator", false;
    }
    if (!mismatch.empty()) return why = mismatch, false;
    return true;
  }

  void abort() {
    const std::lock_guard lock(mutex);
    aborted = true;
    changed.notify_all();
  }
};

std::mutex cliques_mutex;
std::map<std::string, std::weak_ptr<Clique>>& cliques() {
  static auto* c = new std::map<std::string, std::weak_ptr<Clique>>();
  return *c;
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
  if (!valid(comm)) return fail(ncclInvalidArgument, fmt::format("{}: not a communicator", kind_name(call.kind)));
  if ((call.send == nullptr || call.recv == nullptr) && call.count > 0)
    return fail(ncclInvalidArgument, fmt::format("{}: a null buffer", kind_name(call.kind)));
  if (type_bytes(call.type) == 0)
    return fail(ncclInvalidArgument, fmt::format("{}: unsupported data type {}", kind_name(call.kind), static_cast<int>(call.type)));
  const std::shared_ptr<CommState> state = comm->state;
  if (call.root < 0 || call.root >= state->clique->size)
    return fail(ncclInvalidArgument, fmt::format("{}: root {} is not a rank of {}", kind_name(call.kind), call.root,
                                                 state->clique->size));
  if (call.kind == Kind::all_reduce && (call.op < ncclSum || call.op > ncclAvg))
    return fail(ncclInvalidArgument, fmt::format("ncclAllReduce: unknown reduction {}", static_cast<int>(call.op)));
  // Never on the caller's thread: it must not wait for the other ranks.
  const cudaError_t queued = tpp_emu::enqueue(stream, [state, call] {
    std::string why;
    if (!state->clique->take_part(state->rank, call, why)) {
      const std::lock_guard lock(state->message_mutex);
      state->message = fmt::format("{}: {}", kind_name(call.kind), why);
      state->async_error = state->clique->aborted ? ncclRemoteError : ncclInvalidUsage;
    }
  }, false);
  if (queued != cudaSuccess) return fail(ncclUnhandledCudaError, fmt::format("{}: the stream does not exist", kind_name(call.kind)));
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
  const std::string key(id.internal, sizeof id.internal);
  std::shared_ptr<Clique> clique;
  {
    const std::lock_guard lock(cliques_mutex);
    clique = cliques()[key].lock();
    if (clique == nullptr) {
      clique = std::make_shared<Clique>(nranks);
      cliques()[key] = clique;
    }
  }
  {
    const std::lock_guard lock(clique->mutex);
    if (clique->size != nranks)
      return fail(ncclInvalidUsage, fmt::format("ncclCommInitRankConfig: {} ranks, but another rank of this id said {}",
                                                nranks, clique->size));
    if (clique->member[static_cast<size_t>(rank)])
      return fail(ncclInvalidUsage, fmt::format("ncclCommInitRankConfig: rank {} joined this id twice", rank));
    clique->member[static_cast<size_t>(rank)] = true;
    ++clique->joined;
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
  Clique& clique = *comm->state->clique;
  const std::lock_guard lock(clique.mutex);
  *async_error = clique.joined < clique.size ? ncclInProgress : ncclSuccess;
  return ncclSuccess;
}

ncclResult_t ncclAllReduce(const void* send, void* recv, size_t count, ncclDataType_t type, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream) {
  return enqueue_collective(comm, Call{Kind::all_reduce, send, recv, count, type, op, 0}, stream);
}

ncclResult_t ncclBroadcast(const void* send, void* recv, size_t count, ncclDataType_t type, int root, ncclComm_t comm,
                           cudaStream_t stream) {
  return enqueue_collective(comm, Call{Kind::broadcast, send, recv, count, type, ncclSum, root}, stream);
}

ncclResult_t ncclAllGather(const void* send, void* recv, size_t count, ncclDataType_t type, ncclComm_t comm,
                           cudaStream_t stream) {
  return enqueue_collective(comm, Call{Kind::all_gather, send, recv, count, type, ncclSum, 0}, stream);
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
  if (abort) comm->state->clique->abort();
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
