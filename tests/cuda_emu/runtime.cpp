// The CUDA runtime API of the emulated device, over host memory: device
// memory is host memory that the runtime keeps track of (so that copies of
// the wrong kind and out-of-range copies fail as on a GPU), streams are FIFO
// queues with a thread each (work runs at once on the caller's thread while
// the stream is idle), events mark points in a stream.
#include <cuda_runtime_api.h>

#include <sys/mman.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "tests/cuda_emu/emu_state.h"

namespace tpp_emu {
namespace {

// --- errors ---

struct ErrorState {
  cudaError_t error = cudaSuccess;
};
thread_local ErrorState tls_error;

std::atomic<cudaError_t> async_error{cudaSuccess};

cudaError_t fail(cudaError_t error, std::string detail) {
  set_last_error(error, std::move(detail));
  return error;
}

// --- streams ---

struct Stream {
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<std::function<void()>> queue;
  bool busy = false;
  bool has_thread = false;
  int device = 0;

  void serve() {
    std::unique_lock lock(mutex);
    for (;;) {
      changed.wait(lock, [&] { return !queue.empty() && !busy; });
      std::function<void()> work = std::move(queue.front());
      queue.pop_front();
      run_busy(lock, work);
    }
  }

  void run(std::function<void()> work, bool may_run_inline) {
    std::unique_lock lock(mutex);
    if (may_run_inline && queue.empty() && !busy) {
      run_busy(lock, work);
      return;
    }
    queue.push_back(std::move(work));
    if (!has_thread) {
      has_thread = true;
      std::thread([this] { serve(); }).detach();  // streams live as long as the process may use them
    }
    changed.notify_all();
  }

  void synchronize() {
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] { return queue.empty() && !busy; });
  }

 private:
  // Runs one piece of work with the stream marked busy and the lock released
  // (work may queue more on this stream), then wakes whoever waits.
  void run_busy(std::unique_lock<std::mutex>& lock, const std::function<void()>& work) {
    busy = true;
    lock.unlock();
    work();
    lock.lock();
    busy = false;
    changed.notify_all();
  }
};

// Streams are never freed (a destroyed handle stays invalid, and a detached
// thread may still wait on its queue); the registry tells valid handles.
std::mutex streams_mutex;
std::map<cudaStream_t, Stream*>& streams() {
  static auto* s = new std::map<cudaStream_t, Stream*>();
  return *s;
}
thread_local int tls_device = 0;

// Each device has its own legacy default stream.
// Destroyed streams (see cudaStreamDestroy).
std::vector<Stream*>& retired_streams() {
  static auto* s = new std::vector<Stream*>();
  return *s;
}

Stream& null_stream(int device = tls_device) {
  static auto* s = [] {
    auto* per_device = new std::array<Stream, kMaxDevices>();
    for (int d = 0; d < kMaxDevices; ++d) (*per_device)[static_cast<size_t>(d)].device = d;
    return per_device;
  }();
  return (*s)[static_cast<size_t>(device)];
}

bool is_null_stream(cudaStream_t handle) {
  return handle == nullptr || handle == cudaStreamLegacy || handle == cudaStreamPerThread;
}

Stream* find_stream(cudaStream_t handle) {
  if (is_null_stream(handle)) return &null_stream();
  const std::lock_guard lock(streams_mutex);
  const auto found = streams().find(handle);
  return found == streams().end() ? nullptr : found->second;
}

// The streams of one device, its default stream first.
std::vector<Stream*> streams_of(int device) {
  std::vector<Stream*> out{&null_stream(device)};
  const std::lock_guard lock(streams_mutex);
  for (const auto& [handle, stream] : streams())
    if (stream->device == device) out.push_back(stream);
  return out;
}

// --- events ---

struct Mark {
  std::mutex mutex;
  std::condition_variable reached_cv;
  bool reached = false;
  void reach() {
    const std::lock_guard lock(mutex);
    reached = true;
    reached_cv.notify_all();
  }
  void wait() {
    std::unique_lock lock(mutex);
    reached_cv.wait(lock, [&] { return reached; });
  }
  bool done() {
    const std::lock_guard lock(mutex);
    return reached;
  }
};

struct Event {
  int device = 0;  // current when it was created
  std::mutex mutex;
  std::shared_ptr<Mark> last;  // of the latest record; none: complete
  std::shared_ptr<Mark> current() {
    const std::lock_guard lock(mutex);
    return last;
  }
};

std::mutex events_mutex;
std::map<cudaEvent_t, std::unique_ptr<Event>>& events() {
  static auto* e = new std::map<cudaEvent_t, std::unique_ptr<Event>>();
  return *e;
}
Event* find_event(cudaEvent_t handle) {
  const std::lock_guard lock(events_mutex);
  const auto found = events().find(handle);
  return found == events().end() ? nullptr : found->second.get();
}

// --- memory ---

enum class Memory { device, pinned };

struct Allocation {
  size_t bytes;
  Memory kind;
  int device;
};

std::mutex memory_mutex;
std::map<uintptr_t, Allocation>& allocations() {
  static auto* a = new std::map<uintptr_t, Allocation>();
  return *a;
}
std::array<size_t, kMaxDevices> device_bytes_in_use{};

// The emulated device's memory: a fraction of the host's, whatever the
// properties say (tests ask for more than cudaMemGetInfo's total).
constexpr size_t kDeviceMemoryBytes = size_t{8} << 30;
// Fresh allocations are filled with 0xff (NaN for floats), as uninitialised
// GPU memory is garbage; very large ones stay lazily zeroed pages.
constexpr size_t kPoisonLimit = size_t{64} << 20;

struct Found {
  const Allocation* allocation = nullptr;
  uintptr_t base = 0;
};

// The allocation holding address (memory_mutex held).
Found find_allocation(const void* address) {
  const auto p = reinterpret_cast<uintptr_t>(address);
  auto it = allocations().upper_bound(p);
  if (it == allocations().begin()) return {};
  --it;
  if (p >= it->first + std::max<size_t>(it->second.bytes, 1)) return {};
  return {&it->second, it->first};
}

// Under AddressSanitizer, from its heap (256-byte aligned, as cudaMalloc):
// it then reports any access past the end of an allocation, with the
// kernel's source line. Else whole pages, which stay lazily zeroed when large.
void* allocate(size_t bytes) {
#ifdef TPP_EMU_ASAN
  void* p = nullptr;
  if (posix_memalign(&p, 256, std::max<size_t>(bytes, 1)) != 0) return nullptr;
#else
  void* p = mmap(nullptr, std::max<size_t>(bytes, 1), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
#endif
  if (bytes <= kPoisonLimit) std::memset(p, 0xff, bytes);
  return p;
}

void deallocate(void* p, size_t bytes) {
#ifdef TPP_EMU_ASAN
  (void)bytes;
  std::free(p);
#else
  munmap(p, std::max<size_t>(bytes, 1));
#endif
}

// Where the range [p, p + bytes) lies: on the device, in host memory, or
// across the end of a device allocation (an error).
enum class Place { device, host, overrun };
Place place_of(const void* p, size_t bytes) {
  const std::lock_guard lock(memory_mutex);
  const Found f = find_allocation(p);
  if (f.allocation == nullptr || f.allocation->kind != Memory::device) return Place::host;
  return reinterpret_cast<uintptr_t>(p) + bytes <= f.base + f.allocation->bytes ? Place::device : Place::overrun;
}

const char* place_name(Place p) { return p == Place::device ? "device" : "host"; }

cudaError_t check_copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, const char* call) {
  const Place d = place_of(dst, bytes), s = place_of(src, bytes);
  if (d == Place::overrun || s == Place::overrun)
    return fail(cudaErrorInvalidValue, fmt::format("{} of {} bytes runs past the end of the device allocation of its {}",
                                                   call, bytes, d == Place::overrun ? "destination" : "source"));
  Place want_d = d, want_s = s;
  switch (kind) {
    case cudaMemcpyHostToDevice: want_d = Place::device, want_s = Place::host; break;
    case cudaMemcpyDeviceToHost: want_d = Place::host, want_s = Place::device; break;
    case cudaMemcpyDeviceToDevice: want_d = Place::device, want_s = Place::device; break;
    case cudaMemcpyHostToHost: want_d = Place::host, want_s = Place::host; break;
    case cudaMemcpyDefault: break;
    default: return fail(cudaErrorInvalidMemcpyDirection, fmt::format("{} with copy kind {}", call, static_cast<int>(kind)));
  }
  if (d != want_d || s != want_s)
    return fail(cudaErrorInvalidValue, fmt::format("{} of kind {} copies from {} memory to {} memory", call,
                                                   static_cast<int>(kind), place_name(s), place_name(d)));
  return cudaSuccess;
}

cudaError_t check_device_range(const void* p, size_t bytes, const char* call) {
  if (bytes == 0) return cudaSuccess;
  if (place_of(p, bytes) != Place::device)
    return fail(cudaErrorInvalidValue, fmt::format("{} of {} bytes is not within one device allocation", call, bytes));
  return cudaSuccess;
}

cudaError_t synchronizing(cudaError_t status) {
  if (status != cudaSuccess) return status;
  const cudaError_t pending = async_error.exchange(cudaSuccess);
  if (pending != cudaSuccess) tls_error.error = pending;
  return pending;
}

}  // namespace

int device_count() {
  static const int count = [] {
    const char* text = std::getenv("TPP_EMU_DEVICES");
    if (text == nullptr) return 2;
    const long n = std::strtol(text, nullptr, 10);
    if (n >= 1 && n <= kMaxDevices) return static_cast<int>(n);
    std::fprintf(stderr, "tpp cuda emulator: TPP_EMU_DEVICES=%s is not a count from 1 to %d; using 2\n", text, kMaxDevices);
    return 2;
  }();
  return count;
}

int current_device() { return tls_device; }

int stream_device(cudaStream_t stream) {
  const Stream* s = find_stream(stream);
  return s == nullptr ? -1 : s->device;
}

// The emulator says why on stderr (the runtime API has no room for it);
// running out of memory is the caller's to explain.
void explain(cudaError_t error, const std::string& detail) {
  if (error != cudaErrorMemoryAllocation) std::fprintf(stderr, "tpp cuda emulator: %s: %s\n", cudaGetErrorName(error), detail.c_str());
}

void set_last_error(cudaError_t error, std::string detail) {
  tls_error.error = error;
  explain(error, detail);
}

void set_async_error(cudaError_t error, std::string detail) {
  explain(error, detail);
  async_error.store(error);
}

cudaError_t take_last_error() {
  cudaError_t e = tls_error.error;
  tls_error.error = cudaSuccess;
  const cudaError_t pending = async_error.exchange(cudaSuccess);
  return e != cudaSuccess ? e : pending;
}

cudaError_t peek_last_error() { return tls_error.error != cudaSuccess ? tls_error.error : async_error.load(); }

cudaError_t enqueue(cudaStream_t stream, std::function<void()> work, bool may_run_inline) {
  Stream* s = find_stream(stream);
  if (s == nullptr) return cudaErrorInvalidResourceHandle;
  s->run(std::move(work), may_run_inline);
  return cudaSuccess;
}

}  // namespace tpp_emu

using namespace tpp_emu;

extern "C" {

// --- errors and versions ---

cudaError_t cudaGetLastError() { return take_last_error(); }
cudaError_t cudaPeekAtLastError() { return peek_last_error(); }

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
#define TPP_EMU_NAME(e) \
  case e: return #e;
    TPP_EMU_NAME(cudaSuccess)
    TPP_EMU_NAME(cudaErrorInvalidValue)
    TPP_EMU_NAME(cudaErrorMemoryAllocation)
    TPP_EMU_NAME(cudaErrorInitializationError)
    TPP_EMU_NAME(cudaErrorInvalidConfiguration)
    TPP_EMU_NAME(cudaErrorInvalidDevice)
    TPP_EMU_NAME(cudaErrorInvalidMemcpyDirection)
    TPP_EMU_NAME(cudaErrorInsufficientDriver)
    TPP_EMU_NAME(cudaErrorNoDevice)
    TPP_EMU_NAME(cudaErrorInvalidResourceHandle)
    TPP_EMU_NAME(cudaErrorNotReady)
    TPP_EMU_NAME(cudaErrorIllegalAddress)
    TPP_EMU_NAME(cudaErrorLaunchOutOfResources)
    TPP_EMU_NAME(cudaErrorLaunchFailure)
    TPP_EMU_NAME(cudaErrorMisalignedAddress)
    TPP_EMU_NAME(cudaErrorIllegalInstruction)
    TPP_EMU_NAME(cudaErrorAssert)
    TPP_EMU_NAME(cudaErrorNoKernelImageForDevice)
    TPP_EMU_NAME(cudaErrorDevicesUnavailable)
    TPP_EMU_NAME(cudaErrorUnknown)
#undef TPP_EMU_NAME
    default: return "cudaErrorUnknown";
  }
}

const char* cudaGetErrorString(cudaError_t error) {
  const char* text = "unknown error";
  switch (error) {
    case cudaSuccess: text = "no error"; break;
    case cudaErrorInvalidValue: text = "invalid argument"; break;
    case cudaErrorMemoryAllocation: text = "out of memory"; break;
    case cudaErrorInitializationError: text = "initialization error"; break;
    case cudaErrorInvalidConfiguration: text = "invalid configuration argument"; break;
    case cudaErrorInvalidDevice: text = "invalid device ordinal"; break;
    case cudaErrorInvalidMemcpyDirection: text = "invalid copy direction for memcpy"; break;
    case cudaErrorInsufficientDriver: text = "CUDA driver version is insufficient for CUDA runtime version"; break;
    case cudaErrorNoDevice: text = "no CUDA-capable device is detected"; break;
    case cudaErrorInvalidResourceHandle: text = "invalid resource handle"; break;
    case cudaErrorNotReady: text = "device not ready"; break;
    case cudaErrorIllegalAddress: text = "an illegal memory access was encountered"; break;
    case cudaErrorLaunchOutOfResources: text = "too many resources requested for launch"; break;
    case cudaErrorLaunchFailure: text = "unspecified launch failure"; break;
    case cudaErrorMisalignedAddress: text = "misaligned address"; break;
    case cudaErrorIllegalInstruction: text = "an illegal instruction was encountered"; break;
    case cudaErrorAssert: text = "device-side assert triggered"; break;
    case cudaErrorNoKernelImageForDevice: text = "no kernel image is available for execution on the device"; break;
    case cudaErrorDevicesUnavailable: text = "CUDA-capable device(s) is/are busy or unavailable"; break;
    default: break;
  }
  return text;
}

cudaError_t cudaRuntimeGetVersion(int* version) {
  if (version == nullptr) return fail(cudaErrorInvalidValue, "cudaRuntimeGetVersion: null output");
  *version = CUDART_VERSION;
  return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int* version) {
  if (version == nullptr) return fail(cudaErrorInvalidValue, "cudaDriverGetVersion: null output");
  *version = CUDART_VERSION;
  return cudaSuccess;
}

// --- devices ---

cudaError_t cudaGetDeviceCount(int* count) {
  if (count == nullptr) return fail(cudaErrorInvalidValue, "cudaGetDeviceCount: null output");
  *count = device_count();
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  if (device < 0 || device >= device_count())
    return fail(cudaErrorInvalidDevice,
                fmt::format("cudaSetDevice({}): the emulator has {} device(s) (TPP_EMU_DEVICES)", device, device_count()));
  tls_device = device;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  if (device == nullptr) return fail(cudaErrorInvalidValue, "cudaGetDevice: null output");
  *device = tls_device;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (prop == nullptr) return fail(cudaErrorInvalidValue, "cudaGetDeviceProperties: null output");
  if (device < 0 || device >= device_count())
    return fail(cudaErrorInvalidDevice, fmt::format("cudaGetDeviceProperties(device {})", device));
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof prop->name, "tpp emulated CUDA device (host CPU, H100-like limits; %s)",
                block_order_text().c_str());
  prop->totalGlobalMem = kDeviceMemoryBytes;
  prop->sharedMemPerBlock = kSharedMemoryPerBlock;
  prop->sharedMemPerBlockOptin = 227 * 1024;
  prop->regsPerBlock = 65536;
  prop->warpSize = kWarpSize;
  prop->maxThreadsPerBlock = static_cast<int>(kMaxThreadsPerBlock);
  prop->maxThreadsDim[0] = prop->maxThreadsDim[1] = static_cast<int>(kMaxThreadsPerBlock);
  prop->maxThreadsDim[2] = static_cast<int>(kMaxBlockDimZ);
  prop->maxGridSize[0] = static_cast<int>(kMaxGridDimX);
  prop->maxGridSize[1] = prop->maxGridSize[2] = static_cast<int>(kMaxGridDimYZ);
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = 132;
  prop->maxThreadsPerMultiProcessor = 2048;
  prop->unifiedAddressing = 1;
  prop->canMapHostMemory = 1;
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() {
  for (Stream* s : streams_of(tls_device)) s->synchronize();
  return synchronizing(cudaSuccess);
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  if (free_bytes == nullptr || total_bytes == nullptr) return fail(cudaErrorInvalidValue, "cudaMemGetInfo: null output");
  const std::lock_guard lock(memory_mutex);
  *total_bytes = kDeviceMemoryBytes;
  *free_bytes = kDeviceMemoryBytes - device_bytes_in_use[static_cast<size_t>(tls_device)];
  return cudaSuccess;
}

// --- memory ---

cudaError_t cudaMalloc(void** p, size_t bytes) {
  if (p == nullptr) return fail(cudaErrorInvalidValue, "cudaMalloc: null output");
  {
    const std::lock_guard lock(memory_mutex);
    const size_t in_use = device_bytes_in_use[static_cast<size_t>(tls_device)];
    if (bytes > kDeviceMemoryBytes - in_use)
      return fail(cudaErrorMemoryAllocation, fmt::format("cudaMalloc of {} bytes with {} of {} bytes free", bytes,
                                                         kDeviceMemoryBytes - in_use, kDeviceMemoryBytes));
  }
  void* memory = allocate(bytes);
  if (memory == nullptr) return fail(cudaErrorMemoryAllocation, fmt::format("cudaMalloc of {} bytes: host out of memory", bytes));
  const std::lock_guard lock(memory_mutex);
  allocations()[reinterpret_cast<uintptr_t>(memory)] = {bytes, Memory::device, tls_device};
  device_bytes_in_use[static_cast<size_t>(tls_device)] += bytes;
  *p = memory;
  return cudaSuccess;
}

static cudaError_t release(void* p, Memory kind, const char* call) {
  if (p == nullptr) return cudaSuccess;
  cudaDeviceSynchronize();  // as cudaFree does
  size_t bytes = 0;
  {
    const std::lock_guard lock(memory_mutex);
    const auto found = allocations().find(reinterpret_cast<uintptr_t>(p));
    if (found == allocations().end() || found->second.kind != kind)
      return fail(cudaErrorInvalidValue, fmt::format("{} of a pointer that it did not allocate", call));
    bytes = found->second.bytes;
    if (kind == Memory::device) device_bytes_in_use[static_cast<size_t>(found->second.device)] -= bytes;
    allocations().erase(found);
  }
  deallocate(p, bytes);
  return cudaSuccess;
}

cudaError_t cudaFree(void* p) { return release(p, Memory::device, "cudaFree"); }

cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned int) {
  if (p == nullptr) return fail(cudaErrorInvalidValue, "cudaHostAlloc: null output");
  void* memory = allocate(bytes);
  if (memory == nullptr) return fail(cudaErrorMemoryAllocation, fmt::format("cudaHostAlloc of {} bytes", bytes));
  const std::lock_guard lock(memory_mutex);
  allocations()[reinterpret_cast<uintptr_t>(memory)] = {bytes, Memory::pinned, tls_device};
  *p = memory;
  return cudaSuccess;
}

cudaError_t cudaMallocHost(void** p, size_t bytes) { return cudaHostAlloc(p, bytes, 0); }

cudaError_t cudaFreeHost(void* p) { return release(p, Memory::pinned, "cudaFreeHost"); }

cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* attributes, const void* p) {
  if (attributes == nullptr) return fail(cudaErrorInvalidValue, "cudaPointerGetAttributes: null output");
  *attributes = cudaPointerAttributes{};
  const std::lock_guard lock(memory_mutex);
  const Found f = find_allocation(p);
  if (f.allocation == nullptr) {
    attributes->type = cudaMemoryTypeUnregistered;
    attributes->device = -2;
    return cudaSuccess;
  }
  attributes->type = f.allocation->kind == Memory::device ? cudaMemoryTypeDevice : cudaMemoryTypeHost;
  attributes->device = f.allocation->device;
  attributes->devicePointer = const_cast<void*>(p);
  attributes->hostPointer = f.allocation->kind == Memory::pinned ? const_cast<void*>(p) : nullptr;
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
  if (bytes == 0) return cudaSuccess;
  if (const cudaError_t bad = check_copy(dst, src, bytes, kind, "cudaMemcpyAsync"); bad != cudaSuccess) return bad;
  const cudaError_t queued = enqueue(stream, [=] { std::memmove(dst, src, bytes); }, true);
  return queued == cudaSuccess ? cudaSuccess : fail(queued, "cudaMemcpyAsync on a stream that does not exist");
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (bytes == 0) return cudaSuccess;
  if (const cudaError_t bad = check_copy(dst, src, bytes, kind, "cudaMemcpy"); bad != cudaSuccess) return bad;
  enqueue(nullptr, [=] { std::memmove(dst, src, bytes); }, true);
  null_stream().synchronize();
  return synchronizing(cudaSuccess);
}

cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t stream) {
  if (const cudaError_t bad = check_device_range(p, bytes, "cudaMemsetAsync"); bad != cudaSuccess) return bad;
  const cudaError_t queued = enqueue(stream, [=] { std::memset(p, value, bytes); }, true);
  return queued == cudaSuccess ? cudaSuccess : fail(queued, "cudaMemsetAsync on a stream that does not exist");
}

cudaError_t cudaMemset(void* p, int value, size_t bytes) {
  if (const cudaError_t bad = check_device_range(p, bytes, "cudaMemset"); bad != cudaSuccess) return bad;
  enqueue(nullptr, [=] { std::memset(p, value, bytes); }, true);
  null_stream().synchronize();
  return synchronizing(cudaSuccess);
}

// --- streams ---

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int) {
  if (stream == nullptr) return fail(cudaErrorInvalidValue, "cudaStreamCreateWithFlags: null output");
  auto* s = new Stream();
  s->device = tls_device;
  *stream = reinterpret_cast<cudaStream_t>(s);
  const std::lock_guard lock(streams_mutex);
  streams()[*stream] = s;
  return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, cudaStreamDefault); }

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  Stream* s = find_stream(stream);
  if (s == nullptr || is_null_stream(stream))
    return fail(cudaErrorInvalidResourceHandle, "cudaStreamDestroy of a stream that does not exist");
  s->synchronize();  // CUDA lets queued work finish
  const std::lock_guard lock(streams_mutex);
  streams().erase(stream);
  retired_streams().push_back(s);  // kept: its thread may be waiting on it, and its address must not come back
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  Stream* s = find_stream(stream);
  if (s == nullptr) return fail(cudaErrorInvalidResourceHandle, "cudaStreamSynchronize of a stream that does not exist");
  s->synchronize();
  return synchronizing(cudaSuccess);
}

cudaError_t cudaStreamGetDevice(cudaStream_t stream, int* device) {
  Stream* s = find_stream(stream);
  if (s == nullptr || device == nullptr) return fail(cudaErrorInvalidResourceHandle, "cudaStreamGetDevice");
  *device = s->device;
  return cudaSuccess;
}

cudaError_t cudaLaunchHostFunc(cudaStream_t stream, cudaHostFn_t fn, void* data) {
  if (fn == nullptr) return fail(cudaErrorInvalidValue, "cudaLaunchHostFunc: null function");
  // Never inline: a host function may wait for the host thread.
  const cudaError_t queued = enqueue(stream, [=] { fn(data); }, false);
  return queued == cudaSuccess ? cudaSuccess : fail(queued, "cudaLaunchHostFunc on a stream that does not exist");
}

// --- events ---

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int) {
  if (event == nullptr) return fail(cudaErrorInvalidValue, "cudaEventCreateWithFlags: null output");
  auto e = std::make_unique<Event>();
  e->device = tls_device;
  *event = reinterpret_cast<cudaEvent_t>(e.get());
  const std::lock_guard lock(events_mutex);
  events()[*event] = std::move(e);
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  const std::lock_guard lock(events_mutex);
  if (events().erase(event) == 0)
    return fail(cudaErrorInvalidResourceHandle, "cudaEventDestroy of an event that does not exist");
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  Event* e = find_event(event);
  if (e == nullptr) return fail(cudaErrorInvalidResourceHandle, "cudaEventRecord of an event that does not exist");
  // As the CUDA programming guide says: the event and the stream must belong to one device.
  if (const int device = stream_device(stream); device >= 0 && device != e->device)
    return fail(cudaErrorInvalidResourceHandle,
                fmt::format("cudaEventRecord of an event of device {} on a stream of device {}", e->device, device));
  auto mark = std::make_shared<Mark>();
  {
    const std::lock_guard lock(e->mutex);
    e->last = mark;
  }
  const cudaError_t queued = enqueue(stream, [mark] { mark->reach(); }, true);
  return queued == cudaSuccess ? cudaSuccess : fail(queued, "cudaEventRecord on a stream that does not exist");
}

cudaError_t cudaEventQuery(cudaEvent_t event) {
  Event* e = find_event(event);
  if (e == nullptr) return fail(cudaErrorInvalidResourceHandle, "cudaEventQuery of an event that does not exist");
  const std::shared_ptr<Mark> mark = e->current();
  if (mark != nullptr && !mark->done()) return cudaErrorNotReady;
  // Reports a pending asynchronous error without taking it: a GPU's are
  // sticky, and a watchdog thread polling events must not hide one from the
  // host thread's next synchronising call.
  return async_error.load();
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  Event* e = find_event(event);
  if (e == nullptr) return fail(cudaErrorInvalidResourceHandle, "cudaEventSynchronize of an event that does not exist");
  if (const std::shared_ptr<Mark> mark = e->current()) mark->wait();
  return synchronizing(cudaSuccess);
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int) {
  Event* e = find_event(event);
  if (e == nullptr) return fail(cudaErrorInvalidResourceHandle, "cudaStreamWaitEvent on an event that does not exist");
  const std::shared_ptr<Mark> mark = e->current();
  if (mark == nullptr || mark->done()) return cudaSuccess;
  const cudaError_t queued = enqueue(stream, [mark] { mark->wait(); }, false);
  return queued == cudaSuccess ? cudaSuccess : fail(queued, "cudaStreamWaitEvent on a stream that does not exist");
}

}  // extern "C"
