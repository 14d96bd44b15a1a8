// Internal to the emulation runtime (tests/cuda_emu/*.cpp): state shared by
// the device scheduler and the runtime API.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <functional>
#include <string>

// TPP_EMU_ASAN: built with AddressSanitizer (gcc says so with a macro, clang
// with a feature test): fibers tell it about their stacks, and device memory
// comes from its heap so that every overrun of an allocation is reported.
#if defined(__SANITIZE_ADDRESS__)
#define TPP_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TPP_EMU_ASAN 1
#endif
#endif

namespace tpp_emu {

// The error cudaGetLastError/cudaPeekAtLastError report (per host thread, as
// in CUDA); the emulator's explanation of it goes to stderr.
void set_last_error(cudaError_t error, std::string detail);
cudaError_t take_last_error();
cudaError_t peek_last_error();
// An error of work that ran asynchronously (a kernel that faulted): returned
// by the next synchronising call and by cudaGetLastError, on any thread.
void set_async_error(cudaError_t error, std::string detail);

// Runs work in stream order: at once on the calling thread when allowed and
// the stream is idle, else on the stream's own thread after what is queued.
// cudaErrorInvalidResourceHandle for a stream that does not exist.
cudaError_t enqueue(cudaStream_t stream, std::function<void()> work, bool may_run_inline);

// The emulated device's limits (an H100-like GPU).
constexpr int kWarpSize = 32;
constexpr unsigned kMaxThreadsPerBlock = 1024;
constexpr unsigned kMaxBlockDimZ = 64;
constexpr unsigned kMaxGridDimX = 2147483647u;
constexpr unsigned kMaxGridDimYZ = 65535;
constexpr size_t kSharedMemoryPerBlock = 48 * 1024;  // without the opt-in attribute
constexpr size_t kGlobalMemoryBytes = size_t{80} << 30;
constexpr int kMaxDevices = 8;

// How many devices the emulator shows: TPP_EMU_DEVICES (1 to kMaxDevices),
// else 2, so that data-parallel runs (one process or thread per device) work.
int device_count();
// The calling host thread's current device (cudaSetDevice), and the device
// a stream belongs to (the current one for the legacy default stream);
// -1 for a stream that does not exist.
int current_device();
int stream_device(cudaStream_t stream);

// How blocks are scheduled, for `tpp --version` and test logs.
std::string block_order_text();

}  // namespace tpp_emu
