// What the end-to-end tests of `tpp` under the MPI launcher share
// (mpi_train_tests.cpp, mpi_prune_tests.cpp): the launcher's environment,
// shell commands with a time limit, scratch directories, JSON lines, and the
// distance between two checkpoints (tests/apps/checkpoint_difference.h).
#pragma once

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "data/catalog.h"
#include "tests/apps/checkpoint_difference.h"

namespace tpp::testing::mpi {

namespace fs = std::filesystem;

// OpenMPI as root (CI containers), two ranks on fewer cores, shared-memory
// copies without cross-process reads; one OpenMP thread per rank. A setting
// given by the caller (ctest's ENVIRONMENT) stays.
inline const bool kMpiEnvironment = [] {
  for (const auto& [name, value] : {std::pair{"OMPI_ALLOW_RUN_AS_ROOT", "1"}, {"OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1"},
                                    {"OMPI_MCA_rmaps_base_oversubscribe", "1"},
                                    {"OMPI_MCA_btl_vader_single_copy_mechanism", "none"}, {"OMP_NUM_THREADS", "1"},
                                    {"OMP_WAIT_POLICY", "passive"}})
    ::setenv(name, value, 0);
  return true;
}();

inline const std::string kTpp = (fs::path(TPP_BINARY_DIR) / "tpp").string();

// A shell command's exit code, output and wall time; `timeout` guards against a hang.
struct Shell {
  int status;
  std::string output;
  double seconds;
};

inline Shell shell(const std::string& command, int max_seconds = 240) {
  const auto started = std::chrono::steady_clock::now();
  const std::string guarded = "timeout --kill-after=5 " + std::to_string(max_seconds) + " " + command + " 2>&1";
  FILE* pipe = popen(guarded.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  char buffer[4096];
  while (const size_t n = fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  const int status = pclose(pipe);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output, seconds};
}

// `tpp ARGS` on `ranks` processes.
inline std::string mpirun(int ranks, const std::string& args) {
  return std::string(TPP_MPIEXEC) + " -n " + std::to_string(ranks) + " " + kTpp + " " + args;
}

struct Scratch {
  fs::path dir;
  explicit Scratch(const std::string& name)
      : dir(fs::temp_directory_path() / ("tpp_test_mpi_" + std::to_string(::getpid()) + "_" + name)) {
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~Scratch() { fs::remove_all(dir); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  std::string operator/(const std::string& name) const { return (dir / name).string(); }
};

inline bool have_fashion_mnist() {
  try {
    data::locate_dataset("fashion-mnist", data::resolve_data_root(""));
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

inline std::vector<nlohmann::json> read_jsonl(const fs::path& file) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

inline nlohmann::json read_json(const fs::path& file) {
  std::ifstream in(file);
  REQUIRE_MESSAGE(in.good(), file.string());
  return nlohmann::json::parse(in);
}

inline size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

using ::tpp::testing::max_difference;  // tests/apps/checkpoint_difference.h

}  // namespace tpp::testing::mpi

#define REQUIRE_DATA()                                                                    \
  if (!tpp::testing::mpi::have_fashion_mnist()) {                                         \
    MESSAGE("skipped: no Fashion-MNIST (install dataset-fashion-mnist or set TPP_DATA)"); \
    return;                                                                               \
  }
