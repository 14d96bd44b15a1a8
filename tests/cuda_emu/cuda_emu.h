// The device side of the emulated CUDA device: what a .cu file sees once
// rewrite_cu.cpp has turned it into host C++ (it includes this header first).
//
// NVIDIA's headers supply the types (dim3, cudaStream_t, ...); this header
// supplies the built-in variables (threadIdx, blockIdx, blockDim, gridDim),
// __syncthreads, the warp intrinsics, atomics, device math functions that
// the host lacks, and the launch entry point the rewritten <<<...>>> calls.
//
// Every CUDA thread of a block runs as a fiber on one worker thread
// (device.cpp); the built-in variables read the running fiber's context.
#pragma once

// Kernel code may ask whether it runs on the emulated device (like __CUDACC__ for nvcc).
#define TPP_CUDA_EMULATED 1

#include <cuda_runtime.h>
#include <math_constants.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

namespace tpp_emu {

// The running CUDA thread's coordinates (set by the block scheduler).
struct ThreadCoordinates {
  uint3 thread_idx;
  uint3 block_idx;
  dim3 block_dim;
  dim3 grid_dim;
};

// GNU __thread (not thread_local): no wrapper call on every access.
extern __thread const ThreadCoordinates* tls_thread;

struct LaunchConfig {
  dim3 grid;
  dim3 block;
  size_t shared_bytes;
  cudaStream_t stream;
};

inline LaunchConfig launch_config(dim3 grid, dim3 block, size_t shared_bytes = 0, cudaStream_t stream = nullptr) {
  return {grid, block, shared_bytes, stream};
}

// Queues a grid on config.stream (device.cpp): thread_body(payload) runs once
// per thread of the grid. The configuration is checked first, as the
// hardware does: a bad one sets cudaErrorInvalidConfiguration for
// cudaGetLastError and runs nothing.
void launch_grid(const LaunchConfig& config, const char* file, int line, void (*thread_body)(void*),
                 std::shared_ptr<void> payload);

// The rewritten form of kernel<<<config>>>(args...): the arguments are
// evaluated once, on the host, and each thread calls the kernel with copies.
template <class Kernel, class... Args>
void launch(const LaunchConfig& config, const char* file, int line, Kernel kernel, Args... args) {
  struct Payload {
    Kernel kernel;
    std::tuple<Args...> args;
  };
  auto payload = std::make_shared<Payload>(Payload{kernel, std::tuple<Args...>(args...)});
  launch_grid(config, file, line,
              [](void* p) {
                Payload& launch = *static_cast<Payload*>(p);
                std::apply(launch.kernel, launch.args);
              },
              std::move(payload));
}

// __shared__ variables are per worker thread; each is registered once per
// worker (and then poisoned before every block, so that a read before the
// block's first write shows up as NaN/garbage, as on a GPU, not as the last
// block's value).
bool note_shared(void* address, size_t bytes, const char* file, int line);
void* dynamic_shared_memory();

// Block barrier and warp collectives (device.cpp). Sites are file:line.
void sync_threads(const char* file, int line);
enum class WarpOp : uint8_t { shfl, shfl_up, shfl_down, shfl_xor, ballot, any, all, syncwarp };
// Waits for every lane of mask to reach a warp collective; returns the value
// (as bits) of the lane this lane reads (shuffles) or the combined vote.
uint64_t warp_collective(WarpOp op, unsigned mask, uint64_t value, int lane_arg, int width, const char* file,
                         int line);
unsigned active_mask();

template <class T>
uint64_t to_bits(T v) {
  static_assert(sizeof(T) <= sizeof(uint64_t) && std::is_trivially_copyable_v<T>, "shuffles move up to 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  return bits;
}
template <class T>
T from_bits(uint64_t bits) {
  T v;
  std::memcpy(&v, &bits, sizeof(T));
  return v;
}

template <class T>
T shuffle(WarpOp op, unsigned mask, T v, int lane_arg, int width, const char* file, int line) {
  return from_bits<T>(warp_collective(op, mask, to_bits(v), lane_arg, width, file, line));
}

}  // namespace tpp_emu

namespace tpp_emu {

// A floating-point value converted to an integer type as the GPU's cvt.rzi
// does: toward zero, clamped to the type's range, NaN to 0 (on x86 and in
// C++ an out-of-range conversion is undefined; SSE gives 0x80000000...).
template <class To, class From>
constexpr To saturating_integer(From v) {
  if (v != v) return To{0};
  if (v <= static_cast<From>(std::numeric_limits<To>::lowest())) return std::numeric_limits<To>::lowest();
  if (v >= static_cast<From>(std::numeric_limits<To>::max())) return std::numeric_limits<To>::max();
  return static_cast<To>(v);
}

// What rewrite_cu.cpp turns every static_cast of a .cu file into: the GPU's
// rule for floating-point to integer conversions, static_cast otherwise.
template <class To, class From>
constexpr To device_cast(From&& v) {
  using Value = std::remove_cvref_t<From>;
  if constexpr (std::is_floating_point_v<Value> && std::is_integral_v<To> && !std::is_same_v<To, bool>)
    return saturating_integer<To, Value>(v);
  else
    return static_cast<To>(std::forward<From>(v));
}

}  // namespace tpp_emu

// The built-in variables of the running thread.
#define threadIdx (::tpp_emu::tls_thread->thread_idx)
#define blockIdx (::tpp_emu::tls_thread->block_idx)
#define blockDim (::tpp_emu::tls_thread->block_dim)
#define gridDim (::tpp_emu::tls_thread->grid_dim)
#define warpSize 32

#define __syncthreads() ::tpp_emu::sync_threads(__FILE__, __LINE__)
#define __syncwarp(...) ::tpp_emu::syncwarp_at(__FILE__, __LINE__, ##__VA_ARGS__)
#define __shfl_sync(mask, v, src, ...) \
  ::tpp_emu::shuffle_at(::tpp_emu::WarpOp::shfl, mask, v, src, __FILE__, __LINE__, ##__VA_ARGS__)
#define __shfl_up_sync(mask, v, delta, ...) \
  ::tpp_emu::shuffle_at(::tpp_emu::WarpOp::shfl_up, mask, v, delta, __FILE__, __LINE__, ##__VA_ARGS__)
#define __shfl_down_sync(mask, v, delta, ...) \
  ::tpp_emu::shuffle_at(::tpp_emu::WarpOp::shfl_down, mask, v, delta, __FILE__, __LINE__, ##__VA_ARGS__)
#define __shfl_xor_sync(mask, v, lane_mask, ...) \
  ::tpp_emu::shuffle_at(::tpp_emu::WarpOp::shfl_xor, mask, v, lane_mask, __FILE__, __LINE__, ##__VA_ARGS__)
#define __ballot_sync(mask, pred) \
  static_cast<unsigned>(::tpp_emu::warp_collective(::tpp_emu::WarpOp::ballot, mask, (pred) ? 1 : 0, 0, 32, __FILE__, __LINE__))
#define __any_sync(mask, pred) \
  static_cast<int>(::tpp_emu::warp_collective(::tpp_emu::WarpOp::any, mask, (pred) ? 1 : 0, 0, 32, __FILE__, __LINE__))
#define __all_sync(mask, pred) \
  static_cast<int>(::tpp_emu::warp_collective(::tpp_emu::WarpOp::all, mask, (pred) ? 1 : 0, 0, 32, __FILE__, __LINE__))
#define __activemask() ::tpp_emu::active_mask()

namespace tpp_emu {

template <class T>
T shuffle_at(WarpOp op, unsigned mask, T v, int lane_arg, const char* file, int line, int width = 32) {
  return shuffle(op, mask, v, lane_arg, width, file, line);
}
inline void syncwarp_at(const char* file, int line, unsigned mask = 0xffffffffu) {
  warp_collective(WarpOp::syncwarp, mask, 0, 0, 32, file, line);
}

}  // namespace tpp_emu

// Atomics: blocks run on several worker threads at once, so these are real
// atomic read-modify-writes on the (host) memory.
template <class T>
T atomicCAS(T* address, T compare, T value) {
  std::atomic_ref<T>(*address).compare_exchange_strong(compare, value);
  return compare;
}
template <class T>
T atomicExch(T* address, T value) {
  return std::atomic_ref<T>(*address).exchange(value);
}
template <class T>
T atomicAdd(T* address, T value) {
  std::atomic_ref<T> ref(*address);
  T old = ref.load();
  while (!ref.compare_exchange_weak(old, static_cast<T>(old + value))) {
  }
  return old;
}
template <class T>
T atomicMax(T* address, T value) {
  std::atomic_ref<T> ref(*address);
  T old = ref.load();
  while (old < value && !ref.compare_exchange_weak(old, value)) {
  }
  return old;
}
template <class T>
T atomicMin(T* address, T value) {
  std::atomic_ref<T> ref(*address);
  T old = ref.load();
  while (value < old && !ref.compare_exchange_weak(old, value)) {
  }
  return old;
}
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_thread_fence(std::memory_order_seq_cst); }

// Bit casts (math_constants.h spells CUDART_INF_F and friends with them).
inline float __int_as_float(int v) { return ::tpp_emu::from_bits<float>(static_cast<uint32_t>(v)); }
inline float __uint_as_float(unsigned v) { return ::tpp_emu::from_bits<float>(v); }
inline int __float_as_int(float v) { return static_cast<int>(static_cast<uint32_t>(::tpp_emu::to_bits(v))); }
inline double __longlong_as_double(long long v) { return ::tpp_emu::from_bits<double>(static_cast<uint64_t>(v)); }
inline long long __double_as_longlong(double v) { return static_cast<long long>(::tpp_emu::to_bits(v)); }

// Device math the host library lacks (fast-math forms computed exactly).
inline float rsqrtf(float v) { return 1.0f / std::sqrt(v); }
inline double rsqrt(double v) { return 1.0 / std::sqrt(v); }
inline float __expf(float v) { return std::exp(v); }
inline float __logf(float v) { return std::log(v); }
inline float __fdividef(float a, float b) { return a / b; }
// Conversions toward zero (the _rz forms): the GPU's rule, as device_cast.
inline int __float2int_rz(float v) { return ::tpp_emu::saturating_integer<int>(v); }
inline unsigned __float2uint_rz(float v) { return ::tpp_emu::saturating_integer<unsigned>(v); }
inline long long __float2ll_rz(float v) { return ::tpp_emu::saturating_integer<long long>(v); }
inline int __double2int_rz(double v) { return ::tpp_emu::saturating_integer<int>(v); }
inline long long __double2ll_rz(double v) { return ::tpp_emu::saturating_integer<long long>(v); }
inline float __saturatef(float v) { return v != v ? 0.0f : (v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v)); }
template <class T>
T __ldg(const T* address) {
  return *address;
}
