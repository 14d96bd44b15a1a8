// Which kernels run CPU convolutions in f32: oneDNN's (the default; JIT code
// for the CPU it finds itself) or the readable reference, im2col + GEMM
// (ops/cpu/conv2d.cpp), which also runs every f64 convolution (gradient
// checks). Chosen by `--cpu-conv reference|onednn` on the commands that train
// and evaluate, or by the environment variable TPP_CPU_CONV (read once, on
// first use; unset means onednn).
#pragma once

#include <string_view>

namespace tpp::ops {

enum class CpuConvPath { onednn, reference };

CpuConvPath cpu_conv_path();
void set_cpu_conv_path(CpuConvPath path);
// "onednn" or "reference"; anything else is an error naming the text.
CpuConvPath parse_cpu_conv_path(std::string_view text);
std::string_view cpu_conv_path_name(CpuConvPath path);

// Sets the path for one scope and restores the previous one (tests).
class CpuConvPathOverride {
 public:
  explicit CpuConvPathOverride(CpuConvPath path) : previous_(cpu_conv_path()) { set_cpu_conv_path(path); }
  ~CpuConvPathOverride() { set_cpu_conv_path(previous_); }
  CpuConvPathOverride(const CpuConvPathOverride&) = delete;
  CpuConvPathOverride& operator=(const CpuConvPathOverride&) = delete;

 private:
  CpuConvPath previous_;
};

}  // namespace tpp::ops
