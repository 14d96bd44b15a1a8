#include "train/run_dir.h"

#include <fcntl.h>
#include <signal.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "engine/atomic_file.h"
#include "engine/error.h"

namespace tpp::train {

namespace {

void write_all(int fd, std::string_view bytes, const fs::path& file) {
  while (!bytes.empty()) {
    const ssize_t put = ::write(fd, bytes.data(), bytes.size());
    if (put < 0 && errno == EINTR) continue;
    TPP_CHECK(put > 0, "cannot write {}: {}", file.string(), errno_text());
    bytes.remove_prefix(static_cast<size_t>(put));
  }
}

bool is_empty_directory(const fs::path& path) { return fs::is_directory(path) && fs::is_empty(path); }

// The writer's pid when `name` is the temporary file of a run file's atomic write.
std::optional<pid_t> temporary_owner(const std::string& name) {
  for (const std::string& target : RunDir::run_files())
    if (const std::optional<pid_t> pid = atomic_temporary_owner(name, target)) return pid;
  return std::nullopt;
}

// Temporary files left by a writer that was killed before its rename. One
// whose process still runs is another writer's and stays.
void remove_stale_temporaries(const fs::path& dir) {
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, error)) {
    const std::optional<pid_t> owner = temporary_owner(entry.path().filename().string());
    if (!owner) continue;
    if (::kill(*owner, 0) == 0 || errno != ESRCH) continue;
    fs::remove(entry.path(), error);
  }
}

}  // namespace

const std::vector<std::string>& RunDir::run_files() {
  // pruned.safetensors: `tpp prune`'s model right after the removal, before retraining.
  static const std::vector<std::string> names = {"config.toml",  "log.jsonl",   "last.safetensors", "best.safetensors",
                                                 "summary.json", "report.html", "pruned.safetensors"};
  return names;
}

void RunDir::check_usable(const fs::path& path, Mode mode) {
  const std::string dir = path.string();
  TPP_CHECK(!fs::exists(path) || fs::is_directory(path), "run directory {} exists and is not a directory", dir);
  switch (mode) {
    case Mode::create:
      TPP_CHECK(!fs::exists(path) || is_empty_directory(path),
                "run directory {} already exists; pass `overwrite` to replace its run, or `resume` {} to continue it",
                dir, dir);
      break;
    case Mode::overwrite:
      break;
    case Mode::resume:
      TPP_CHECK(fs::is_directory(path), "`resume` {}: no such run directory", dir);
      for (const char* needed : {"config.toml", "last.safetensors"})
        TPP_CHECK(fs::exists(path / needed), "`resume` {}: {} is missing (not a run directory, or no epoch finished)",
                  dir, needed);
      break;
  }
}

RunDir::RunDir(fs::path path, Mode mode) : path_(std::move(path)) {
  check_usable(path_, mode);
  std::error_code error;
  fs::create_directories(path_, error);
  TPP_CHECK(!error, "cannot create run directory {}: {}", path_.string(), error.message());
  remove_stale_temporaries(path_);
  if (mode == Mode::overwrite) {
    // The old checkpoint goes first: killed halfway through, the directory
    // must not look resumable with some other run's config.
    std::vector<std::string> names = run_files();
    std::stable_partition(names.begin(), names.end(), [](const std::string& n) { return n == "last.safetensors"; });
    for (const std::string& name : names) {
      fs::remove(path_ / name, error);
      TPP_CHECK(!error, "`overwrite`: cannot remove {}: {}", (path_ / name).string(), error.message());
    }
  }
}

void RunDir::append_log(const nlohmann::ordered_json& line) const {
  const fs::path file = log_file();
  const FileDescriptor fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666));
  TPP_CHECK(fd.valid(), "cannot open {}: {}", file.string(), errno_text());
  write_all(fd.get(), line.dump() + "\n", file);
  TPP_CHECK(::fsync(fd.get()) == 0, "fsync of {} failed: {}", file.string(), errno_text());
}

std::vector<nlohmann::ordered_json> RunDir::read_log() const {
  std::vector<nlohmann::ordered_json> lines;
  std::ifstream in(log_file(), std::ios::binary);
  if (!in) return lines;
  std::stringstream whole;
  whole << in.rdbuf();
  std::string all = whole.str();
  // Every append ends with a newline: text after the last one is an append
  // cut short (a crash or a full disk), not a line.
  all.erase(all.find_last_of('\n') == std::string::npos ? 0 : all.find_last_of('\n') + 1);
  std::istringstream log(all);
  std::string text;
  for (int64_t number = 1; std::getline(log, text); ++number) {
    if (text.empty()) continue;
    try {
      lines.push_back(nlohmann::ordered_json::parse(text));
    } catch (const nlohmann::json::parse_error&) {
      fail("{}: line {} is not JSON: {}", log_file().string(), number, text.substr(0, 80));
    }
  }
  return lines;
}

void RunDir::rewrite_log(const std::vector<nlohmann::ordered_json>& lines) const {
  std::string text;
  for (const auto& line : lines) text += line.dump() + "\n";
  write_file_atomic(log_file(), text);
}

void RunDir::write_summary(const nlohmann::ordered_json& summary) const {
  write_file_atomic(summary_file(), summary.dump(2) + "\n");
}

}  // namespace tpp::train
