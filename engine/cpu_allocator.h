// Host memory for CPU tensors and CPU kernels' scratch: a BlockCache
// (engine/block_cache.h) over 64-byte aligned system allocations, so that a
// training step, which asks for the same sizes every time, gets them all from
// the cache after its first step instead of from the system (whose large
// blocks come as fresh pages, faulted in on first touch, every time).
//
// TPP_CPU_ALLOC=direct turns caching off (exact-size system allocations, for
// AddressSanitizer, which is then the default in sanitizer builds).
#pragma once

#include <cstddef>

#include "engine/block_cache.h"

namespace tpp {

// At least `bytes` bytes, 64-byte aligned; empty for 0 bytes. Throws
// tpp::Error when the system has no memory left even after the cache is emptied.
CachedBuffer cpu_allocate(size_t bytes);

// driver_allocations counts the system allocations: after a training step's
// warm-up it stops growing (benchmarks/bench_ops shows it per step).
BlockCacheStats cpu_allocator_stats();

// Caching, or direct (TPP_CPU_ALLOC=direct, sanitizer builds).
const BlockCacheOptions& cpu_allocator_options();

// Returns every cached (free) block to the system.
void cpu_empty_cache();

}  // namespace tpp
