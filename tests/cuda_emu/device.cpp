// The emulated device's execution model: a grid's blocks are dealt to worker
// threads (in order, reverse or a seeded random order); each CUDA thread of a
// block is a fiber on its worker, switched by hand (x86-64), so that
// __syncthreads and the warp collectives really wait for the threads they
// name. Misuse (a barrier reached at different places, a shuffle reading a
// lane outside its mask, a deadlock) ends the launch with
// cudaErrorLaunchFailure and a report naming the source lines.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "tests/cuda_emu/cuda_emu.h"
#include "tests/cuda_emu/emu_state.h"

#ifdef TPP_EMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if !defined(__x86_64__)
#error "the emulated CUDA device switches fibers with x86-64 code"
#endif

// save_sp: where the current stack pointer goes; load_sp: the stack to resume.
// Saves and restores the callee-saved registers of the System V ABI.
extern "C" void tpp_emu_switch(void** save_sp, void* load_sp);
// A new fiber's first return address: calls tpp_emu_fiber_main, never returns.
extern "C" void tpp_emu_fiber_entry();
extern "C" [[noreturn]] void tpp_emu_fiber_main();

asm(R"(
  .text
  .globl tpp_emu_switch
  .type tpp_emu_switch, @function
tpp_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size tpp_emu_switch, .-tpp_emu_switch

  .globl tpp_emu_fiber_entry
  .type tpp_emu_fiber_entry, @function
tpp_emu_fiber_entry:
  call tpp_emu_fiber_main@PLT
  ud2
  .size tpp_emu_fiber_entry, .-tpp_emu_fiber_entry
)");

namespace tpp_emu {

__thread const ThreadCoordinates* tls_thread = nullptr;

namespace {

#ifdef TPP_EMU_ASAN
constexpr size_t kStackBytes = size_t{1} << 20;  // instrumented frames are large
#else
constexpr size_t kStackBytes = size_t{64} << 10;
#endif

enum class State : uint8_t { ready, at_barrier, at_warp, exited };

struct Site {
  const char* file = nullptr;
  int line = 0;
  bool operator<(const Site& o) const { return std::tie(file, line) < std::tie(o.file, o.line); }
  bool operator==(const Site& o) const { return file == o.file && line == o.line; }
};
std::string describe(const Site& s) { return fmt::format("{}:{}", s.file, s.line); }

const char* op_name(WarpOp op) {
  switch (op) {
    case WarpOp::shfl: return "__shfl_sync";
    case WarpOp::shfl_up: return "__shfl_up_sync";
    case WarpOp::shfl_down: return "__shfl_down_sync";
    case WarpOp::shfl_xor: return "__shfl_xor_sync";
    case WarpOp::ballot: return "__ballot_sync";
    case WarpOp::any: return "__any_sync";
    case WarpOp::all: return "__all_sync";
    case WarpOp::syncwarp: return "__syncwarp";
  }
  return "?";
}

struct Fiber {
  void* sp = nullptr;
  int slot = -1;  // its stack, taken when it first runs
  State state = State::exited;
  ThreadCoordinates coords{};
  Site site;  // where it waits
  WarpOp op = WarpOp::syncwarp;
  unsigned mask = 0;
  uint64_t value = 0;
  int lane_arg = 0;
  int width = kWarpSize;
  uint64_t result = 0;
};

// One per OS thread that runs blocks: the fibers of its current block, their
// stacks, its __shared__ variables and dynamic shared memory.
struct Worker {
  std::vector<Fiber> fibers = std::vector<Fiber>(kMaxThreadsPerBlock);
  char* stacks = nullptr;
  void* scheduler_sp = nullptr;
#ifdef TPP_EMU_ASAN
  void* scheduler_fake_stack = nullptr;
  const void* scheduler_stack_bottom = nullptr;
  size_t scheduler_stack_size = 0;
#endif
  int threads = 0;
  int live = 0;
  // A block starts as one fiber that runs its threads one after another
  // (threads that never wait need no fiber of their own); the first barrier
  // or warp collective ends the loop: the thread that reached it keeps the
  // fiber and the threads not yet started get fibers of their own.
  bool looping = false;
  int loop_next = 0;
  int at_barrier = 0;
  int running = -1;
  std::vector<int> queue = std::vector<int>(kMaxThreadsPerBlock);
  // Per warp: the lanes waiting in a warp collective, and the lanes that have exited.
  std::vector<unsigned> warp_waiting = std::vector<unsigned>(kMaxThreadsPerBlock / kWarpSize);
  std::vector<unsigned> warp_exited = std::vector<unsigned>(kMaxThreadsPerBlock / kWarpSize);
  // Stacks not in use: a thread that ends without waiting gives its stack to
  // the next, so a block without barriers runs on one (cache-hot) stack.
  std::vector<int> free_slots;
  size_t queue_head = 0, queue_size = 0;
  bool faulted = false;
  std::string fault;
  void (*body)(void*) = nullptr;
  void* payload = nullptr;
  std::vector<std::pair<void*, size_t>> shared_variables;
  // Exactly the launch's size (a fresh allocation when it changes), so that
  // AddressSanitizer sees a read past the end of dynamic shared memory.
  std::unique_ptr<unsigned char[]> dynamic_shared;
  size_t dynamic_shared_bytes = 0;

  Worker() {
    const size_t bytes = kStackBytes * kMaxThreadsPerBlock;
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
      std::fprintf(stderr, "tpp cuda emulator: cannot reserve %zu bytes of fiber stacks\n", bytes);
      std::abort();
    }
    stacks = static_cast<char*>(p);
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    for (size_t t = 0; t < kMaxThreadsPerBlock; ++t) mprotect(stacks + t * kStackBytes, page, PROT_NONE);  // guard
  }
  ~Worker() { munmap(stacks, kStackBytes * kMaxThreadsPerBlock); }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  char* stack_bottom(int slot) const { return stacks + static_cast<size_t>(slot) * kStackBytes; }
  void push(int t) { queue[(queue_head + queue_size++) % static_cast<size_t>(threads)] = t; }
  int pop() {
    const int t = queue[queue_head];
    queue_head = (queue_head + 1) % static_cast<size_t>(threads);
    --queue_size;
    return t;
  }
};

thread_local std::unique_ptr<Worker> tls_worker_owner;
__thread Worker* tls_worker = nullptr;

Worker& this_worker() {
  if (tls_worker == nullptr) {
    tls_worker_owner = std::make_unique<Worker>();
    tls_worker = tls_worker_owner.get();
  }
  return *tls_worker;
}

// --- switching ---

void prepare_fiber(Worker& w, int t);

void enter_fiber(Worker& w, int t) {
  Fiber& f = w.fibers[static_cast<size_t>(t)];
  if (f.slot < 0) {
    f.slot = w.free_slots.back();
    w.free_slots.pop_back();
    prepare_fiber(w, t);
  }
  w.running = t;
  tls_thread = &f.coords;
#ifdef TPP_EMU_ASAN
  __sanitizer_start_switch_fiber(&w.scheduler_fake_stack, w.stack_bottom(f.slot), kStackBytes);
#endif
  tpp_emu_switch(&w.scheduler_sp, w.fibers[static_cast<size_t>(t)].sp);
#ifdef TPP_EMU_ASAN
  __sanitizer_finish_switch_fiber(w.scheduler_fake_stack, nullptr, nullptr);
#endif
  const Fiber& now = w.fibers[static_cast<size_t>(w.running)];  // not t when the loop went on
  if (now.state == State::exited) w.free_slots.push_back(now.slot);
  w.running = -1;
  tls_thread = nullptr;
}

// The running thread waits for others: the threads the loop has not started
// yet become fibers of their own.
void end_loop(Worker& w) {
  if (!w.looping) return;
  w.looping = false;
  for (int t = w.loop_next; t < w.threads; ++t) w.push(t);
}

// From the running fiber back to its worker's scheduler; returns when the
// scheduler resumes the fiber (never, for an exited or faulted one).
void leave_fiber(Worker& w, bool for_good) {
  Fiber& f = w.fibers[static_cast<size_t>(w.running)];
#ifdef TPP_EMU_ASAN
  void* fake_stack = nullptr;
  __sanitizer_start_switch_fiber(for_good ? nullptr : &fake_stack, w.scheduler_stack_bottom, w.scheduler_stack_size);
#else
  (void)for_good;
#endif
  tpp_emu_switch(&f.sp, w.scheduler_sp);
#ifdef TPP_EMU_ASAN
  __sanitizer_finish_switch_fiber(fake_stack, &w.scheduler_stack_bottom, &w.scheduler_stack_size);
#endif
}

// Thrown by fault() inside the faulting fiber and caught where the fiber
// began (tpp_emu_fiber_main): unwinding frees what the fiber's frames hold
// (the message's pieces, a barrier's list of sites), which abandoning its
// stack would leak.
struct FiberFault {};

[[noreturn]] void fault(Worker& w, std::string message) {
  w.faulted = true;
  w.fault = std::move(message);
  throw FiberFault{};
}

void prepare_fiber(Worker& w, int t) {
  char* bottom = w.stack_bottom(w.fibers[static_cast<size_t>(t)].slot);
#ifdef TPP_EMU_ASAN
  // The previous fiber on this stack may have been abandoned mid-frame.
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  __asan_unpoison_memory_region(bottom + page, kStackBytes - page);
#endif
  // Six callee-saved registers, then tpp_emu_fiber_entry as the return
  // address, leaving the stack 16-byte aligned at its `call`. Each stack
  // starts at another cache line (stack tops a multiple of 4 KiB apart would
  // all compete for the same few L1 sets).
  const size_t colour = static_cast<size_t>(w.fibers[static_cast<size_t>(t)].slot % 64) * 64;
  auto* top = reinterpret_cast<void**>(bottom + kStackBytes - colour);
  void** sp = top - 9;
  for (int i = 0; i < 6; ++i) sp[i] = nullptr;
  sp[6] = reinterpret_cast<void*>(&tpp_emu_fiber_entry);
  w.fibers[static_cast<size_t>(t)].sp = sp;
}

// --- barriers ---

void release_barrier(Worker& w) {
  std::map<Site, int> sites;
  for (int t = 0; t < w.threads; ++t)
    if (w.fibers[static_cast<size_t>(t)].state == State::at_barrier) ++sites[w.fibers[static_cast<size_t>(t)].site];
  if (sites.size() > 1) {
    std::string where;
    for (const auto& [site, count] : sites) where += fmt::format("{}{} ({} threads)", where.empty() ? "" : " and ", describe(site), count);
    fault(w, fmt::format("__syncthreads reached at different places by the threads of one block: {}", where));
  }
  for (int t = 0; t < w.threads; ++t) {
    Fiber& f = w.fibers[static_cast<size_t>(t)];
    if (f.state != State::at_barrier) continue;
    f.state = State::ready;
    if (t != w.running) w.push(t);
  }
  w.at_barrier = 0;
}

// --- warp collectives ---

int source_lane(const Fiber& f, int lane) {
  const int base = lane & ~(f.width - 1);
  int src = lane;
  switch (f.op) {
    case WarpOp::shfl: src = base + (f.lane_arg & (f.width - 1)); break;
    case WarpOp::shfl_up: src = lane - f.lane_arg >= base ? lane - f.lane_arg : lane; break;
    case WarpOp::shfl_down: src = lane + f.lane_arg < base + f.width ? lane + f.lane_arg : lane; break;
    case WarpOp::shfl_xor: src = (lane ^ f.lane_arg) < base + f.width ? lane ^ f.lane_arg : lane; break;
    default: break;
  }
  return src;
}

// Called when every lane of the running fiber's mask has arrived.
void complete_warp_collective(Worker& w, int warp_base, const Fiber& caller) {
  uint64_t vote = caller.op == WarpOp::all ? 1 : 0;
  for (int lane = 0; lane < kWarpSize; ++lane) {
    if (!((caller.mask >> lane) & 1u)) continue;
    const Fiber& f = w.fibers[static_cast<size_t>(warp_base + lane)];
    if (f.op != caller.op || f.mask != caller.mask)
      fault(w, fmt::format("lanes of warp {} meet at different warp collectives: lane {} at {} (mask {:#x}) at {}, "
                           "lane {} at {} (mask {:#x}) at {}",
                           warp_base / kWarpSize, w.running - warp_base, op_name(caller.op), caller.mask,
                           describe(caller.site), lane, op_name(f.op), f.mask, describe(f.site)));
    if (caller.op == WarpOp::ballot) vote |= (f.value & 1u) << lane;
    if (caller.op == WarpOp::any) vote |= f.value & 1u;
    if (caller.op == WarpOp::all) vote &= f.value & 1u;
  }
  for (int lane = 0; lane < kWarpSize; ++lane) {
    if (!((caller.mask >> lane) & 1u)) continue;
    const int t = warp_base + lane;
    Fiber& f = w.fibers[static_cast<size_t>(t)];
    if (f.op == WarpOp::ballot || f.op == WarpOp::any || f.op == WarpOp::all) {
      f.result = vote;
    } else if (f.op != WarpOp::syncwarp) {
      const int src = source_lane(f, lane);
      if (!((f.mask >> src) & 1u))
        fault(w, fmt::format("{} at {}: lane {} of warp {} reads lane {}, which is not in the mask {:#x}",
                             op_name(f.op), describe(f.site), lane, warp_base / kWarpSize, src, f.mask));
      f.result = w.fibers[static_cast<size_t>(warp_base + src)].value;
    }
  }
  for (int lane = 0; lane < kWarpSize; ++lane) {
    if (!((caller.mask >> lane) & 1u)) continue;
    const int t = warp_base + lane;
    w.fibers[static_cast<size_t>(t)].state = State::ready;
    if (t != w.running) w.push(t);
  }
  w.warp_waiting[static_cast<size_t>(warp_base / kWarpSize)] &= ~caller.mask;
}

// --- the block scheduler ---

std::string deadlock_report(const Worker& w) {
  std::map<std::string, int> waits;
  for (int t = 0; t < w.threads; ++t) {
    const Fiber& f = w.fibers[static_cast<size_t>(t)];
    if (f.state == State::at_barrier) ++waits[fmt::format("__syncthreads at {}", describe(f.site))];
    if (f.state == State::at_warp)
      ++waits[fmt::format("{} (mask {:#x}) at {}", op_name(f.op), f.mask, describe(f.site))];
  }
  std::string text = "deadlock: no thread of the block can go on;";
  for (const auto& [what, count] : waits) text += fmt::format(" {} thread(s) wait in {};", count, what);
  return text + fmt::format(" {} of {} threads have exited", w.threads - w.live, w.threads);
}

uint3 unflatten(unsigned i, dim3 d) { return {i % d.x, (i / d.x) % d.y, i / (d.x * d.y)}; }

// Runs one block to its end on this worker; false (with w.fault) on a fault.
bool run_block(Worker& w, const LaunchConfig& config, unsigned block, void (*body)(void*), void* payload) {
  w.threads = static_cast<int>(config.block.x * config.block.y * config.block.z);
  w.live = w.threads;
  w.at_barrier = 0;
  w.faulted = false;
  w.body = body;
  w.payload = payload;
  w.queue_head = w.queue_size = 0;
  for (const auto& [address, bytes] : w.shared_variables) std::memset(address, 0xff, bytes);
  if (!w.dynamic_shared || w.dynamic_shared_bytes != config.shared_bytes) {
    w.dynamic_shared = std::make_unique_for_overwrite<unsigned char[]>(std::max<size_t>(config.shared_bytes, 1));
    w.dynamic_shared_bytes = config.shared_bytes;
  }
  std::memset(w.dynamic_shared.get(), 0xff, w.dynamic_shared_bytes);
  const uint3 block_idx = unflatten(block, config.grid);
  w.free_slots.clear();
  for (int slot = w.threads - 1; slot >= 0; --slot) w.free_slots.push_back(slot);
  for (int t = 0; t < w.threads; ++t) {
    Fiber& f = w.fibers[static_cast<size_t>(t)];
    f.state = State::ready;
    f.slot = -1;
    f.coords = {unflatten(static_cast<unsigned>(t), config.block), block_idx, config.block, config.grid};
  }
  std::fill(w.warp_waiting.begin(), w.warp_waiting.end(), 0u);
  std::fill(w.warp_exited.begin(), w.warp_exited.end(), 0u);
  w.looping = true;
  w.loop_next = 1;
  w.push(0);
  while (w.queue_size > 0 && !w.faulted) enter_fiber(w, w.pop());
  if (!w.faulted && w.live > 0) {
    w.faulted = true;
    w.fault = deadlock_report(w);
  }
  return !w.faulted;
}

// --- the grid: block order and worker threads ---

enum class Order { in_order, reverse, random };

struct Scheduling {
  Order order = Order::in_order;
  uint64_t seed = 0;
  unsigned workers = 1;
};

const Scheduling& scheduling() {
  static const Scheduling s = [] {
    Scheduling out;
    const char* order = std::getenv("TPP_EMU_BLOCK_ORDER");
    const std::string text = order ? order : "in-order";
    if (text == "reverse") {
      out.order = Order::reverse;
    } else if (text == "random") {
      out.order = Order::random;
      const char* seed = std::getenv("TPP_EMU_SEED");
      out.seed = seed ? std::strtoull(seed, nullptr, 10) : std::random_device{}();
    } else if (text != "in-order") {
      std::fprintf(stderr, "tpp cuda emulator: TPP_EMU_BLOCK_ORDER=%s is not in-order, reverse or random; using in-order\n",
                   text.c_str());
    }
    const char* workers = std::getenv("TPP_EMU_WORKERS");
    const unsigned hardware = std::max(1u, std::thread::hardware_concurrency());
    out.workers = workers ? static_cast<unsigned>(std::max(1L, std::strtol(workers, nullptr, 10)))
                          : std::min(hardware, 4u);
    return out;
  }();
  return s;
}

struct Grid {
  const LaunchConfig* config = nullptr;
  void (*body)(void*) = nullptr;
  void* payload = nullptr;
  std::vector<unsigned> blocks;
  std::atomic<size_t> next{0};
  std::atomic<bool> faulted{false};
  std::mutex fault_mutex;
  std::string fault;
  unsigned faulted_block = 0;
};

void work_on(Grid& grid) {
  Worker& w = this_worker();
  for (;;) {
    const size_t i = grid.next.fetch_add(1);
    if (i >= grid.blocks.size() || grid.faulted.load()) return;
    if (!run_block(w, *grid.config, grid.blocks[i], grid.body, grid.payload)) {
      const std::lock_guard lock(grid.fault_mutex);
      if (!grid.faulted.exchange(true)) {
        grid.fault = w.fault;
        grid.faulted_block = grid.blocks[i];
      }
    }
  }
}

// Threads that help the launching thread through a grid's blocks.
class WorkerPool {
 public:
  explicit WorkerPool(unsigned helpers) {
    for (unsigned i = 0; i < helpers; ++i) threads_.emplace_back([this] { serve(); });
  }
  ~WorkerPool() {
    {
      const std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (std::thread& t : threads_) t.join();
  }

  void run(Grid& grid) {
    {
      const std::lock_guard lock(mutex_);
      grid_ = &grid;
      ++generation_;
      busy_ = threads_.size();
    }
    wake_.notify_all();
    work_on(grid);
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return busy_ == 0; });
    grid_ = nullptr;
  }

 private:
  void serve() {
    uint64_t seen = 0;
    for (;;) {
      Grid* grid = nullptr;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
        if (stopping_) return;
        seen = generation_;
        grid = grid_;
      }
      work_on(*grid);
      const std::lock_guard lock(mutex_);
      if (--busy_ == 0) done_.notify_all();
    }
  }

  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  Grid* grid_ = nullptr;
  uint64_t generation_ = 0;
  size_t busy_ = 0;
  bool stopping_ = false;
};

std::string check_config(const LaunchConfig& c) {
  const dim3 b = c.block, g = c.grid;
  if (b.x == 0 || b.y == 0 || b.z == 0 || g.x == 0 || g.y == 0 || g.z == 0)
    return fmt::format("grid ({}, {}, {}) and block ({}, {}, {}) must have no zero dimension", g.x, g.y, g.z, b.x, b.y,
                       b.z);
  const uint64_t threads = uint64_t{b.x} * b.y * b.z;
  if (threads > kMaxThreadsPerBlock || b.x > kMaxThreadsPerBlock || b.y > kMaxThreadsPerBlock || b.z > kMaxBlockDimZ)
    return fmt::format("block ({}, {}, {}) has {} threads; the limit is {} (and {} along z)", b.x, b.y, b.z, threads,
                       kMaxThreadsPerBlock, kMaxBlockDimZ);
  if (g.x > kMaxGridDimX || g.y > kMaxGridDimYZ || g.z > kMaxGridDimYZ)
    return fmt::format("grid ({}, {}, {}) exceeds ({}, {}, {})", g.x, g.y, g.z, kMaxGridDimX, kMaxGridDimYZ,
                       kMaxGridDimYZ);
  if (c.shared_bytes > kSharedMemoryPerBlock)
    return fmt::format("{} bytes of dynamic shared memory exceed the {} bytes per block", c.shared_bytes,
                       kSharedMemoryPerBlock);
  return {};
}

std::vector<unsigned> block_order(unsigned blocks) {
  std::vector<unsigned> order(blocks);
  for (unsigned i = 0; i < blocks; ++i) order[i] = i;
  const Scheduling& s = scheduling();
  static std::atomic<uint64_t> launches{0};
  if (s.order == Order::reverse) std::reverse(order.begin(), order.end());
  if (s.order == Order::random) {
    std::mt19937_64 rng(s.seed + launches.fetch_add(1));
    std::shuffle(order.begin(), order.end(), rng);
  }
  return order;
}

}  // namespace

std::string block_order_text() {
  const Scheduling& s = scheduling();
  const std::string order = s.order == Order::in_order ? "in order"
                            : s.order == Order::reverse ? "reverse order"
                                                        : fmt::format("random order (seed {})", s.seed);
  return fmt::format("blocks {} on {} worker thread(s)", order, s.workers);
}

namespace {

void run_grid_now(const LaunchConfig& config, const char* file, int line, void (*thread_body)(void*), void* payload) {
  // One grid at a time (the device runs the launches of every stream).
  static std::mutex device_mutex;
  const std::lock_guard lock(device_mutex);
  static WorkerPool pool(scheduling().workers - 1);
  Grid grid;
  grid.config = &config;
  grid.body = thread_body;
  grid.payload = payload;
  grid.blocks = block_order(config.grid.x * config.grid.y * config.grid.z);
  pool.run(grid);
  if (grid.faulted) {
    const uint3 b = unflatten(grid.faulted_block, config.grid);
    std::string detail =
        fmt::format("kernel launched at {}:{}, block ({}, {}, {}): {}", file, line, b.x, b.y, b.z, grid.fault);
    set_async_error(cudaErrorLaunchFailure, std::move(detail));
  }
}

}  // namespace

void launch_grid(const LaunchConfig& config, const char* file, int line, void (*thread_body)(void*),
                 std::shared_ptr<void> payload) {
  const std::string bad = check_config(config);
  if (!bad.empty()) {
    set_last_error(cudaErrorInvalidConfiguration, fmt::format("kernel launch at {}:{}: {}", file, line, bad));
    return;
  }
  // As the CUDA programming guide says: a launch into a stream of another
  // device than the current one fails.
  if (const int device = stream_device(config.stream); device >= 0 && device != current_device()) {
    set_last_error(cudaErrorInvalidResourceHandle,
                   fmt::format("kernel launch at {}:{}: the stream belongs to device {}, the current device is {}", file,
                               line, device, current_device()));
    return;
  }
  const cudaError_t queued = enqueue(config.stream, [config, file, line, thread_body, payload = std::move(payload)] {
    run_grid_now(config, file, line, thread_body, payload.get());
  }, true);
  if (queued != cudaSuccess) set_last_error(queued, fmt::format("kernel launch at {}:{}: not a stream of this process", file, line));
}

bool note_shared(void* address, size_t bytes, const char*, int) {
  std::memset(address, 0xff, bytes);
  this_worker().shared_variables.emplace_back(address, bytes);
  return true;
}

void* dynamic_shared_memory() { return this_worker().dynamic_shared.get(); }

void sync_threads(const char* file, int line) {
  Worker& w = *tls_worker;
  end_loop(w);
  Fiber& f = w.fibers[static_cast<size_t>(w.running)];
  f.state = State::at_barrier;
  f.site = {file, line};
  if (++w.at_barrier == w.live) {
    release_barrier(w);
    return;
  }
  leave_fiber(w, false);
}

uint64_t warp_collective(WarpOp op, unsigned mask, uint64_t value, int lane_arg, int width, const char* file,
                         int line) {
  Worker& w = *tls_worker;
  end_loop(w);
  const int t = w.running;
  Fiber& f = w.fibers[static_cast<size_t>(t)];
  const int lane = t % kWarpSize, warp_base = t - lane;
  f.site = {file, line};
  if (!((mask >> lane) & 1u))
    fault(w, fmt::format("{} at {}: lane {} of warp {} calls it with mask {:#x}, which leaves the lane out",
                         op_name(op), describe(f.site), lane, warp_base / kWarpSize, mask));
  if (width < 1 || width > kWarpSize || (width & (width - 1)) != 0)
    fault(w, fmt::format("{} at {}: width {} is not a power of 2 up to 32", op_name(op), describe(f.site), width));
  f.state = State::at_warp;
  f.op = op;
  f.mask = mask;
  f.value = value;
  f.lane_arg = lane_arg;
  f.width = width;
  const int lanes = std::min(kWarpSize, w.threads - warp_base);
  const unsigned existing = lanes == kWarpSize ? 0xffffffffu : (1u << lanes) - 1u;
  if ((mask & ~existing) != 0)
    fault(w, fmt::format("{} at {}: the mask {:#x} names lanes beyond the {} threads of this warp", op_name(op),
                         describe(f.site), mask, lanes));
  const size_t warp = static_cast<size_t>(warp_base / kWarpSize);
  if ((mask & w.warp_exited[warp]) != 0)
    fault(w, fmt::format("{} at {}: the mask {:#x} names lanes of warp {} that have exited (lanes {:#x})", op_name(op),
                         describe(f.site), mask, warp, mask & w.warp_exited[warp]));
  w.warp_waiting[warp] |= 1u << lane;
  if ((w.warp_waiting[warp] & mask) == mask) {
    complete_warp_collective(w, warp_base, f);
  } else {
    leave_fiber(w, false);
  }
  return f.result;
}

unsigned active_mask() {
  const Worker& w = *tls_worker;
  const int warp_base = w.running - w.running % kWarpSize;
  unsigned mask = 0;
  for (int l = 0; l < kWarpSize && warp_base + l < w.threads; ++l)
    if (w.fibers[static_cast<size_t>(warp_base + l)].state != State::exited) mask |= 1u << l;
  return mask;
}

}  // namespace tpp_emu

extern "C" void tpp_emu_fiber_main() {
  using namespace tpp_emu;
  Worker& w = *tls_worker;
#ifdef TPP_EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &w.scheduler_stack_bottom, &w.scheduler_stack_size);
#endif
  try {
    for (;;) {
      w.body(w.payload);
      Fiber& f = w.fibers[static_cast<size_t>(w.running)];
      f.state = State::exited;
      w.warp_exited[static_cast<size_t>(w.running / kWarpSize)] |= 1u << (w.running % kWarpSize);
      --w.live;
      if (w.at_barrier > 0 && w.at_barrier == w.live) release_barrier(w);
      if (!w.looping || w.loop_next == w.threads) break;
      // The next thread of the loop, on this fiber's stack.
      const int next = w.loop_next++;
      w.fibers[static_cast<size_t>(next)].slot = f.slot;
      w.running = next;
      tls_thread = &w.fibers[static_cast<size_t>(next)].coords;
    }
  } catch (const FiberFault&) {
    // w.faulted and w.fault are set: the scheduler ends the block.
  }
  leave_fiber(w, true);
  std::abort();  // an exited or faulted fiber is never resumed
}
