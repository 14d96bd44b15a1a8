#include "engine/finite.h"

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <utility>

#include "engine/strided.h"
#if TPP_WITH_CUDA
#include <cuda_runtime_api.h>

#include "engine/cuda/stream.h"
#endif

namespace tpp {

namespace {

constexpr int kUnread = -1;
std::atomic<int> g_sync_debug{kUnread};

bool env_says_on(const char* value) {
  if (value == nullptr) return false;
  const std::string_view v(value);
  return !(v.empty() || v == "0" || v == "false" || v == "off" || v == "no");
}

thread_local const std::string* g_backward_op = nullptr;

// Set while a scan copies a device tensor to the host: that copy is an op
// too, and checking its output would scan (and copy) again, without end.
thread_local bool g_scanning_device_copy = false;
struct ScanningDeviceCopy {
  bool previous = std::exchange(g_scanning_device_copy, true);
  ~ScanningDeviceCopy() { g_scanning_device_copy = previous; }
};

template <class T>
std::optional<NonFinite> scan(const Tensor& t) {
  const auto scan_flat = [](const T* p, int64_t n) -> std::optional<NonFinite> {
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(p[i])) return NonFinite{i, static_cast<double>(p[i])};
    return std::nullopt;
  };
  if (!t.device().is_cpu()) {
    const ScanningDeviceCopy scanning;
    const std::vector<T> host = t.contiguous().to_vector<T>();
    return scan_flat(host.data(), static_cast<int64_t>(host.size()));
  }
  const T* p = t.data<T>();
  if (t.is_contiguous()) return scan_flat(p, t.numel());
  std::optional<NonFinite> found;
  int64_t index = 0;
  StridedLoop<1>(t.sizes(), {&t.strides()}).run([&](const auto& o) {
    if (!found && !std::isfinite(p[o[0]])) found = NonFinite{index, static_cast<double>(p[o[0]])};
    ++index;
  });
  return found;
}

std::string in_backward() {
  return g_backward_op ? fmt::format(" (in backward of '{}')", *g_backward_op) : std::string();
}

// Waits for the GPU work queued so far, so that an asynchronous fault (a bad
// launch, an illegal address) is reported at the op that made it.
void synchronize_after(const Tensor& t, std::string_view op) {
#if TPP_WITH_CUDA
  if (!t.defined() || !t.device().is_cuda()) return;
  const cuda::DeviceGuard guard(t.device().index);
  cudaError_t status = cudaStreamSynchronize(cuda::current_stream());
  if (status == cudaSuccess) status = cudaGetLastError();
  if (status != cudaSuccess)
    throw Error(fmt::format("TPP_SYNC_DEBUG: op '{}'{} failed on {}: {} ({})", op, in_backward(), t.device().str(),
                            cudaGetErrorName(status), cudaGetErrorString(status)));
#else
  (void)t, (void)op;
#endif
}

}  // namespace

std::optional<NonFinite> first_non_finite(const Tensor& t) {
  if (!t.defined() || t.numel() == 0) return std::nullopt;
  switch (t.dtype()) {
    case DType::f32: return scan<float>(t);
    case DType::f64: return scan<double>(t);
    default: return std::nullopt;
  }
}

std::string non_finite_name(double value) {
  if (std::isnan(value)) return "nan";
  return value > 0 ? "inf" : "-inf";
}

bool sync_debug() {
  int state = g_sync_debug.load(std::memory_order_relaxed);
  if (state == kUnread) {
    state = env_says_on(std::getenv("TPP_SYNC_DEBUG")) ? 1 : 0;
    int expected = kUnread;  // a set_sync_debug() that came first wins
    if (!g_sync_debug.compare_exchange_strong(expected, state)) state = expected;
  }
  return state == 1;
}

void set_sync_debug(bool on) { g_sync_debug.store(on ? 1 : 0); }

SyncDebugOverride::SyncDebugOverride(bool on) : previous_(sync_debug()) { set_sync_debug(on); }
SyncDebugOverride::~SyncDebugOverride() { set_sync_debug(previous_); }

BackwardScope::BackwardScope(const std::string& op) : previous_(g_backward_op) { g_backward_op = &op; }
BackwardScope::~BackwardScope() { g_backward_op = previous_; }

void check_op_output(const Tensor& output, std::string_view op, const std::vector<Tensor>& inputs) {
  if (!sync_debug() || !output.defined() || g_scanning_device_copy) return;
  synchronize_after(output, op);
  for (const Tensor& in : inputs)
    if (in.defined() && output.shares_storage_with(in)) return;
  const std::optional<NonFinite> bad = first_non_finite(output);
  if (!bad) return;
  // A non-finite input that no checked op produced: data, a parameter, or a
  // tensor changed in place (an optimizer step).
  std::string cause = "; its inputs are finite";
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::optional<NonFinite> in = first_non_finite(inputs[i]);
    if (!in) continue;
    cause = fmt::format("; input {} (shape {}) already holds {} at element {} (data, a parameter or an in-place "
                        "update)",
                        i, shape_str(inputs[i].sizes()), non_finite_name(in->value), in->index);
    break;
  }
  throw NonFiniteError(fmt::format("TPP_SYNC_DEBUG: op '{}'{} produced {} (shape {}) at element {}{}", op,
                                   in_backward(), non_finite_name(bad->value), shape_str(output.sizes()), bad->index,
                                   cause));
}

void check_backward_output(const Tensor& grad, std::string_view op, size_t input_index) {
  if (!sync_debug()) return;
  synchronize_after(grad, op);
  const std::optional<NonFinite> bad = first_non_finite(grad);
  if (!bad) return;
  throw NonFiniteError(fmt::format("TPP_SYNC_DEBUG: backward of '{}' produced {} in the gradient of input {} (shape "
                                   "{}) at element {}",
                                   op, non_finite_name(bad->value), input_index, shape_str(grad.sizes()), bad->index));
}

}  // namespace tpp
