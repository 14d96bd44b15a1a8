// Runs the built `tpp` program (TPP_BINARY_DIR/tpp) with arguments and
// collects its exit code and output, for the end-to-end command tests.
#pragma once

#include <doctest/doctest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include "data/catalog.h"

namespace tpp::testing {

struct TppRun {
  int status;          // the exit code, -1 when killed by a signal
  std::string output;  // stdout and stderr
};

// `env` (e.g. "TPP_SYNC_DEBUG=1") is set for this run only.
inline TppRun run_tpp(const std::string& args, const std::string& env = "") {
  const std::filesystem::path tpp = std::filesystem::path(TPP_BINARY_DIR) / "tpp";
  REQUIRE_MESSAGE(std::filesystem::exists(tpp), tpp.string() << " is not built (run ninja for all targets)");
  const std::string prefix = env.empty() ? "" : "env " + env + " ";
  FILE* pipe = popen((prefix + tpp.string() + " " + args + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  std::array<char, 4096> buffer{};
  while (const size_t n = fread(buffer.data(), 1, buffer.size(), pipe)) output.append(buffer.data(), n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

// Whether Fashion-MNIST (Debian's dataset-fashion-mnist, or $TPP_DATA) is there.
inline bool have_fashion_mnist() {
  try {
    tpp::data::locate_dataset("fashion-mnist", tpp::data::resolve_data_root(""));
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace tpp::testing

#define REQUIRE_FASHION_MNIST()                                                               \
  if (!tpp::testing::have_fashion_mnist()) {                                                  \
    MESSAGE("skipped: no Fashion-MNIST (install dataset-fashion-mnist or set TPP_DATA)");     \
    return;                                                                                   \
  }
