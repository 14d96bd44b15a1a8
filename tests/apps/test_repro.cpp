// The building blocks of `tpp repro` (apps/repro.h): the recipes' step
// schedules, when a step counts as done, and the copy of TPP's removed run
// that each retraining LR continues.
#include <doctest/doctest.h>

#include <fmt/format.h>
#include <unistd.h>

#include <fstream>

#include "apps/repro.h"

using namespace tpp::apps::repro;

namespace {

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / fmt::format("tpp_test_repro_{}_{}", name, ::getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void write(const fs::path& file, const std::string& text) { std::ofstream(file) << text; }

// A run directory as `tpp prune` leaves it, with `epochs_done` retraining epochs.
fs::path prune_run(const fs::path& dir, const std::string& status, int64_t epochs_done) {
  fs::create_directories(dir);
  write(dir / "config.toml", "method = \"tpp\"\n");
  write(dir / "last.safetensors", "weights");
  write(dir / "log.jsonl", "{\"phase\":\"remove\"}\n");
  write(dir / "summary.json",
        fmt::format(R"({{"status":"{}","retrain":{{"epochs":{},"epochs_done":{}}}}})", status, epochs_done,
                    epochs_done));
  return dir;
}

}  // namespace

TEST_SUITE("apps") {
  TEST_CASE("step_schedule: the paper's milestones from their fractions, and short runs keep the shape") {
    CHECK(step_schedule(0.1, 200, {0.5, 0.75}) == "0:0.1,100:0.01,150:0.001");      // §6.1 dense CIFAR
    CHECK(step_schedule(1e-2, 120, {0.5, 0.75}) == "0:0.01,60:0.001,90:0.0001");    // §6.2 retraining
    CHECK(step_schedule(1e-3, 120, {0.5, 0.75}) == "0:0.001,60:0.0001,90:1e-05");   // the LR 1e-3 rows
    CHECK(step_schedule(1e-2, 90, {1.0 / 3, 2.0 / 3}) == "0:0.01,30:0.001,60:0.0001");  // MNIST, §8.2
    CHECK(step_schedule(0.1, 10, {0.5, 0.75}) == "0:0.1,5:0.01,8:0.001");           // the cpu recipe
    // Milestones stay strictly increasing; those at or past the end are left out.
    CHECK(step_schedule(0.1, 2, {0.5, 0.75}) == "0:0.1,1:0.01");
    CHECK(step_schedule(0.1, 1, {0.5, 0.75}) == "0:0.1");
  }

  TEST_CASE("with_overrides: a given value replaces the recipe's, 0 keeps it") {
    const Recipe paper{.name = "paper", .dense_epochs = 200, .epochs = 120, .reg_granularity = 1e-4};
    ReproConfig c;
    c.epochs = 3;
    c.reg_interval = 1;
    const Recipe r = with_overrides(paper, c);
    CHECK(r.dense_epochs == 200);
    CHECK(r.epochs == 3);
    CHECK(r.reg_granularity == 1e-4);
    CHECK(r.reg_interval == 1);
    CHECK(r.description.ends_with("; OVERRIDDEN by --epochs 3, --reg-interval 1"));
    CHECK(with_overrides(paper, ReproConfig{}).description == paper.description);
  }

  TEST_CASE("finished: the run's status, and for a retraining the epochs it has done") {
    const fs::path root = fresh_dir("finished");
    CHECK_FALSE(finished(root / "missing"));
    const fs::path removed = prune_run(root / "tpp-removed", "finished", 0);
    CHECK(finished(removed));
    CHECK(finished(removed, 0));
    CHECK_FALSE(finished(removed, 10));  // a copy of it still has to retrain
    CHECK_FALSE(finished(prune_run(root / "running", "running", 4), 4));
    CHECK(finished(prune_run(root / "retrained", "finished", 10), 10));
    fs::remove_all(root);
  }

  TEST_CASE("branch_run: a whole copy of a finished run, made once, an unfinished run is refused") {
    const fs::path root = fresh_dir("branch");
    const fs::path removed = prune_run(root / "tpp-removed", "finished", 0);
    branch_run(removed, root / "tpp-lr0.01");
    for (const char* file : {"config.toml", "last.safetensors", "log.jsonl", "summary.json"})
      CHECK(fs::exists(root / "tpp-lr0.01" / file));
    CHECK_FALSE(fs::exists(root / "tpp-lr0.01.partial"));
    // A branch that has moved on is left alone.
    write(root / "tpp-lr0.01" / "log.jsonl", "{\"phase\":\"retrain\"}\n");
    branch_run(removed, root / "tpp-lr0.01");
    CHECK(log_lines(root / "tpp-lr0.01").at(0).at("phase") == "retrain");
    const fs::path running = prune_run(root / "running", "running", 0);
    CHECK_THROWS_WITH(branch_run(running, root / "copy"),
                      ("repro: cannot branch from " + running.string() + ": it has not finished").c_str());
    fs::remove_all(root);
  }

  TEST_CASE("Cell: mean ± sample std over seeds, the value alone for one seed, '-' for none") {
    Cell c;
    CHECK(c.text(2) == "-");
    c.add(90.0);
    CHECK(c.text(2) == "90.00");
    c.add(92.0);
    CHECK(c.text(2) == "91.00 ± 1.41");
  }
}
