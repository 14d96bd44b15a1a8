// `tpp train` end to end: tiny runs of the built program on the first few
// hundred Fashion-MNIST images (Debian's dataset-fashion-mnist package).
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "data/catalog.h"
#include "engine/safetensors.h"
#include "tests/apps/run_tpp.h"

namespace fs = std::filesystem;
using tpp::testing::run_tpp;
using Run = tpp::testing::TppRun;

namespace {

// A fresh scratch folder per test case, removed afterwards.
struct Scratch {
  fs::path dir;
  explicit Scratch(const std::string& name)
      : dir(fs::temp_directory_path() / ("tpp_test_train_" + std::to_string(::getpid()) + "_" + name)) {
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~Scratch() { fs::remove_all(dir); }
  std::string operator/(const std::string& name) const { return (dir / name).string(); }
};

// The tpp processes these tests start run small convolutions; on a busy
// machine spinning OpenMP threads make them several times slower. Children
// inherit this (a setting given by the caller stays).
const bool kPassiveOpenMp = ::setenv("OMP_WAIT_POLICY", "passive", 0) == 0;

// mlp7_linear (no BN) on 200 images, epochs of 4 steps: a fraction of a second each.
std::string tiny_mlp(int epochs, const std::string& lr_schedule = "0:0.05,1:0.01") {
  return "train --arch mlp7_linear --dataset fashion-mnist --batch-size 50 --limit 200 --test-limit 100 --workers 0 "
         "--epochs " +
         std::to_string(epochs) + " --lr-schedule " + lr_schedule;
}
const std::string kTinyMlp = tiny_mlp(2);

std::string read_text(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<nlohmann::json> read_jsonl(const fs::path& file) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

bool bitwise_equal(const tpp::Tensor& a, const tpp::Tensor& b) {
  return a.dtype() == b.dtype() && a.sizes() == b.sizes() &&
         std::memcmp(a.raw_data(), b.raw_data(), static_cast<size_t>(a.numel()) * tpp::element_size(a.dtype())) == 0;
}

// Every tensor of two checkpoints, compared bit for bit; returns the names that differ.
std::vector<std::string> differing_tensors(const fs::path& a, const fs::path& b) {
  const auto fa = tpp::load_safetensors(a), fb = tpp::load_safetensors(b);
  std::vector<std::string> differ;
  for (const auto& [name, t] : fa.tensors) {
    const auto it = fb.tensors.find(name);
    if (it == fb.tensors.end() || !bitwise_equal(t, it->second)) differ.push_back(name);
  }
  for (const auto& [name, t] : fb.tensors)
    if (!fa.tensors.count(name)) differ.push_back(name);
  return differ;
}

}  // namespace

TEST_SUITE("apps") {

TEST_CASE("tpp train: a tiny run writes config.toml, log.jsonl, checkpoints, summary.json and report.html") {
  REQUIRE_FASHION_MNIST();
  const Scratch scratch("files");
  const fs::path run_dir = scratch / "run";
  const Run run = run_tpp(kTinyMlp + " --out " + run_dir.string());
  REQUIRE_MESSAGE(run.status == 0, run.output);
  // Not a terminal: one plain line per epoch, then where the run is.
  CHECK(run.output.find("epoch 1/2  train loss") != std::string::npos);
  CHECK(run.output.find("epoch 2/2  train loss") != std::string::npos);
  CHECK(run.output.find('\r') == std::string::npos);
  CHECK(run.output.find("train: run directory " + run_dir.string()) != std::string::npos);

  const auto log = read_jsonl(run_dir / "log.jsonl");
  REQUIRE(log.size() == 2);
  for (size_t i = 0; i < log.size(); ++i) {
    CHECK(log[i]["epoch"] == i + 1);
    for (const char* key : {"train_loss", "train_acc", "test_loss", "test_acc", "lr", "images_per_s", "seconds"})
      CHECK_MESSAGE(log[i][key].is_number(), key);
    CHECK(log[i]["test_acc"].get<double>() >= 0);
    CHECK(log[i]["test_acc"].get<double>() <= 100);
  }
  CHECK(log[0]["lr"] == 0.05);
  CHECK(log[1]["lr"] == 0.01);

  const auto summary = nlohmann::json::parse(read_text(run_dir / "summary.json"));
  CHECK(summary["status"] == "finished");
  CHECK(summary["arch"] == "mlp7_linear");
  CHECK(summary["dataset"] == "fashion-mnist");
  CHECK(summary["epochs_done"] == 2);
  CHECK(summary["train_samples"] == 200);
  CHECK(summary["test_samples"] == 100);
  CHECK(summary["input"] == nlohmann::json::array({1, 32, 32}));
  CHECK(summary["params"] == 154010);
  CHECK(summary["final_test_acc"] == log[1]["test_acc"]);
  CHECK(summary["best_test_acc"].get<double>() ==
        std::max(log[0]["test_acc"].get<double>(), log[1]["test_acc"].get<double>()));

  const std::string config = read_text(run_dir / "config.toml");
  CHECK(config.find("arch=\"mlp7_linear\"") != std::string::npos);
  CHECK(config.find("lr-schedule=\"0:0.05,1:0.01\"") != std::string::npos);
  CHECK(config.find("device=\"cpu\"") != std::string::npos);
  CHECK(config.find("out=") == std::string::npos);

  const std::string report = read_text(run_dir / "report.html");
  CHECK(report.starts_with("<!DOCTYPE html>"));
  CHECK(report.find("<svg") != std::string::npos);
  CHECK(report.find("<polyline") != std::string::npos);
  CHECK(report.find("src=") == std::string::npos);  // self-contained
  CHECK(report.ends_with("</html>\n"));

  const auto last = tpp::load_safetensors(run_dir / "last.safetensors");
  CHECK(last.tensors.count("net.0.weight") == 1);
  CHECK(last.tensors.count("optimizer.momentum.net.0.weight") == 1);
  REQUIRE(last.tensors.count("train.epochs_done") == 1);
  CHECK(last.tensors.at("train.epochs_done").to_vector<int64_t>()[0] == 2);
  CHECK(last.tensors.at("train.global_step").to_vector<int64_t>()[0] == 8);
  const auto best = tpp::load_safetensors(run_dir / "best.safetensors");
  CHECK(best.tensors.count("net.0.weight") == 1);
  CHECK(best.tensors.count("train.epochs_done") == 0);
  // No temporary files are left behind by the atomic writes.
  for (const auto& entry : fs::directory_iterator(run_dir))
    CHECK_MESSAGE(!entry.path().filename().string().starts_with("."), entry.path().string());
}

TEST_CASE("tpp train: CIFAR-10 (files in the binary format) trains a 3-channel ResNet with the paper's config") {
  const Scratch scratch("cifar");
  const fs::path dir = scratch.dir / "cifar-10-batches-bin";
  fs::create_directories(dir);
  // 40 records per file: a label byte, then 3x32x32 pixel bytes.
  std::string records;
  for (int r = 0; r < 40; ++r) {
    records += static_cast<char>(r % 10);
    for (int p = 0; p < 3 * 32 * 32; ++p) records += static_cast<char>((r * 31 + p * 7) % 256);
  }
  for (const char* name : {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                           "data_batch_5.bin", "test_batch.bin"})
    std::ofstream(dir / name, std::ios::binary) << records;
  std::ofstream(dir / "batches.meta.txt") << "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";

  const Run run = run_tpp("train --config " + std::string(TPP_SOURCE_DIR) + "/configs/resnet56-cifar10.toml" +
                          " --arch resnet20 --data-dir " + scratch.dir.string() +
                          " --limit 32 --test-limit 16 --batch-size 16 --epochs 1 --workers 0 --out " + scratch / "run");
  REQUIRE_MESSAGE(run.status == 0, run.output);
  const auto summary = nlohmann::json::parse(read_text(scratch.dir / "run/summary.json"));
  CHECK(summary["dataset"] == "cifar10");
  CHECK(summary["input"] == nlohmann::json::array({3, 32, 32}));
  CHECK(summary["train_samples"] == 32);
  const std::string config = read_text(scratch.dir / "run/config.toml");
  CHECK(config.find("lr-schedule=\"0:0.1,100:0.01,150:0.001\"") != std::string::npos);
  CHECK(config.find("weight-decay=0.0005") != std::string::npos);
}

TEST_CASE("tpp train: the run's config.toml read back with --config gives the same config and the same weights") {
  REQUIRE_FASHION_MNIST();
  const Scratch scratch("roundtrip");
  const Run first = run_tpp(kTinyMlp + " --seed 7 --momentum 0.8 --nesterov --out " + scratch / "a");
  REQUIRE_MESSAGE(first.status == 0, first.output);
  const Run second = run_tpp("train --config " + scratch / "a/config.toml" + " --out " + scratch / "b");
  REQUIRE_MESSAGE(second.status == 0, second.output);
  CHECK(read_text(scratch.dir / "a/config.toml") == read_text(scratch.dir / "b/config.toml"));
  CHECK(read_text(scratch.dir / "a/config.toml").find("nesterov=true") != std::string::npos);
  CHECK(differing_tensors(scratch.dir / "a/last.safetensors", scratch.dir / "b/last.safetensors").empty());
}

TEST_CASE("tpp train: flags override the --config file") {
  REQUIRE_FASHION_MNIST();
  const Scratch scratch("override");
  {
    std::ofstream toml(scratch.dir / "x.toml");
    toml << "# a comment\narch = \"mlp7_linear\"\ndataset = \"fashion-mnist\"\nepochs = 3\nbatch-size = 40\n"
            "limit = 120\ntest-limit = 50\nworkers = 0\n";
  }
  const Run run = run_tpp("train --config " + scratch / "x.toml" + " --epochs 1 --out " + scratch / "run");
  REQUIRE_MESSAGE(run.status == 0, run.output);
  CHECK(read_jsonl(scratch.dir / "run/log.jsonl").size() == 1);
  const std::string config = read_text(scratch.dir / "run/config.toml");
  CHECK(config.find("epochs=1\n") != std::string::npos);
  CHECK(config.find("batch-size=40\n") != std::string::npos);
  const auto last = tpp::load_safetensors(scratch.dir / "run/last.safetensors");
  CHECK(last.tensors.at("train.global_step").to_vector<int64_t>()[0] == 3);  // 120 / 40
}

TEST_CASE("tpp train: an existing run directory is refused without --overwrite, and nothing in it changes") {
  REQUIRE_FASHION_MNIST();
  const Scratch scratch("exists");
  const fs::path run_dir = scratch / "run";
  REQUIRE(run_tpp(kTinyMlp + " --out " + run_dir.string()).status == 0);
  std::map<std::string, std::string> before;
  for (const auto& entry : fs::directory_iterator(run_dir)) before[entry.path().filename()] = read_text(entry.path());

  const Run again = run_tpp(kTinyMlp + " --seed 3 --out " + run_dir.string());
  CHECK(again.status == 1);
  CHECK(again.output == "tpp: error: run directory " + run_dir.string() +
                            " already exists; pass --overwrite to replace its run, or --resume " + run_dir.string() +
                            " to continue it\n");
  std::map<std::string, std::string> after;
  for (const auto& entry : fs::directory_iterator(run_dir)) after[entry.path().filename()] = read_text(entry.path());
  CHECK(before == after);

  const Run overwritten = run_tpp(tiny_mlp(1) + " --seed 3 --overwrite --out " + run_dir.string());
  REQUIRE_MESSAGE(overwritten.status == 0, overwritten.output);
  CHECK(read_jsonl(run_dir / "log.jsonl").size() == 1);
  CHECK(read_text(run_dir / "config.toml").find("seed=3") != std::string::npos);
}

TEST_CASE("tpp train: an unknown arch is one line listing the known ones, and no run directory appears") {
  const Scratch scratch("arch");
  const Run run = run_tpp("train --arch resnet99 --dataset fashion-mnist --out " + scratch / "run");
  CHECK(run.status == 2);
  CHECK(run.output.starts_with("tpp: error: train: unknown arch 'resnet99'; known archs: mlp7_linear, resnet20,"));
  CHECK(std::count(run.output.begin(), run.output.end(), '\n') == 1);
  CHECK(!fs::exists(scratch.dir / "run"));
}

TEST_CASE("tpp train: an unknown dataset is one line, and no run directory appears") {
  const Scratch scratch("dataset");
  const Run run = run_tpp("train --arch resnet20 --dataset svhn --out " + scratch / "run");
  CHECK(run.status == 2);
  CHECK(run.output ==
        "tpp: error: data: unknown dataset 'svhn' (known: mnist, fashion-mnist, cifar10, cifar100, imagenet, "
        "imagefolder:<path>)\n");
  CHECK(!fs::exists(scratch.dir / "run"));
}

TEST_CASE("tpp train: an unknown option, on the command line or in a config file, is an error") {
  const Scratch scratch("option");
  const Run flag = run_tpp("train --arch resnet20 --dataset fashion-mnist --learning-rate 0.1 --out " + scratch / "a");
  CHECK(flag.status != 0);
  CHECK(flag.output.find("--learning-rate") != std::string::npos);
  CHECK(!fs::exists(scratch.dir / "a"));

  {
    std::ofstream toml(scratch.dir / "x.toml");
    toml << "arch = \"resnet20\"\ndataset = \"fashion-mnist\"\nlearning-rate = 0.1\n";
  }
  const Run file = run_tpp("train --config " + scratch / "x.toml" + " --out " + scratch / "b");
  CHECK(file.status != 0);
  CHECK(file.output.find("learning-rate") != std::string::npos);
  CHECK(!fs::exists(scratch.dir / "b"));
}

TEST_CASE("fuzz regression: a config key whose value is an empty array is one line naming it") {
  // Found by fuzz_config: "nesterov=[;" reached the flag's callback with no value (a read out of bounds).
  const Scratch scratch("empty_array");
  const std::string regression = std::string(TPP_SOURCE_DIR) + "/tests/fuzz/regressions/config/flag_empty_array";
  const Run cut_short = run_tpp("train --config " + regression + " --out " + scratch / "a");
  CHECK(cut_short.status == 2);
  CHECK(cut_short.output ==
        "tpp: error: train: --config " + regression + ":1: 'nesterov': an array must end with ] on the same line\n");
  {
    std::ofstream toml(scratch.dir / "x.toml");
    toml << "arch = \"mlp7_linear\"\nmomentum = []\n";
  }
  const Run empty = run_tpp("train --config " + scratch / "x.toml" + " --out " + scratch / "b");
  CHECK(empty.status == 2);
  CHECK(empty.output == "tpp: error: train: --config " + scratch / "x.toml" + ":2: 'momentum' has no value\n");
  CHECK(!fs::exists(scratch.dir / "a"));
  CHECK(!fs::exists(scratch.dir / "b"));
}

TEST_CASE("tpp train: --device names a GPU that this build or machine lacks, a bad device string is named") {
  const Scratch scratch("device");
  const Run cuda = run_tpp("train --arch resnet20 --dataset fashion-mnist --device cuda:99 --out " + scratch / "a");
  CHECK(cuda.status == 1);
#if TPP_WITH_CUDA
  CHECK(cuda.output.starts_with("tpp: error: train: --device cuda:99: no such GPU ("));
  CHECK(cuda.output.ends_with(" usable); use --device cpu\n"));
#else
  CHECK(cuda.output.starts_with("tpp: error: train: --device cuda:99: this build has no CUDA backend ("));
  CHECK(cuda.output.ends_with(" GPU(s) visible); use --device cpu\n"));
#endif
  const Run junk = run_tpp("train --arch resnet20 --dataset fashion-mnist --device tpu --out " + scratch / "b");
  CHECK(junk.status == 2);
  CHECK(junk.output == "tpp: error: --device must be cpu, cuda or cuda:N (got 'tpu')\n");
  CHECK(!fs::exists(scratch.dir / "a"));
  CHECK(!fs::exists(scratch.dir / "b"));
}

TEST_CASE("tpp train: a loss that turns NaN stops the run with one line naming the step, and summary.json says so") {
  REQUIRE_FASHION_MNIST();
  const Scratch scratch("diverge");
  const Run run = run_tpp(tiny_mlp(2, "0:1000") + " --out " + scratch / "run");
  CHECK(run.status == 1);
  const std::string error = run.output.substr(std::min(run.output.find("tpp: error: "), run.output.size()));
  CHECK(error.starts_with("tpp: error: train: non-finite loss ("));
  CHECK(error.find(" at phase train, epoch 1, step ") != std::string::npos);
  CHECK(error.ends_with("; stopping (--on-nan stop): lower the learning rate or check the data, or pass --on-nan "
                        "skip to skip such steps; TPP_SYNC_DEBUG=1 names the op that produced it\n"));
  CHECK(std::count(error.begin(), error.end(), '\n') == 1);
  const auto summary = nlohmann::json::parse(read_text(scratch.dir / "run/summary.json"));
  CHECK(summary["status"] == "failed");
  CHECK(summary["error"].get<std::string>().starts_with("train: non-finite loss ("));
}

TEST_CASE("tpp train: with TPP_SYNC_DEBUG=1 the message names the op that produced the first non-finite value") {
  REQUIRE_FASHION_MNIST();
  const Scratch scratch("sync_debug");
  const Run run = run_tpp(tiny_mlp(2, "0:1000") + " --out " + scratch / "run", "TPP_SYNC_DEBUG=1");
  CHECK(run.status == 1);
  CHECK(run.output.find("tpp: error: train: non-finite value at phase train, epoch 1, step ") != std::string::npos);
  // Huge weights: the first layer's output overflows from finite inputs. Whether the BLAS kernel leaves inf
  // or, summing inf and -inf, nan depends on its blocking (OpenBLAS's kernel for the CPU): the point is the op.
  const std::string named = "; TPP_SYNC_DEBUG: op 'linear' produced ";
  const size_t at = run.output.find(named);
  REQUIRE_MESSAGE(at != std::string::npos, run.output);
  const std::string value = run.output.substr(at + named.size(), 3);
  CHECK_MESSAGE((value == "inf" || value == "nan"), run.output);
  CHECK(run.output.find(" (shape [50, 100]) at element ", at) != std::string::npos);
}

TEST_CASE("tpp train: --on-nan goes into config.toml, log.jsonl counts skipped steps, and a bad value is refused") {
  REQUIRE_FASHION_MNIST();
  const Scratch scratch("on_nan");
  const Run run = run_tpp(tiny_mlp(1) + " --on-nan skip --out " + scratch / "run");
  REQUIRE_MESSAGE(run.status == 0, run.output);
  CHECK(read_text(scratch.dir / "run/config.toml").find("on-nan=\"skip\"") != std::string::npos);
  const auto log = read_jsonl(scratch.dir / "run/log.jsonl");
  REQUIRE(log.size() == 1);
  CHECK(log[0]["skipped_steps"] == 0);
  const Run bad = run_tpp(tiny_mlp(1) + " --on-nan ignore --out " + scratch / "bad");
  CHECK(bad.status != 0);
  CHECK(bad.output.find("--on-nan") != std::string::npos);
  CHECK(!fs::exists(scratch.dir / "bad"));
}

TEST_CASE("tpp train: --resume needs a run directory and takes no --out or --overwrite") {
  REQUIRE_FASHION_MNIST();
  const Scratch scratch("resume_bad");
  const Run missing = run_tpp("train --resume " + scratch / "nothing");
  CHECK(missing.status != 0);
  CHECK(missing.output.find(scratch / "nothing" + " has no config.toml (not a run directory)") != std::string::npos);
  fs::create_directories(scratch.dir / "run");
  std::ofstream(scratch.dir / "run/config.toml") << "arch = \"mlp7_linear\"\ndataset = \"fashion-mnist\"\n";
  const Run no_checkpoint = run_tpp("train --resume " + scratch / "run");
  CHECK(no_checkpoint.status == 1);
  CHECK(no_checkpoint.output == "tpp: error: --resume " + scratch / "run" +
                                    ": last.safetensors is missing (not a run directory, or no epoch finished)\n");
  const Run with_out = run_tpp("train --resume " + scratch / "run" + " --out " + scratch / "other");
  CHECK(with_out.status != 0);
  CHECK(with_out.output.find("--out excludes --resume") != std::string::npos);
}

TEST_CASE("tpp train: --resume refuses a checkpoint of another arch, and leaves the run as it was") {
  REQUIRE_FASHION_MNIST();
  const Scratch scratch("resume_arch");
  const std::string dir = scratch / "run";
  REQUIRE(run_tpp(tiny_mlp(1) + " --out " + dir).status == 0);
  const std::string config = read_text(scratch.dir / "run/config.toml");
  const Run changed = run_tpp("train --resume " + dir + " --arch resnet20 --epochs 2");
  CHECK(changed.status == 2);
  CHECK(changed.output == "tpp: error: train: --resume " + dir +
                              ": an option differs from the run's config.toml (--arch: mlp7_linear -> resnet20); resume "
                              "without it, or pass --allow-changes to continue with the change (logged in log.jsonl "
                              "and the report)\n");
  // Allowed, the change still cannot load the checkpoint.
  const Run run = run_tpp("train --resume " + dir + " --arch resnet20 --epochs 2 --allow-changes");
  CHECK(run.status == 1);
  CHECK(run.output == "tpp: error: --resume " + dir +
                          ": the checkpoint holds mlp7_linear on fashion-mnist, but the config asks for resnet20 on "
                          "fashion-mnist\n");
  CHECK(read_text(scratch.dir / "run/config.toml") == config);
  CHECK(read_jsonl(scratch.dir / "run/log.jsonl").size() == 1);
}

TEST_CASE("tpp train: --resume after 2 of 4 epochs ends with the same bits as 4 epochs straight (BN, momentum, LR)") {
  REQUIRE_FASHION_MNIST();
  const Scratch scratch("resume");
  // resnet20 has BN running statistics; the LR drops at epoch 3, after the resume.
  const std::string recipe =
      "train --arch resnet20 --dataset fashion-mnist --batch-size 16 --limit 48 --test-limit 32 --workers 1 "
      "--lr-schedule 0:0.05,3:0.005 --momentum 0.9 --weight-decay 5e-4 --seed 11";
  const Run straight = run_tpp(recipe + " --epochs 4 --out " + scratch / "straight");
  REQUIRE_MESSAGE(straight.status == 0, straight.output);
  const Run half = run_tpp(recipe + " --epochs 2 --out " + scratch / "resumed");
  REQUIRE_MESSAGE(half.status == 0, half.output);
  const Run resumed = run_tpp("train --resume " + scratch / "resumed" + " --epochs 4");
  REQUIRE_MESSAGE(resumed.status == 0, resumed.output);
  CHECK(resumed.output.find("(resuming after epoch 2)") != std::string::npos);

  CHECK(differing_tensors(scratch.dir / "straight/last.safetensors", scratch.dir / "resumed/last.safetensors") ==
        std::vector<std::string>{});
  CHECK(differing_tensors(scratch.dir / "straight/best.safetensors", scratch.dir / "resumed/best.safetensors") ==
        std::vector<std::string>{});
  const auto a = read_jsonl(scratch.dir / "straight/log.jsonl"), b = read_jsonl(scratch.dir / "resumed/log.jsonl");
  REQUIRE(a.size() == 4);
  REQUIRE(b.size() == 4);
  for (size_t i = 0; i < 4; ++i) {
    CHECK(a[i]["epoch"] == b[i]["epoch"]);
    CHECK(a[i]["train_loss"] == b[i]["train_loss"]);
    CHECK(a[i]["test_acc"] == b[i]["test_acc"]);
    CHECK(a[i]["lr"] == b[i]["lr"]);
  }
  const auto summary = nlohmann::json::parse(read_text(scratch.dir / "resumed/summary.json"));
  CHECK(summary["epochs_done"] == 4);
  CHECK(summary["status"] == "finished");
}

}  // TEST_SUITE

TEST_CASE("tpp train --resume: a changed batch size is refused naming it, and --allow-changes logs it and the report shows it") {
  REQUIRE_FASHION_MNIST();
  const Scratch scratch("changes");
  const std::string run = scratch / "run";
  const Run first = run_tpp(tiny_mlp(1) + " --out " + run);
  REQUIRE_MESSAGE(first.status == 0, first.output);
  const std::string config_before = read_text(fs::path(run) / "config.toml");

  const Run refused = run_tpp("train --resume " + run + " --epochs 2 --batch-size 25 --momentum 0.5");
  CHECK(refused.status == 2);
  CHECK(refused.output == "tpp: error: train: --resume " + run +
                              ": options differ from the run's config.toml (--batch-size: 50 -> 25, --momentum: 0.9 -> "
                              "0.5); resume without them, or pass --allow-changes to continue with the changes "
                              "(logged in log.jsonl and the report)\n");
  CHECK(read_text(fs::path(run) / "config.toml") == config_before);
  // The same value written otherwise, and more epochs, are no change.
  const Run same = run_tpp("train --resume " + run + " --epochs 2 --batch-size 50 --momentum 0.90");
  CHECK_MESSAGE(same.status == 0, same.output);

  const Run allowed = run_tpp("train --resume " + run + " --epochs 3 --batch-size 25 --allow-changes");
  REQUIRE_MESSAGE(allowed.status == 0, allowed.output);
  const std::vector<nlohmann::json> log = read_jsonl(fs::path(run) / "log.jsonl");
  REQUIRE(log.size() == 4);  // epochs 1 and 2, the change, epoch 3
  CHECK(log[2].at("resumed_with_changes") == nlohmann::json::array({"batch-size: 50 -> 25"}));
  CHECK(log[2].at("epochs_done") == 2);
  CHECK(log[3].at("epoch") == 3);
  CHECK(read_text(fs::path(run) / "report.html").find("batch-size: 50 -&gt; 25") != std::string::npos);
  CHECK(run_tpp("train --allow-changes " + tiny_mlp(1) + " --out " + scratch / "x").output ==
        "tpp: error: --allow-changes requires --resume\n");
}
