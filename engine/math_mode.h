// How CUDA convolutions and matrix products may round: TF32 tensor cores by
// default (as PyTorch does for convolutions), or full fp32 (`--math fp32`,
// parity tests). CPU kernels always compute in full precision.
#pragma once

#include <string_view>

namespace tpp {

enum class MathMode { tf32, fp32 };

MathMode math_mode();
void set_math_mode(MathMode mode);
// "tf32" or "fp32"; anything else is an error naming the text.
MathMode parse_math_mode(std::string_view text);

// Sets the mode for one scope and restores the previous one.
class MathModeOverride {
 public:
  explicit MathModeOverride(MathMode mode) : previous_(math_mode()) { set_math_mode(mode); }
  ~MathModeOverride() { set_math_mode(previous_); }
  MathModeOverride(const MathModeOverride&) = delete;
  MathModeOverride& operator=(const MathModeOverride&) = delete;

 private:
  MathMode previous_;
};

}  // namespace tpp
