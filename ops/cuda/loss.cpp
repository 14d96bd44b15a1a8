// CUDA builds only: the Tensor-level cross-entropy entry points and the
// monitor that reports out-of-range targets without stalling the GPU.
#include "ops/cuda/loss.h"

#include <cstring>
#include <map>
#include <memory>
#include <mutex>

#include "engine/cuda/caching_allocator.h"
#include "engine/cuda/check.h"
#include "engine/cuda/pinned_pool.h"
#include "engine/cuda/stream.h"
#include "engine/cuda/tensor_transfer.h"
#include "engine/finite.h"
#include "engine/tensor.h"
#include "ops/cuda/kernel_args.h"

namespace tpp::ops::cuda {

namespace {

using kernels::TargetFault;

// One GPU's record of bad targets: the kernels write it on the device; after
// each forward a copy to pinned host memory is queued with an event behind
// it, and the next forward reads that copy if the event has completed (never
// waiting for it). The record is sticky until reported, so a fault is found
// by some later call even while the GPU runs behind the host.
class TargetFaultMonitor {
 public:
  explicit TargetFaultMonitor(cudaStream_t stream)
      : device_record_(tpp::cuda::device_allocate(sizeof(TargetFault), stream)),
        host_copy_(tpp::cuda::pinned_allocate(sizeof(TargetFault), stream)) {
    TPP_CUDA_CHECK(cudaMemsetAsync(device_record_.data(), 0, sizeof(TargetFault), stream));
    TPP_CUDA_CHECK(cudaEventCreateWithFlags(&copied_, cudaEventDisableTiming));
  }
  TargetFaultMonitor(const TargetFaultMonitor&) = delete;
  TargetFaultMonitor& operator=(const TargetFaultMonitor&) = delete;

  std::mutex& mutex() { return mutex_; }
  TargetFault* device_record() { return static_cast<TargetFault*>(device_record_.data()); }

  // Throws if an earlier forward's record has reached the host flagged.
  void raise_if_reported(const Device& device, cudaStream_t stream) {
    if (!copy_pending_) return;
    const cudaError_t state = cudaEventQuery(copied_);
    if (state == cudaErrorNotReady) return;
    TPP_CUDA_CHECK(state);
    copy_pending_ = false;
    TargetFault seen;
    std::memcpy(&seen, host_copy_.data(), sizeof seen);
    if (!seen.flagged) return;
    clear(stream);
    fail("cross_entropy: target {} at position {} is out of range for {} classes (found on {} after the call that "
         "used it, whose loss is NaN)",
         seen.value, seen.position, seen.classes, device.str());
  }

  // Queues the copy of the record to the host, for a later call to read.
  void request_report() {
    tpp::cuda::copy_to_host_async(host_copy_, device_record_.data(), sizeof(TargetFault));
    TPP_CUDA_CHECK(cudaEventRecord(copied_, host_copy_.stream()));
    copy_pending_ = true;
  }

  // Waits for the record and throws at once if it is flagged (TPP_SYNC_DEBUG).
  void raise_now(const Device& device, cudaStream_t stream) {
    TargetFault seen;
    tpp::cuda::download_bytes(&seen, device_record_.data(), sizeof seen, device.index);
    if (!seen.flagged) return;
    clear(stream);
    fail("cross_entropy: target {} at position {} is out of range for {} classes", seen.value, seen.position,
         seen.classes);
  }

 private:
  void clear(cudaStream_t stream) {
    TPP_CUDA_CHECK(cudaMemsetAsync(device_record_.data(), 0, sizeof(TargetFault), stream));
    std::memset(host_copy_.data(), 0, sizeof(TargetFault));
  }

  std::mutex mutex_;
  tpp::cuda::DeviceBuffer device_record_;
  tpp::cuda::PinnedBuffer host_copy_;
  cudaEvent_t copied_ = nullptr;
  bool copy_pending_ = false;
};

// The monitor of the current GPU. Monitors live as long as the process (never
// destroyed, so that no CUDA call runs during static destruction).
TargetFaultMonitor& target_fault_monitor(int device, cudaStream_t stream) {
  static std::mutex registry_mutex;
  static auto* monitors = new std::map<int, std::unique_ptr<TargetFaultMonitor>>();
  const std::lock_guard lock(registry_mutex);
  std::unique_ptr<TargetFaultMonitor>& monitor = (*monitors)[device];
  if (!monitor) monitor = std::make_unique<TargetFaultMonitor>(stream);
  return *monitor;
}

}  // namespace

void cross_entropy_forward(const Tensor& logits, const Tensor& target, const FusedCrossEntropy& opts,
                           const Tensor& probs, const Tensor& loss, const Tensor& divisor) {
  constexpr std::string_view op = "cross_entropy";
  const Device device = logits.device();
  check_kernel_arg(op, "logits", logits, device, logits.dtype());
  check_kernel_arg(op, "target", target, device, DType::i64);
  check_kernel_arg(op, "probs", probs, device, logits.dtype());
  check_kernel_arg(op, "loss", loss, device, logits.dtype());
  check_kernel_arg(op, "divisor", divisor, device, DType::f64);
  const int64_t n = logits.size(0), c = logits.size(1);
  TPP_CHECK(target.numel() == n && probs.numel() == n * c && loss.numel() == 1 && divisor.numel() == 1,
            "cross_entropy: bad CUDA kernel arguments for logits of shape {}", shape_str(logits.sizes()));
  const tpp::cuda::DeviceGuard guard(device.index);
  const cudaStream_t stream = tpp::cuda::current_stream();
  TargetFaultMonitor& monitor = target_fault_monitor(device.index, stream);
  const std::lock_guard lock(monitor.mutex());
  monitor.raise_if_reported(device, stream);
  // Back to the cache at the end of this scope; the stream-ordered cache
  // hands it out again only to work queued after these kernels.
  const tpp::cuda::DeviceBuffer row_loss = tpp::cuda::device_allocate(n * sizeof(double), stream);
  kernels::launch_cross_entropy_forward(logits.raw_data(), target.data<int64_t>(), probs.raw_data(),
                                        static_cast<double*>(row_loss.data()), loss.raw_data(),
                                        divisor.data<double>(), monitor.device_record(), logits.dtype(), n, c, opts,
                                        stream);
  if (sync_debug()) monitor.raise_now(device, stream);
  else monitor.request_report();
}

void cross_entropy_backward(const Tensor& probs, const Tensor& target, const FusedCrossEntropy& opts,
                            const Tensor& divisor, const Tensor& dloss, const Tensor& dlogits) {
  constexpr std::string_view op = "cross_entropy backward";
  const Device device = probs.device();
  check_kernel_arg(op, "probs", probs, device, probs.dtype());
  check_kernel_arg(op, "target", target, device, DType::i64);
  check_kernel_arg(op, "divisor", divisor, device, DType::f64);
  check_kernel_arg(op, "dloss", dloss, device, probs.dtype());
  check_kernel_arg(op, "dlogits", dlogits, device, probs.dtype());
  const int64_t n = probs.size(0), c = probs.size(1);
  TPP_CHECK(target.numel() == n && divisor.numel() == 1 && dloss.numel() == 1 && dlogits.numel() == n * c,
            "cross_entropy backward: bad CUDA kernel arguments for probs of shape {}", shape_str(probs.sizes()));
  const tpp::cuda::DeviceGuard guard(device.index);
  kernels::launch_cross_entropy_backward(probs.raw_data(), target.data<int64_t>(), divisor.data<double>(),
                                         dloss.raw_data(), dlogits.raw_data(), probs.dtype(), n, c, opts,
                                         tpp::cuda::current_stream());
}

}  // namespace tpp::ops::cuda
