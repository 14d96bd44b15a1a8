// The `tpp` program as a user meets it, through the built binary: usage
// errors (one line, exit 2), typos with the nearest name suggested, config
// files refused whole with their line, data folders, `tpp list`,
// `tpp completion bash`, --help examples and --version.
#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <regex>
#include <nlohmann/json.hpp>
#include <string>

#include "data/image_codec.h"
#include "engine/philox.h"
#include "models/checkpoint.h"
#include "models/zoo.h"
#include "tests/apps/run_tpp.h"
#include "tests/apps/saved_models.h"
#include "tests/data/data_test_util.h"

using namespace tpp;
using tpp::testing::run_tpp;
using tpp::testing::TempDir;
using tpp::testing::TppRun;

namespace {

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

// The run's status and the first line of its output, for one CHECK each.
void check_usage_error(const std::string& args, const std::string& line) {
  const TppRun run = run_tpp(args);
  INFO("tpp ", args, "\n", run.output);
  CHECK(run.status == 2);
  CHECK(run.output == "tpp: error: " + line + "\n");
}

// The four MNIST files (10 train, 2 test images) straight in `dir`.
void write_mnist_files(const std::filesystem::path& dir) {
  testing::write_bytes(dir / "train-images-idx3-ubyte", testing::idx_images(10, 28, 28));
  testing::write_bytes(dir / "train-labels-idx1-ubyte", testing::idx_labels({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  testing::write_bytes(dir / "t10k-images-idx3-ubyte", testing::idx_images(2, 28, 28));
  testing::write_bytes(dir / "t10k-labels-idx1-ubyte", testing::idx_labels({0, 1}));
}

std::filesystem::path save_model(const TempDir& dir, const std::string& arch, int64_t channels,
                                 const std::string& dataset) {
  return testing::save_zoo_model(dir.path(), arch, channels, dataset, 3);
}

}  // namespace

TEST_SUITE("apps") {
  TEST_CASE("usage errors: one line 'tpp: error: <what>', exit status 2") {
    check_usage_error("train --arch resnet20 --dataset mnist --batch-size 0",
                      "--batch-size must be a positive integer (got 0)");
    check_usage_error("train --arch resnet20 --dataset mnist --epochs -1", "--epochs must be a positive integer (got -1)");
    check_usage_error("train --arch resnet20 --dataset mnist --seed -1",
                      "--seed must be a non-negative integer (got -1)");
    check_usage_error("train --arch resnet20 --dataset mnist --momentum -0.9",
                      "--momentum must be a non-negative number (got -0.9)");
    check_usage_error("train --arch resnet20 --dataset mnist --lr-schedule 0:-0.1",
                      "--lr-schedule is not a valid schedule: epoch and lr must be >= 0 in '0:-0.1'");
    check_usage_error("prune --reg-lr -1 --stage-pr x:0.5", "--reg-lr must be a positive number (got -1)");
    check_usage_error("train --arch resnet20 --dataset mnist --batch-size 12x",
                      "--batch-size must be a positive integer (got 12x)");
    check_usage_error("train --arch resnet20 --dataset mnist --on-nan ignore",
                      "--on-nan must be one of stop, skip (got 'ignore')");
    check_usage_error("eval", "--checkpoint is required");
    check_usage_error("train --dataset mnist", "train: --arch and --dataset are required (as flags or in the --config file)");
  }

  TEST_CASE("typos: the nearest command, option, arch, dataset or method is suggested") {
    check_usage_error("evl", "unknown command 'evl'; did you mean 'eval'?");
    check_usage_error("train --epoch 1", "tpp train has no option '--epoch'; did you mean '--epochs'?");
    check_usage_error("train --lr 0.01", "tpp train has no option '--lr'; did you mean '--lr-schedule'?");
    check_usage_error("--verison", "tpp has no option '--verison'; did you mean '--version'?");
    check_usage_error("prune --method tpq --stage-pr x:0.5",
                      "prune: unknown --method 'tpq'; known methods: tpp, l1, l1+orthp, l1+kernorth, l1+orthconv, "
                      "kernorth+l1, orthconv+l1, scratch; did you mean 'tpp'?");
    const TppRun arch = run_tpp("train --arch resnt20 --dataset mnist");
    CHECK(arch.status == 2);
    CHECK(first_line(arch.output).starts_with("tpp: error: train: unknown arch 'resnt20'; known archs: mlp7_linear"));
    CHECK(first_line(arch.output).ends_with("; did you mean 'resnet20'?"));
    check_usage_error("info --arch resnet20 --dataset cifra10",
                      "unknown dataset 'cifra10'; known datasets: mnist, fashion-mnist, cifar10, cifar100, imagenet; "
                      "did you mean 'cifar10'?");
  }

  TEST_CASE("dataset names are case-insensitive") {
    const TppRun run = run_tpp("info --arch resnet20 --dataset Fashion-MNIST");
    REQUIRE_MESSAGE(run.status == 0, run.output);
    CHECK(first_line(run.output) == "resnet20 on fashion-mnist (10 classes)");
  }

  TEST_CASE("a malformed config file is refused whole, naming the file and the line") {
    const TempDir dir;
    const std::string file = (dir / "bad.toml").string();
    const auto write = [&](const std::string& text) { std::ofstream(file) << text; };
    const std::string out = " --out " + (dir / "run").string();

    write("arch = \"mlp7_linear\"\n[[\ndataset = \"mnist\"\n");
    check_usage_error("train --config " + file + out,
                      "train: --config " + file + ":2: sections ([[) are not read; write key = value lines");
    write("arch = \"mlp7_linear\"\ndataset = \"mnist\"\nbatch-size = \"many\"\n");
    check_usage_error("train --config " + file + out,
                      "train: --config " + file + ":3: 'batch-size' must be a positive integer (got many)");
    write("arch = mlp7_linear\n");
    check_usage_error("train --config " + file + out,
                      "train: --config " + file + ":1: 'arch': mlp7_linear is not a number, a quoted string, true or "
                      "false");
    write("arch = \"mlp7_linear\"\nbatchsize = 10\n");
    check_usage_error("train --config " + file + out,
                      "train: --config " + file + ":2: unknown option 'batchsize'; did you mean 'batch-size'?");
    CHECK_FALSE(std::filesystem::exists(dir / "run"));
  }

  TEST_CASE("--data-dir: the folder of the files or a data root, a named folder without data is an error") {
    const TempDir dir;
    write_mnist_files(dir / "root" / "mnist");
    for (const char* folder : {"root", "root/mnist"}) {
      const TppRun run = run_tpp("data --dataset MNIST --data-dir " + (dir / folder).string() + " --json");
      REQUIRE_MESSAGE(run.status == 0, run.output);
      CHECK(nlohmann::json::parse(run.output).at("location") == (dir / "root" / "mnist").string());
    }
    const std::string empty = (dir / "empty").string();
    std::filesystem::create_directories(empty);
    // Fashion-MNIST may well be installed in /usr/share/datasets: a named folder still has to hold it.
    const TppRun run = run_tpp("data --dataset fashion-mnist --data-dir " + empty);
    CHECK(run.status == 1);
    CHECK(run.output == "tpp: error: fashion-mnist: no data found in --data-dir " + empty + " (looked in " + empty +
                            ", " + empty + "/fashion-mnist, " + empty + "/FashionMNIST/raw)\n");
  }

  TEST_CASE("tpp list names every arch, dataset and method, one line each") {
    const TppRun run = run_tpp("list");
    REQUIRE_MESSAGE(run.status == 0, run.output);
    CHECK(first_line(run.output) == "archs:");
    for (const std::string& arch : models::known_archs())
      CHECK_MESSAGE(run.output.find("\n  " + arch + " ") != std::string::npos, arch);
    for (const char* name : {"\n  fashion-mnist ", "\n  imagefolder:<path> ", "\n  l1+orthp ", "\nmethods:\n"})
      CHECK_MESSAGE(run.output.find(name) != std::string::npos, name);
    const TppRun methods = run_tpp("list methods");
    CHECK(first_line(methods.output).starts_with("tpp "));
    check_usage_error("list method", "what must be one of archs, datasets, methods (got 'method'); did you mean 'methods'?");
  }

  TEST_CASE("tpp completion bash: a script bash accepts, completing commands, options and arch names") {
    const TppRun run = run_tpp("completion bash");
    REQUIRE_MESSAGE(run.status == 0, run.output);
    CHECK(first_line(run.output) == "# bash completion for tpp; written by `tpp completion bash`.");
    CHECK(run.output.find("complete -F _tpp tpp") != std::string::npos);
    CHECK(run.output.find("train) words=\"") != std::string::npos);
    CHECK(run.output.find("--lr-schedule") != std::string::npos);
    CHECK(run.output.find("resnet56") != std::string::npos);
    const TempDir dir;
    std::ofstream(dir / "tpp.bash") << run.output;
    CHECK(std::system(("bash -n " + (dir / "tpp.bash").string()).c_str()) == 0);
    check_usage_error("completion zsh", "shell must be one of bash (got 'zsh')");
  }

  TEST_CASE("every command's --help ends with examples") {
    for (const char* command : {"train", "prune", "eval", "compare", "info", "list", "jsv", "data", "forward", "repro",
                                "demo", "completion"}) {
      const TppRun run = run_tpp(std::string(command) + " --help");
      CHECK(run.status == 0);
      const size_t examples = run.output.rfind("Examples:\n  ");
      REQUIRE_MESSAGE(examples != std::string::npos, command);
      CHECK_MESSAGE(run.output.find("tpp " + std::string(command), examples) != std::string::npos, command);
      const auto lines = std::count(run.output.begin() + static_cast<std::ptrdiff_t>(std::min(examples, run.output.size())),
                                    run.output.end(), '\n');
      CHECK_MESSAGE(lines >= 2, command);  // the heading and at least one example
      CHECK_MESSAGE(lines <= 5, command);
    }
  }

  TEST_CASE("tpp --version names the engine and, without a GPU, says so plainly") {
    const TppRun run = run_tpp("--version");
    REQUIRE(run.status == 0);
    CHECK(first_line(run.output).starts_with("tpp "));
#if TPP_WITH_CUDA
    if (run.output.find("GPU 0:") == std::string::npos) CHECK(run.output.find("GPUs: no GPU found\n") != std::string::npos);
#else
    CHECK(run.output.find("CUDA: not built") != std::string::npos);
#endif
  }

  TEST_CASE("prune --dry-run --base takes the arch and dataset from the checkpoint") {
    const TempDir dir;
    const auto base = save_model(dir, "resnet20", 3, "cifar10");
    const TppRun run = run_tpp("prune --dry-run --base " + base.string() + " --stage-pr '*layer*.conv1:0.5'");
    REQUIRE_MESSAGE(run.status == 0, run.output);
    CHECK(first_line(run.output) == "resnet20 on cifar10: stage-pr '*layer*.conv1:0.5', 9 of 20 layers pruned");
    check_usage_error("prune --dry-run --stage-pr '*:0.5'",
                      "prune --dry-run: needs --arch and --dataset, or a --base checkpoint that names them");
  }

  TEST_CASE("prune --dry-run: a layer named outright that cannot lose filters is to be taken out of the plan") {
    check_usage_error("prune --dry-run --arch resnet20 --dataset cifar10 --stage-pr '*layer*.conv1:0.5,fc:0.5'",
                      "stage-pr '*layer*.conv1:0.5,fc:0.5': the filters of 'fc' cannot be removed: its output "
                      "channels are the model's outputs; remove 'fc:0.5' from --stage-pr");
  }

  TEST_CASE("tpp info --checkpoint shows the checkpoint's own (pruned) widths") {
    const TempDir dir;
    const auto base = save_model(dir, "mlp7_linear", 1, "mnist");
    const TppRun run = run_tpp("info --checkpoint " + base.string() + " --json");
    REQUIRE_MESSAGE(run.status == 0, run.output);
    const nlohmann::json info = nlohmann::json::parse(run.output);
    CHECK(info.at("arch") == "mlp7_linear");
    CHECK(info.at("dataset") == "mnist");
    CHECK(info.at("params").get<int64_t>() > 0);
  }

  TEST_CASE("tpp eval on another dataset than the checkpoint's own warns") {
    const TempDir dir;
    write_mnist_files(dir / "fashion");
    const auto ckpt = save_model(dir, "mlp7_linear", 1, "mnist");
    const TppRun run = run_tpp("eval --checkpoint " + ckpt.string() + " --dataset fashion-mnist --data-dir " +
                               (dir / "fashion").string());
    REQUIRE_MESSAGE(run.status == 0, run.output);
    CHECK(first_line(run.output) ==
          "eval: warning: " + ckpt.string() + " was trained on mnist; evaluating it on fashion-mnist");
  }

  TEST_CASE("prune --help says how long TPP regularises with the paper's defaults") {
    const TppRun run = run_tpp("prune --help");
    REQUIRE(run.status == 0);
    CHECK(run.output.find("about 110,000 regularised iterations before removal") != std::string::npos);
  }

  TEST_CASE("train --resume of a finished run without a larger --epochs says so and trains nothing") {
    const TempDir dir;
    write_mnist_files(dir / "mnist");
    const std::filesystem::path run_dir = dir / "run";
    const TppRun first = run_tpp("train --arch mlp7_linear --dataset mnist --epochs 1 --batch-size 5 --workers 0 "
                                 "--device cpu --data-dir " + (dir / "mnist").string() + " --out " + run_dir.string());
    REQUIRE_MESSAGE(first.status == 0, first.output);
    const auto bytes = [&](const char* name) {
      std::ifstream in(run_dir / name, std::ios::binary);
      return std::string(std::istreambuf_iterator<char>(in), {});
    };
    const std::string log = bytes("log.jsonl"), last = bytes("last.safetensors");
    const TppRun again = run_tpp("train --resume " + run_dir.string());
    REQUIRE_MESSAGE(again.status == 0, again.output);
    CHECK_MESSAGE(again.output.find("train: the run has finished its 1 epoch: nothing to train (resume with more "
                                    "epochs to train further)\n") != std::string::npos,
                  again.output);
    CHECK(bytes("log.jsonl") == log);
    CHECK(bytes("last.safetensors") == last);
  }

  TEST_CASE("tpp forward IMAGE...: PNG and JPEG files, each with its five most likely classes") {
    const TempDir dir;
    const auto checkpoint = save_model(dir, "mlp7_linear", 1, "fashion-mnist");
    // A grey 28x28 PNG and a colour 40x30 JPEG: made grey and 32x32 for the model.
    std::vector<uint8_t> grey(28 * 28), colour(3 * 40 * 30);
    for (size_t i = 0; i < grey.size(); ++i) grey[i] = static_cast<uint8_t>(i * 7 % 256);
    for (size_t i = 0; i < colour.size(); ++i) colour[i] = static_cast<uint8_t>(i * 13 % 256);
    testing::write_bytes(dir / "shoe.png", data::encode_png(from_vector<uint8_t>(grey, {1, 28, 28})));
    testing::write_bytes(dir / "bag.jpg", data::encode_jpeg(from_vector<uint8_t>(colour, {3, 40, 30})));
    const TppRun run =
        run_tpp("forward --checkpoint " + checkpoint.string() + " " + (dir / "shoe.png").string() + " " +
                (dir / "bag.jpg").string());
    INFO(run.output);
    REQUIRE(run.status == 0);
    const std::string first = first_line(run.output);
    CHECK(first.starts_with((dir / "shoe.png").string() + ":  "));
    CHECK(std::count(first.begin(), first.end(), '%') == 5);
    const std::string second = first_line(run.output.substr(first.size() + 1));
    CHECK(second.starts_with((dir / "bag.jpg").string() + ":  "));
    CHECK(std::count(second.begin(), second.end(), '%') == 5);
    // Named as the data set names its classes, with the class index and the probability.
    const std::regex five_classes(R"(^.*:  [A-Za-z/ -]+ \(\d\) \d+\.\d%(, [A-Za-z/ -]+ \(\d\) \d+\.\d%){4}$)");
    CHECK(std::regex_match(first, five_classes));
    CHECK(std::regex_match(second, five_classes));
    check_usage_error("forward --checkpoint " + checkpoint.string(),
                      "forward: give image files, or --input and --output (a tensor in, a tensor out), not both");
  }
}
