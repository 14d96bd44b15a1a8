#include "engine/interrupt.h"

#include <atomic>

namespace tpp {

namespace {
std::atomic<int> pending_signal{0};
static_assert(std::atomic<int>::is_always_lock_free, "a signal handler may only touch lock-free atomics");
}  // namespace

void request_interrupt(int signal) noexcept { pending_signal.store(signal, std::memory_order_relaxed); }

int interrupt_requested() noexcept { return pending_signal.load(std::memory_order_relaxed); }

void clear_interrupt() noexcept { pending_signal.store(0, std::memory_order_relaxed); }

}  // namespace tpp
