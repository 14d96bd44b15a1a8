// CUDA builds only (compiled when TPP_WITH_CUDA): the NCCL backend.
//
// Collectives run on the communicator's own stream, ordered after the work
// already queued on the compute stream (an event), so gradient buckets reduce
// while backward goes on. The communicator is non-blocking (NCCL >= 2.14):
// set-up and every call are polled against the collective timeout, and
// synchronize() polls the last collective's event; past the deadline the
// communicator is aborted (ncclCommAbort frees ranks stuck in a kernel) and
// so is the job. A watchdog thread holds every collective to the same
// deadline, so that a host blocked elsewhere (a download on the compute
// stream, which waits for the collective) cannot hang when a peer died.
#include "engine/cuda/nccl_communicator.h"

#include <cuda_runtime_api.h>
#include <fmt/format.h>
#include <nccl.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <string>
#include <thread>

#include "engine/cuda/caching_allocator.h"
#include "engine/cuda/check.h"
#include "engine/cuda/stream.h"
#include "engine/rendezvous.h"

#if NCCL_VERSION_CODE < NCCL_VERSION(2, 14, 0)
#error "tpp needs NCCL 2.14 or newer (non-blocking communicators bound the collectives by a timeout)"
#endif

namespace tpp::dist {
namespace {

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::f32: return ncclFloat32;
    case DType::f64: return ncclFloat64;
    case DType::i64: return ncclInt64;
    case DType::u8: return ncclUint8;
  }
  fail("nccl: unknown dtype {}", static_cast<int>(t));
}

using Clock = std::chrono::steady_clock;

// The engine's compute stream of a GPU (engine/cuda/stream.h), whose work
// collectives follow and which waits for their results.
cudaStream_t compute_stream_of(const Device& device) { return ::tpp::cuda::compute_stream(device.index); }

class NcclPending final : public PendingCollective {
 public:
  NcclPending(cudaEvent_t done, cudaStream_t compute) : done_(done), compute_(compute) {}
  ~NcclPending() override {
    try {
      wait();
    } catch (const std::exception& e) {
      abort_job(fmt::format("tpp: NCCL all_reduce failed while being dropped: {}", e.what()), 1);
    }
    cudaEventDestroy(done_);
  }
  // The compute stream waits; the host does not.
  void wait() override {
    if (waited_) return;
    TPP_CUDA_CHECK(cudaStreamWaitEvent(compute_, done_, 0));
    waited_ = true;
  }

 private:
  cudaEvent_t done_;
  cudaStream_t compute_;
  bool waited_ = false;
};

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(const LaunchEnv& env, Communicator* bootstrap, Seconds timeout)
      : rank_(env.rank), size_(env.world_size), timeout_(timeout) {
    TPP_CHECK(env.local_rank_known,
              "communicator: {}: NCCL needs each process's local rank to choose its GPU, and this launcher does "
              "not give it (set LOCAL_RANK)",
              env.describe());
    int devices = 0;
    TPP_CUDA_CHECK(cudaGetDeviceCount(&devices));
    TPP_CHECK(env.local_rank < devices,
              "communicator: {} drives GPU {} but this node shows {} GPU(s): start one process per GPU (check "
              "CUDA_VISIBLE_DEVICES)",
              env.describe(), env.local_rank, devices);
    device_ = Device::cuda(env.local_rank);
    TPP_CUDA_CHECK(cudaSetDevice(env.local_rank));
    const ncclUniqueId id = share_unique_id(env, bootstrap);
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    TPP_NCCL_CHECK(ncclCommInitRankConfig(&comm_, size_, id, rank_, &config));
    await_comm("set-up (ncclCommInitRankConfig)");
    TPP_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    TPP_CUDA_CHECK(cudaEventCreateWithFlags(&inputs_ready_, cudaEventDisableTiming));
    TPP_CUDA_CHECK(cudaEventCreateWithFlags(&last_issued_, cudaEventDisableTiming));
    scratch_ = ::tpp::cuda::device_allocate(64, stream_);
    watchdog_ = std::thread([this] { watch_collectives(); });
  }

  ~NcclCommunicator() override {
    stop_watchdog();
    if (stream_) {  // as the allocator asks of a stream's owner: its buffers go first
      scratch_.reset();
      cudaStreamSynchronize(stream_);
      ::tpp::cuda::device_allocator(device_.index).forget_stream(stream_);
    }
    if (inputs_ready_) cudaEventDestroy(inputs_ready_);
    if (last_issued_) cudaEventDestroy(last_issued_);
    if (stream_) cudaStreamDestroy(stream_);
    if (!comm_) return;
    try {
      TPP_NCCL_CHECK(ncclCommFinalize(comm_));
      await_comm("shut-down (ncclCommFinalize)");
      ncclCommDestroy(comm_);
    } catch (const std::exception&) {
      ncclCommAbort(comm_);
    }
  }
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int world_size() const override { return size_; }
  std::string_view backend() const override { return "nccl"; }
  Device device() const override { return device_; }

  std::unique_ptr<PendingCollective> all_reduce_async(Buffer buffer, ReduceOp op) override {
    TPP_CHECK(is_floating(buffer.dtype), "all_reduce: expected f32 or f64 but got {}", dtype_name(buffer.dtype));
    follow_compute_stream();
    TPP_NCCL_CHECK(ncclAllReduce(buffer.data, buffer.data, static_cast<size_t>(buffer.count),
                                 nccl_type(buffer.dtype), op == ReduceOp::avg ? ncclAvg : ncclSum, comm_, stream_));
    await_comm("all_reduce");
    watch("all_reduce");
    cudaEvent_t done = nullptr;
    TPP_CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
    TPP_CUDA_CHECK(cudaEventRecord(done, stream_));
    return std::make_unique<NcclPending>(done, compute_stream_of(device_));
  }

  void broadcast(Buffer buffer, int root) override {
    check_root(root, "broadcast");
    follow_compute_stream();
    TPP_NCCL_CHECK(ncclBroadcast(buffer.data, buffer.data, static_cast<size_t>(buffer.count),
                                 nccl_type(buffer.dtype), root, comm_, stream_));
    await_comm("broadcast");
    watch("broadcast");
    lead_compute_stream();
  }

  void all_gather(Buffer input, Buffer output) override {
    TPP_CHECK(output.count == input.count * size_, "all_gather: output has {} elements but {} ranks x {} need {}",
              output.count, size_, input.count, input.count * size_);
    follow_compute_stream();
    TPP_NCCL_CHECK(ncclAllGather(input.data, output.data, static_cast<size_t>(input.count), nccl_type(input.dtype),
                                 comm_, stream_));
    await_comm("all_gather");
    watch("all_gather");
    lead_compute_stream();
  }

  void barrier() override {
    TPP_NCCL_CHECK(ncclAllReduce(scratch_.data(), scratch_.data(), 1, ncclFloat32, ncclSum, comm_, stream_));
    await_comm("barrier");
    watch("barrier");
    synchronize();
  }

  // Through device memory: the size first, then the bytes, all on our stream.
  void broadcast_bytes(std::vector<uint8_t>& bytes, int root) override {
    check_root(root, "broadcast_bytes");
    uint64_t size = bytes.size();
    TPP_CUDA_CHECK(cudaMemcpyAsync(scratch_.data(), &size, sizeof(size), cudaMemcpyHostToDevice, stream_));
    TPP_NCCL_CHECK(ncclBroadcast(scratch_.data(), scratch_.data(), 1, ncclUint64, root, comm_, stream_));
    await_comm("broadcast_bytes (size)");
    watch("broadcast_bytes (size)");
    TPP_CUDA_CHECK(cudaMemcpyAsync(&size, scratch_.data(), sizeof(size), cudaMemcpyDeviceToHost, stream_));
    synchronize();
    bytes.resize(size);
    if (size == 0) return;
    const ::tpp::cuda::DeviceBuffer staging = ::tpp::cuda::device_allocate(size, stream_);
    TPP_CUDA_CHECK(cudaMemcpyAsync(staging.data(), bytes.data(), size, cudaMemcpyHostToDevice, stream_));
    TPP_NCCL_CHECK(ncclBroadcast(staging.data(), staging.data(), size, ncclUint8, root, comm_, stream_));
    await_comm("broadcast_bytes");
    watch("broadcast_bytes");
    TPP_CUDA_CHECK(cudaMemcpyAsync(bytes.data(), staging.data(), size, cudaMemcpyDeviceToHost, stream_));
    synchronize();
  }

  void synchronize() override {
    TPP_CUDA_CHECK(cudaEventRecord(last_issued_, stream_));
    const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(timeout_);
    for (;;) {
      const cudaError_t state = cudaEventQuery(last_issued_);
      if (state == cudaSuccess) return;
      if (state != cudaErrorNotReady) TPP_CUDA_CHECK(state);
      ncclResult_t async_error = ncclSuccess;
      TPP_NCCL_CHECK(ncclCommGetAsyncError(comm_, &async_error));
      TPP_NCCL_CHECK(async_error);
      if (Clock::now() >= deadline) timed_out("the collectives in flight");
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  }

 private:
  ncclUniqueId share_unique_id(const LaunchEnv& env, Communicator* bootstrap) const {
    ncclUniqueId id{};
    if (rank_ == 0) TPP_NCCL_CHECK(ncclGetUniqueId(&id));
    if (size_ == 1) return id;
    std::vector<uint8_t> bytes(sizeof(id));
    std::memcpy(bytes.data(), &id, sizeof(id));
    if (bootstrap) {
      bootstrap->broadcast_bytes(bytes, 0);
    } else {
      TPP_CHECK(!env.master_addr.empty() && env.master_port != 0,
                "communicator: {}: with no MPI launcher the NCCL id goes through the TCP rendezvous, which needs "
                "MASTER_ADDR and MASTER_PORT (torchrun sets them)",
                env.describe());
      bytes = rendezvous_broadcast(RendezvousConfig{env.master_addr, env.master_port, rank_, size_, timeout_}, bytes);
    }
    TPP_CHECK(bytes.size() == sizeof(id), "communicator: the NCCL id from rank 0 has {} bytes, not {}", bytes.size(),
              sizeof(id));
    std::memcpy(&id, bytes.data(), sizeof(id));
    return id;
  }

  // Our stream starts after the work already queued on the compute stream...
  void follow_compute_stream() {
    TPP_CUDA_CHECK(cudaEventRecord(inputs_ready_, compute_stream_of(device_)));
    TPP_CUDA_CHECK(cudaStreamWaitEvent(stream_, inputs_ready_, 0));
  }
  // ...and the compute stream goes on after our result.
  void lead_compute_stream() {
    TPP_CUDA_CHECK(cudaEventRecord(last_issued_, stream_));
    TPP_CUDA_CHECK(cudaStreamWaitEvent(compute_stream_of(device_), last_issued_, 0));
  }

  // A non-blocking communicator answers "in progress" until a call is
  // through; polled against the deadline.
  void await_comm(std::string_view what) {
    const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(timeout_);
    for (;;) {
      ncclResult_t state = ncclInProgress;
      TPP_NCCL_CHECK(ncclCommGetAsyncError(comm_, &state));
      if (state == ncclSuccess) return;
      if (state != ncclInProgress)
        fail("communicator: rank {} of {}: NCCL {} failed: {}", rank_, size_, what, ncclGetErrorString(state));
      if (Clock::now() >= deadline) timed_out(what);
      std::this_thread::yield();
    }
  }

  // Ends the job (from the host thread or the watchdog, whichever is first;
  // the other waits for the end).
  [[noreturn]] void timed_out(std::string_view what) {
    if (!aborting_.exchange(true)) {
      ncclCommAbort(comm_);
      abort_job(fmt::format("tpp: rank {} of {}: NCCL {} did not complete within {:g} s (TPP_COLLECTIVE_TIMEOUT): "
                            "another rank died, hangs, or runs different collectives; aborting the job",
                            rank_, size_, what, timeout_.count()),
                kCollectiveTimeoutExitCode);
    }
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
  }

  // The watchdog: each collective queued on our stream must complete by its
  // deadline, whatever the host thread is waiting on meanwhile.
  struct Watched {
    cudaEvent_t done;
    std::string what;
    Clock::time_point deadline;
  };

  void watch(std::string_view what) {
    cudaEvent_t done = nullptr;
    TPP_CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
    TPP_CUDA_CHECK(cudaEventRecord(done, stream_));
    const std::lock_guard lock(watch_mutex_);
    watched_.push_back({done, std::string(what), Clock::now() + std::chrono::duration_cast<Clock::duration>(timeout_)});
    watch_changed_.notify_all();
  }

  void watch_collectives() {
    std::unique_lock lock(watch_mutex_);
    while (!stopping_) {
      if (watched_.empty()) {
        watch_changed_.wait(lock);
        continue;
      }
      Watched& oldest = watched_.front();
      if (cudaEventQuery(oldest.done) != cudaErrorNotReady) {  // done (a failure is the host thread's to report)
        cudaEventDestroy(oldest.done);
        watched_.pop_front();
        continue;
      }
      if (Clock::now() >= oldest.deadline) {
        const std::string what = oldest.what;
        lock.unlock();
        timed_out(what);
      }
      watch_changed_.wait_for(lock, std::chrono::milliseconds(1));
    }
  }

  void stop_watchdog() {
    if (!watchdog_.joinable()) return;
    {
      const std::lock_guard lock(watch_mutex_);
      stopping_ = true;
      watch_changed_.notify_all();
    }
    watchdog_.join();
    for (const Watched& w : watched_) cudaEventDestroy(w.done);
    watched_.clear();
  }

  int rank_;
  int size_;
  Seconds timeout_;
  Device device_ = Device::cuda(0);
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t inputs_ready_ = nullptr;
  cudaEvent_t last_issued_ = nullptr;
  ::tpp::cuda::DeviceBuffer scratch_;  // 64 bytes: barrier and size broadcasts
  std::atomic<bool> aborting_{false};
  std::mutex watch_mutex_;
  std::condition_variable watch_changed_;
  std::deque<Watched> watched_;
  bool stopping_ = false;
  std::thread watchdog_;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(const LaunchEnv& env, std::unique_ptr<Communicator> bootstrap,
                                                     Seconds timeout) {
  return std::make_unique<NcclCommunicator>(env, bootstrap.get(), timeout);
}

}  // namespace tpp::dist
