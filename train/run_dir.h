// A run directory: everything one run leaves behind.
//
//   config.toml        the resolved options; `--config` reads it back
//   log.jsonl          one JSON object per line (per epoch or phase)
//   last.safetensors   the latest checkpoint, with the state to resume from
//   best.safetensors   the weights with the best test accuracy so far
//   pruned.safetensors `tpp prune`: the model right after the removal
//   summary.json       the outcome
//   report.html        curves (inline SVG) and tables; no outside files
//
// Every file but the log is replaced atomically (temporary file, fsync,
// rename); the log only grows by whole lines. A process killed at any point
// leaves every file either as it was or complete; at worst a stray temporary
// file (".<file>.tmp.<pid>.<n>"), which the next run in the directory
// removes once that process is gone.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "engine/atomic_file.h"  // write_file_atomic

namespace tpp::train {

namespace fs = std::filesystem;

class RunDir {
 public:
  enum class Mode {
    create,     // refuse a directory that exists and is not empty
    overwrite,  // remove the files a run writes (others stay), then start afresh
    resume,     // continue: config.toml and last.safetensors must be there
  };

  // The names of the files a run writes.
  static const std::vector<std::string>& run_files();

  // Checks that `path` may be used in `mode` without touching anything; the
  // error names the directory and the way out (the run configs'
  // `overwrite` and `resume`).
  static void check_usable(const fs::path& path, Mode mode);
  // check_usable(), then creates the directory (create) or clears the run
  // files (overwrite), and removes temporary files of writers that died.
  RunDir(fs::path path, Mode mode);

  const fs::path& path() const { return path_; }
  fs::path config_file() const { return path_ / "config.toml"; }
  fs::path log_file() const { return path_ / "log.jsonl"; }
  fs::path last_checkpoint() const { return path_ / "last.safetensors"; }
  fs::path best_checkpoint() const { return path_ / "best.safetensors"; }
  fs::path summary_file() const { return path_ / "summary.json"; }
  fs::path report_file() const { return path_ / "report.html"; }

  void write_config(std::string_view toml) const { write_file_atomic(config_file(), toml); }
  // Appends one line to log.jsonl and fsyncs it.
  void append_log(const nlohmann::ordered_json& line) const;
  // Every line of log.jsonl (none when there is no log); a line that is not
  // JSON throws tpp::Error naming the file and line number. Text after the
  // last newline (an append cut short) is not a line.
  std::vector<nlohmann::ordered_json> read_log() const;
  // Replaces log.jsonl with `lines` (atomically).
  void rewrite_log(const std::vector<nlohmann::ordered_json>& lines) const;
  void write_summary(const nlohmann::ordered_json& summary) const;
  void write_report(std::string_view html) const { write_file_atomic(report_file(), html); }

 private:
  fs::path path_;
};

}  // namespace tpp::train
