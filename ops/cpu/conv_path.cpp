#include "ops/cpu/conv_path.h"

#include <atomic>
#include <cstdlib>

#include "engine/error.h"

namespace tpp::ops {

namespace {

CpuConvPath path_from_environment() {
  const char* value = std::getenv("TPP_CPU_CONV");
  if (value == nullptr || *value == '\0') return CpuConvPath::onednn;
  const std::string_view text = value;
  if (text == "onednn") return CpuConvPath::onednn;
  if (text == "reference") return CpuConvPath::reference;
  fail("TPP_CPU_CONV={}: expected onednn or reference", text);
}

std::atomic<CpuConvPath>& current_path() {
  static std::atomic<CpuConvPath> path{path_from_environment()};
  return path;
}

}  // namespace

CpuConvPath cpu_conv_path() { return current_path().load(std::memory_order_relaxed); }
void set_cpu_conv_path(CpuConvPath path) { current_path().store(path, std::memory_order_relaxed); }

CpuConvPath parse_cpu_conv_path(std::string_view text) {
  if (text == "onednn") return CpuConvPath::onednn;
  if (text == "reference") return CpuConvPath::reference;
  fail("cpu-conv: expected onednn or reference but got '{}'", text);
}

std::string_view cpu_conv_path_name(CpuConvPath path) {
  return path == CpuConvPath::onednn ? "onednn" : "reference";
}

}  // namespace tpp::ops
