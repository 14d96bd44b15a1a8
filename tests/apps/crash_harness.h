// Crash safety of a `tpp` command that writes a run directory: the command is
// killed with SIGKILL again and again (at seeded random moments, and in the
// middle of checkpoint writes through TPP_TEST_KILL_IN_SAVE, see
// engine/safetensors.cpp), the run directory is checked after every kill,
// the run is resumed until it finishes, and its checkpoints must then equal
// those of an uninterrupted run bit for bit (deterministic CPU: one OpenMP
// and one OpenBLAS thread).
//
// A command is described by two command lines: one that starts the run from
// scratch into a directory (replacing whatever is there: `--overwrite`), one
// that resumes it. `tpp train` is the first user (test_crash_safety.cpp);
// `tpp prune` plugs in the same way.
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/safetensors.h"
#include "models/checkpoint.h"

extern char** environ;

namespace tpp::testing {

namespace crash_fs = std::filesystem;

struct CrashCommand {
  std::function<std::vector<std::string>(const crash_fs::path& dir)> start;   // from scratch, replacing the run
  std::function<std::vector<std::string>(const crash_fs::path& dir)> resume;  // from its last checkpoint
  // Validated (models::read_checkpoint) after every kill, and compared with
  // the uninterrupted run at the end.
  std::vector<std::string> checkpoints = {"last.safetensors", "best.safetensors"};
  // Without this file a killed run cannot resume and starts over.
  std::string resume_from = "last.safetensors";
  // One JSON object per line (each complete line must parse after a kill);
  // the keys that may differ between runs are ignored in the final comparison.
  std::string log = "log.jsonl";
  std::vector<std::string> log_keys_that_vary = {"seconds", "images_per_s"};
};

struct CrashOptions {
  uint64_t seed = 1;
  int random_kills = 6;
  // A random kill comes after a delay uniform in [0, this * the time of the
  // uninterrupted run]; below 1 so that a run resumed from its last
  // checkpoint is usually killed again before it finishes.
  double max_delay_fraction = 0.5;
  // One run per entry, killed by the process itself in its Nth checkpoint
  // save, while only the temporary file exists.
  std::vector<int> kills_in_save = {1, 2, 3};
};

struct CrashReport {
  double reference_seconds = 0;
  int random_kills = 0;        // runs killed at a random moment
  int kills_in_save = 0;       // runs killed in the middle of a checkpoint write
  int kills_left_temp = 0;     // kills that left a new temporary file (killed inside an atomic write)
  int starts = 0, resumes = 0; // runs started, over the whole test (the reference excluded)
  // After each kill, where the resumable checkpoint stood ("phase:epoch"
  // from its metadata, "-" with none yet), e.g. "- train:1 train:1 train:3".
  std::string trace;
};

namespace crash_detail {

inline crash_fs::path tpp_binary() { return crash_fs::path(TPP_BINARY_DIR) / "tpp"; }

inline std::string read_all(const crash_fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Starts tpp with `args`, output to `log_file`, with one compute thread and
// `extra_env` added to this process's environment.
inline pid_t spawn_tpp(const std::vector<std::string>& args, const crash_fs::path& log_file,
                       const std::vector<std::string>& extra_env) {
  std::vector<std::string> argv_text = {tpp_binary().string()};
  argv_text.insert(argv_text.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_text) argv.push_back(a.data());
  argv.push_back(nullptr);

  std::vector<std::string> env_text = {"OMP_NUM_THREADS=1", "OPENBLAS_NUM_THREADS=1", "OMP_WAIT_POLICY=passive"};
  env_text.insert(env_text.end(), extra_env.begin(), extra_env.end());
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    const std::string key = entry.substr(0, entry.find('=') + 1);
    bool overridden = false;
    for (const std::string& mine : env_text) overridden |= mine.starts_with(key);
    if (!overridden) env_text.push_back(entry);
  }
  std::vector<char*> envp;
  for (std::string& e : env_text) envp.push_back(e.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid = -1;
  const int error = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  REQUIRE_MESSAGE(error == 0, "posix_spawn of ", argv_text[0], " failed: ", std::strerror(error));
  return pid;
}

struct Exit {
  bool exited = false;  // false: killed by a signal
  int code = 0;         // exit code or signal
};

inline Exit decode(int status) {
  if (WIFEXITED(status)) return {true, WEXITSTATUS(status)};
  return {false, WIFSIGNALED(status) ? WTERMSIG(status) : -1};
}

// Waits up to `seconds`; nullopt if it still runs.
inline std::optional<Exit> wait_for(pid_t pid, double seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (true) {
    int status = 0;
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    REQUIRE(done >= 0);
    if (done == pid) return decode(status);
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

inline Exit kill_and_wait(pid_t pid) {
  ::kill(pid, SIGKILL);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return decode(status);
}

// Waits for the end; a run that outlasts `patience` is killed and fails the test.
inline Exit wait_to_end(pid_t pid, double patience, const crash_fs::path& output) {
  const std::optional<Exit> outcome = wait_for(pid, patience);
  if (!outcome) kill_and_wait(pid);
  REQUIRE_MESSAGE(outcome.has_value(), "a run hung; its output: ", read_all(output));
  return *outcome;
}

inline std::vector<crash_fs::path> temporaries(const crash_fs::path& dir) {
  std::vector<crash_fs::path> found;
  if (!crash_fs::is_directory(dir)) return found;
  for (const auto& entry : crash_fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(".") && name.find(".tmp.") != std::string::npos) found.push_back(entry.path());
  }
  return found;
}

inline std::vector<nlohmann::json> complete_log_lines(const crash_fs::path& file) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(read_all(file));
  for (std::string line; std::getline(in, line);) {
    if (in.eof()) break;  // no newline after it: an append cut short, which readers skip
    const nlohmann::json parsed = nlohmann::json::parse(line, nullptr, false);
    CHECK_MESSAGE(!parsed.is_discarded(), file.string(), ": a line is not JSON: ", line);
    lines.push_back(parsed);
  }
  return lines;
}

// What must hold in the run directory whenever the process dies. Returns
// where the resumable checkpoint stands ("phase:epoch", "-" when none).
inline std::string check_after_kill(const CrashCommand& command, const crash_fs::path& dir, const std::string& when) {
  INFO("after ", when);
  std::string stands = "-";
  for (const std::string& name : command.checkpoints) {
    const crash_fs::path file = dir / name;
    if (!crash_fs::exists(file)) continue;
    std::string error;
    try {
      const models::Checkpoint checkpoint = models::read_checkpoint(file);
      if (name == command.resume_from) {
        const auto& extra = checkpoint.info.extra;
        const auto field = [&](const char* key) { return extra.count(key) ? extra.at(key) : std::string("?"); };
        stands = field("phase") + ":" + field("epoch");
      }
    } catch (const std::exception& e) {
      error = e.what();
    }
    CHECK_MESSAGE(error.empty(), file.string(), " does not load: ", error);
  }
  if (crash_fs::exists(dir / command.resume_from)) CHECK(crash_fs::exists(dir / "config.toml"));
  if (crash_fs::exists(dir / command.log)) (void)complete_log_lines(dir / command.log);
  if (crash_fs::exists(dir / "summary.json")) {
    const auto summary = nlohmann::json::parse(read_all(dir / "summary.json"), nullptr, false);
    CHECK_MESSAGE(!summary.is_discarded(), "summary.json is not JSON");
  }
  return stands;
}

inline bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.sizes() == b.sizes() &&
         std::memcmp(a.raw_data(), b.raw_data(), static_cast<size_t>(a.numel()) * element_size(a.dtype())) == 0;
}

inline void check_same_tensors(const crash_fs::path& expected, const crash_fs::path& actual) {
  REQUIRE_MESSAGE(crash_fs::exists(actual), actual.string(), " is missing");
  const auto a = load_safetensors(expected), b = load_safetensors(actual);
  CHECK(a.tensors.size() == b.tensors.size());
  // Named references, not a structured binding: doctest's assertion lambdas
  // cannot capture those before C++20 as clang 14 implements it.
  for (const auto& entry : a.tensors) {
    const std::string& name = entry.first;
    const auto it = b.tensors.find(name);
    CHECK_MESSAGE((it != b.tensors.end() && bitwise_equal(entry.second, it->second)), actual.string(), ": tensor '",
                  name, "' differs from the uninterrupted run");
  }
}

inline void check_same_log(const CrashCommand& command, const crash_fs::path& expected, const crash_fs::path& actual) {
  std::vector<nlohmann::json> a = complete_log_lines(expected), b = complete_log_lines(actual);
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    for (const std::string& key : command.log_keys_that_vary) {
      a[i].erase(key);
      b[i].erase(key);
    }
    CHECK_MESSAGE(a[i] == b[i], "log line ", i + 1, ": ", a[i].dump(), " vs ", b[i].dump());
  }
}

}  // namespace crash_detail

// Runs the whole scenario in `scratch` (reference/ and crashed/ below it).
inline CrashReport check_crash_safety(const CrashCommand& command, const crash_fs::path& scratch,
                                      const CrashOptions& options = {}) {
  using namespace crash_detail;
  CrashReport report;
  const crash_fs::path reference = scratch / "reference", crashed = scratch / "crashed";
  int run_number = 0;
  const auto log_of = [&] { return scratch / ("output_" + std::to_string(run_number++) + ".txt"); };

  const auto started = std::chrono::steady_clock::now();
  const crash_fs::path reference_log = log_of();
  const Exit ref = wait_to_end(spawn_tpp(command.start(reference), reference_log, {}), 600, reference_log);
  REQUIRE_MESSAGE((ref.exited && ref.code == 0), read_all(reference_log));
  report.reference_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const double patience = 20 * report.reference_seconds + 30;  // a run that hangs fails the test, not CI

  std::mt19937_64 rng(options.seed);
  const auto next_args = [&] {
    const bool resumable = crash_fs::exists(crashed / command.resume_from);
    ++(resumable ? report.resumes : report.starts);
    return resumable ? command.resume(crashed) : command.start(crashed);
  };
  bool finished = false;
  // Random kills and kills in a save, interleaved.
  const size_t attempts = static_cast<size_t>(options.random_kills) + options.kills_in_save.size();
  for (size_t attempt = 0; attempt < attempts && !finished; ++attempt) {
    const bool in_save = attempt % 2 == 1 && attempt / 2 < options.kills_in_save.size();
    const crash_fs::path output = log_of();
    const std::vector<crash_fs::path> temporaries_before = temporaries(crashed);
    std::string when;
    std::optional<Exit> outcome;
    if (in_save) {
      const int save = options.kills_in_save[attempt / 2];
      when = "a kill in save " + std::to_string(save);
      outcome = wait_to_end(spawn_tpp(next_args(), output, {"TPP_TEST_KILL_IN_SAVE=" + std::to_string(save)}),
                            patience, output);
      if (!outcome->exited) ++report.kills_in_save;
    } else {
      const double delay =
          options.max_delay_fraction * report.reference_seconds * static_cast<double>(rng() >> 11) * 0x1.0p-53;
      when = "a kill after " + std::to_string(delay) + " s";
      const pid_t pid = spawn_tpp(next_args(), output, {});
      outcome = wait_for(pid, delay);
      if (!outcome) {
        outcome = kill_and_wait(pid);
        ++report.random_kills;
      }
    }
    if (outcome->exited) {  // it ended before the kill: it must have finished the run
      REQUIRE_MESSAGE(outcome->code == 0, when, ": the run failed: ", read_all(output));
      finished = true;
    } else {
      REQUIRE_MESSAGE(outcome->code == SIGKILL, when, ": died of signal ", outcome->code, ": ", read_all(output));
    }
    for (const crash_fs::path& file : temporaries(crashed))
      if (std::find(temporaries_before.begin(), temporaries_before.end(), file) == temporaries_before.end()) {
        ++report.kills_left_temp;
        break;
      }
    if (!report.trace.empty()) report.trace += ' ';
    report.trace += check_after_kill(command, crashed, when);
  }
  for (int tries = 0; !finished; ++tries) {
    REQUIRE(tries < 3);
    const crash_fs::path output = log_of();
    const Exit outcome = wait_to_end(spawn_tpp(next_args(), output, {}), patience, output);
    REQUIRE_MESSAGE((outcome.exited && outcome.code == 0), read_all(output));
    finished = true;
  }

  CHECK_MESSAGE(temporaries(crashed).empty(), "a temporary file outlived the runs that could clean it up");
  for (const std::string& name : command.checkpoints) check_same_tensors(reference / name, crashed / name);
  check_same_log(command, reference / command.log, crashed / command.log);
  return report;
}

}  // namespace tpp::testing
