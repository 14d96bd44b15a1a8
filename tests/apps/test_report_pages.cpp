// The report pages of `tpp train`, `tpp prune` and `tpp compare` on a tiny
// synthetic MNIST: well-formed HTML, nothing wider than the page, every
// chart with axis labels (tests/apps/report_checks.h). scripts/render_reports.sh
// renders the same pages in headless Chromium for a look.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "tests/apps/report_checks.h"
#include "tests/apps/run_tpp.h"
#include "tests/data/data_test_util.h"

using tpp::testing::run_tpp;
using tpp::testing::TempDir;
using tpp::testing::TppRun;

namespace {

std::string read_text(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_mnist(const std::filesystem::path& dir) {
  std::vector<uint8_t> labels;
  for (uint8_t i = 0; i < 40; ++i) labels.push_back(i % 10);
  tpp::testing::write_bytes(dir / "train-images-idx3-ubyte", tpp::testing::idx_images(40, 28, 28));
  tpp::testing::write_bytes(dir / "train-labels-idx1-ubyte", tpp::testing::idx_labels(labels));
  tpp::testing::write_bytes(dir / "t10k-images-idx3-ubyte", tpp::testing::idx_images(10, 28, 28));
  tpp::testing::write_bytes(dir / "t10k-labels-idx1-ubyte", tpp::testing::idx_labels({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

}  // namespace

TEST_SUITE("apps") {
  TEST_CASE("report pages of train, prune and compare: well-formed, within the page, every chart with axis labels") {
    const TempDir dir;
    write_mnist(dir / "mnist");
    const std::string data = " --dataset mnist --data-dir " + (dir / "mnist").string() + " --batch-size 10 --workers 0";
    const std::string dense = (dir / "dense").string(), pruned = (dir / "tpp").string();
    TppRun run = run_tpp("train --arch mlp7_linear --epochs 2 --device cpu --out " + dense + data);
    REQUIRE_MESSAGE(run.status == 0, run.output);
    run = run_tpp("prune --method tpp --base " + dense + "/best.safetensors --stage-pr 'net.*:0.5' --skip-layers "
                  "net.12 --epochs 2 --device cpu --reg-granularity 0.25 --reg-interval 2 --stabilize-iters 14 "
                  "--zero-out-interval 2 --log-interval 1 --out " + pruned + data);
    REQUIRE_MESSAGE(run.status == 0, run.output);
    run = run_tpp("compare --speed-rounds 1 --speed-batch 2 " + dense + " " + pruned + " --out " +
                  (dir / "compare.html").string());
    REQUIRE_MESSAGE(run.status == 0, run.output);

    tpp::testing::check_report_page(read_text(dir / "dense" / "report.html"), "train");
    const std::string prune_page = read_text(dir / "tpp" / "report.html");
    tpp::testing::check_report_page(prune_page, "prune");
    CHECK(prune_page.find("Regularised phase: penalty terms") != std::string::npos);
    CHECK(prune_page.find("penalty (log scale)") != std::string::npos);
    tpp::testing::check_report_page(read_text(dir / "compare.html"), "compare");
  }

  TEST_CASE("the nesting check finds what it is for") {
    CHECK(tpp::testing::html_nesting_error("<p><b>x</p></b>") == "</p> closes <b>");
    CHECK(tpp::testing::html_nesting_error("<div><br><svg><rect/></svg>") == "<div> is never closed");
    CHECK(tpp::testing::html_nesting_error("<!DOCTYPE html><html><meta charset=\"utf-8\"></html>") == "");
  }
}
