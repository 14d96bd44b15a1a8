// Streams for GPU tests (CUDA builds only), and a gate that holds a stream's
// queue so that tests can tell "queued" from "completed".
#pragma once

#include <cuda_runtime_api.h>

#include <atomic>
#include <thread>

#include "engine/cuda/caching_allocator.h"
#include "engine/cuda/check.h"
#include "engine/cuda/pinned_pool.h"

struct TestStream {
  cudaStream_t handle = nullptr;
  TestStream() { TPP_CUDA_CHECK(cudaStreamCreateWithFlags(&handle, cudaStreamNonBlocking)); }
  // As every stream's owner must: the process-wide caches forget it first.
  ~TestStream() {
    cudaStreamSynchronize(handle);
    tpp::cuda::device_allocator(tpp::cuda::current_device()).forget_stream(handle);
    tpp::cuda::pinned_pool().forget_stream(handle);
    cudaStreamDestroy(handle);
  }
  TestStream(const TestStream&) = delete;
  TestStream& operator=(const TestStream&) = delete;
};

// Holds a stream's queue until destroyed: the stream runs a host function that
// waits for the flag, so work queued behind it cannot have completed.
class StreamGate {
 public:
  explicit StreamGate(cudaStream_t stream) : stream_(stream) {
    TPP_CUDA_CHECK(cudaLaunchHostFunc(stream, &StreamGate::wait, &open_));
  }
  ~StreamGate() {
    open_ = true;
    cudaStreamSynchronize(stream_);  // the host function reads open_ until then
  }
  StreamGate(const StreamGate&) = delete;
  StreamGate& operator=(const StreamGate&) = delete;

 private:
  static void wait(void* flag) {
    while (!static_cast<std::atomic<bool>*>(flag)->load()) std::this_thread::yield();
  }
  cudaStream_t stream_;
  std::atomic<bool> open_{false};
};

