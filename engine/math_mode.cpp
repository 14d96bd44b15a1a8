#include "engine/math_mode.h"

#include <atomic>

#include "engine/error.h"

namespace tpp {

namespace {
std::atomic<MathMode> current_mode{MathMode::tf32};
}

MathMode math_mode() { return current_mode.load(std::memory_order_relaxed); }
void set_math_mode(MathMode mode) { current_mode.store(mode, std::memory_order_relaxed); }

MathMode parse_math_mode(std::string_view text) {
  if (text == "tf32") return MathMode::tf32;
  if (text == "fp32") return MathMode::fp32;
  fail("math: expected tf32 or fp32 but got '{}'", text);
}

}  // namespace tpp
