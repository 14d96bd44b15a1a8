// Counter-based random numbers (Philox-4x32-10, Salmon et al. 2011). Element
// i of a fill draws from block (offset + i / 4) with the seed as key, so the
// numbers depend only on (seed, offset, i): the same on every run, on any
// number of threads and, with the same function, on CUDA.
#pragma once

#include <array>
#include <cstdint>

namespace tpp {

using PhiloxBlock = std::array<uint32_t, 4>;

// One Philox-4x32-10 block for a 128-bit counter and 64-bit key.
PhiloxBlock philox4x32(uint64_t counter_lo, uint64_t counter_hi, uint64_t key);

// Maps 32 random bits to a float in [0, 1) (24 bits) or a double (from 2x32).
inline float uint_to_unit_float(uint32_t x) { return static_cast<float>(x >> 8) * (1.0f / 16777216.0f); }
inline double uints_to_unit_double(uint32_t hi, uint32_t lo) {
  return static_cast<double>((static_cast<uint64_t>(hi) << 21) ^ (lo >> 11)) * (1.0 / 9007199254740992.0);
}

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_state(uint64_t seed, uint64_t offset) { seed_ = seed, offset_ = offset; }
  // Reserves `blocks` counters and returns the first; callers draw
  // philox4x32(first + i, stream, seed) for i < blocks.
  uint64_t advance(uint64_t blocks) {
    const uint64_t first = offset_;
    offset_ += blocks;
    return first;
  }

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

Generator& default_generator();
void manual_seed(uint64_t seed);  // reseeds the default generator, offset 0

}  // namespace tpp
