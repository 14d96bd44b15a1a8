// tpp_parity: runs every CPU-vs-CUDA parity case (tests/gpu/parity.h) and,
// with --perf, times each op's forward and backward on both devices.
//
//   tpp_parity            check every case, exit 1 on any mismatch
//   tpp_parity --perf     also print CPU ms, CUDA ms and the ratio per case
//   tpp_parity --filter conv
//   tpp_parity --list     the case names (no GPU needed)
#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "engine/autograd.h"
#include "engine/cuda_info.h"
#include "tests/gpu/parity.h"

using namespace tpp;

namespace {

// Median-free but warmed-up mean time of forward + backward, in milliseconds.
double time_case(const parity::ParityCase& c, Device device) {
  const parity::Inputs inputs = parity::inputs_on(c.make_inputs(), device);
  auto once = [&] {
    const Tensor out = c.run(inputs);
    if (c.differentiable && out.requires_grad()) out.backward(ones(out.sizes(), {.dtype = out.dtype(), .device = device}));
  };
  once();
  synchronize(device);
  int reps = 0;
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  do {
    once();
    synchronize(device);
    ++reps;
    elapsed = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  } while (elapsed < 200 && reps < 1000);
  return elapsed / reps;
}

}  // namespace

int main(int argc, char** argv) {
  bool perf = false, list = false;
  std::string filter;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--perf") {
      perf = true;
    } else if (arg == "--list") {
      list = true;
    } else if (arg == "--filter" && i + 1 < argc) {
      filter = argv[++i];
    } else {
      std::fprintf(stderr, "tpp_parity: unknown option '%s' (expected --perf, --list, --filter TEXT)\n", argv[i]);
      return 2;
    }
  }
  if (list) {
    int listed = 0;
    for (const parity::ParityCase& c : parity::registry())
      if (filter.empty() || c.name.find(filter) != std::string::npos) fmt::print("{}\n", c.name), ++listed;
    fmt::print("{} parity cases\n", listed);
    return 0;
  }
  if (cuda_device_count() == 0) {
    std::fprintf(stderr, "tpp_parity: no usable GPU\n%s", cuda_version_text().c_str());
    return 2;
  }
  int failed = 0, run = 0;
  if (perf) fmt::print("{:<60} {:>10} {:>10} {:>8}\n", "case (forward + backward)", "CPU ms", "CUDA ms", "speedup");
  for (const parity::ParityCase& c : parity::registry()) {
    if (!filter.empty() && c.name.find(filter) == std::string::npos) continue;
    ++run;
    const std::vector<std::string> failures = parity::check_case_in_every_mode(c);
    for (const std::string& f : failures) fmt::print("FAIL {}\n", f);
    failed += failures.empty() ? 0 : 1;
    if (perf) {
      const double cpu_ms = time_case(c, Device::cpu()), gpu_ms = time_case(c, Device::cuda(0));
      fmt::print("{:<60} {:>10.3f} {:>10.3f} {:>7.1f}x\n", c.name, cpu_ms, gpu_ms, cpu_ms / gpu_ms);
    }
  }
  fmt::print("{} of {} parity cases pass\n", run - failed, run);
  return failed == 0 ? 0 : 1;
}
