// Run directories after a crash: what a killed writer can leave behind
// (a temporary file, a log line cut short) never gets in the next run's way.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "train/run_dir.h"

namespace fs = std::filesystem;
using tpp::train::RunDir;
using tpp::write_file_atomic;

namespace {

struct Scratch {
  fs::path dir = fs::temp_directory_path() / ("tpp_test_run_dir_" + std::to_string(::getpid()));
  Scratch() {
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~Scratch() { fs::remove_all(dir); }
};

// The id of a process that has ended (and been reaped).
pid_t dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return child;
}

void touch(const fs::path& file, const std::string& text = "partial") { std::ofstream(file) << text; }

}  // namespace

TEST_SUITE("train.run_dir") {
  TEST_CASE("opening a run directory removes the temporary files of writers that died, and only those") {
    const Scratch scratch;
    const std::string dead = std::to_string(dead_pid()), alive = std::to_string(::getpid());
    const std::vector<std::string> stale = {".last.safetensors.tmp." + dead + ".0",
                                            ".best.safetensors.tmp." + dead + ".3", ".summary.json.tmp." + dead + ".1",
                                            ".pruned.safetensors.tmp." + dead + ".4"};
    const std::vector<std::string> kept = {".last.safetensors.tmp." + alive + ".2",  // a writer still running
                                           ".notes.txt.tmp." + dead + ".0",          // not a run file
                                           ".last.safetensors.tmp.x.0", "keep.txt"};
    for (const auto& name : stale) touch(scratch.dir / name);
    for (const auto& name : kept) touch(scratch.dir / name);
    const RunDir run(scratch.dir, RunDir::Mode::overwrite);
    for (const auto& name : stale) CHECK_MESSAGE(!fs::exists(scratch.dir / name), name);
    for (const auto& name : kept) CHECK_MESSAGE(fs::exists(scratch.dir / name), name);
  }

  TEST_CASE("read_log skips text after the last newline: an append cut short") {
    const Scratch scratch;
    const RunDir run(scratch.dir / "run", RunDir::Mode::create);
    touch(run.log_file(), "{\"epoch\": 1}\n{\"epoch\": 2}\n{\"epoch\": 3, \"train_lo");
    const auto lines = run.read_log();
    REQUIRE(lines.size() == 2);
    CHECK(lines[1]["epoch"] == 2);
    touch(run.log_file(), "{\"epoch\": 1}\n{\"epoch\": 2}");  // even when what is cut short parses
    CHECK(run.read_log().size() == 1);
    touch(run.log_file(), "");
    CHECK(run.read_log().empty());
  }

  TEST_CASE("write_file_atomic replaces a file whole and leaves no temporary file") {
    const Scratch scratch;
    write_file_atomic(scratch.dir / "a.json", "old");
    write_file_atomic(scratch.dir / "a.json", "new");
    std::ifstream in(scratch.dir / "a.json");
    std::string text;
    std::getline(in, text);
    CHECK(text == "new");
    CHECK(std::distance(fs::directory_iterator(scratch.dir), fs::directory_iterator()) == 1);
  }
}
