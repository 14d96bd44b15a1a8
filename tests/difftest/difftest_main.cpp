// tpp_difftest: replays case files of scripts/difftest.py against our ops.
//   tpp_difftest FILE... [--device cpu|cuda[:N]] [--op NAME] [--trace] [--skip-without-gpu]
// Prints the cases per op and every failure; exit 0 when all pass, 1 when
// any fails, 2 for a usage error. --trace names each case before it runs, so
// that a crash or a hang can be pinned to its case. --skip-without-gpu (for
// ctest): with a CUDA device and no usable GPU, say so and exit 77.
#include <fmt/format.h>

#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "engine/cuda_info.h"
#include "engine/error.h"
#include "tests/difftest/difftest.h"

using namespace tpp;

int main(int argc, char** argv) {
  std::vector<std::string> files;
  std::string device_text = "cpu", only_op;
  bool trace = false, skip_without_gpu = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--device" && has_value) device_text = argv[++i];
    else if (arg == "--op" && has_value) only_op = argv[++i];
    else if (arg == "--trace") trace = true;
    else if (arg == "--skip-without-gpu") skip_without_gpu = true;
    else if (arg.starts_with("--")) {
      std::cerr << "tpp_difftest: unknown or incomplete option '" << arg
                << "' (usage: tpp_difftest FILE... [--device cpu|cuda[:N]] [--op NAME] [--trace] "
                   "[--skip-without-gpu])\n";
      return 2;
    } else files.push_back(arg);
  }
  if (files.empty()) {
    std::cerr << "tpp_difftest: no case file given (usage: tpp_difftest FILE... [--device D] [--op NAME] [--trace])\n";
    return 2;
  }
  try {
    const Device device = Device::parse(device_text);
    if (skip_without_gpu && device.is_cuda() && cuda_device_count() == 0) {
      std::cout << "difftest: skipped: no usable GPU for --device " << device_text << "\n";
      return 77;
    }
    std::map<std::string, int64_t> per_op;
    int64_t failures = 0, cases = 0;
    for (const std::string& path : files) {
      const difftest::CaseFile file = difftest::load_cases(path);
      const difftest::FileReport report = difftest::run_file(file, device, only_op, trace);
      for (const auto& [op, n] : report.cases_per_op) per_op[op] += n, cases += n;
      for (const std::string& f : report.failures) std::cout << "FAIL " << f << "\n";
      failures += static_cast<int64_t>(report.failures.size());
    }
    std::string counts;
    for (const auto& [op, n] : per_op) counts += fmt::format("{}{} {}", counts.empty() ? "" : ", ", op, n);
    std::cout << fmt::format("difftest on {}: {} cases in {} file(s), {} failed\ncases per op: {}\n", device.str(),
                             cases, files.size(), failures, counts);
    return failures == 0 ? 0 : 1;
  } catch (const Error& e) {
    std::cerr << "tpp_difftest: " << e.what() << "\n";
    return 1;
  }
}
