// Bad input: each case gives one tpp::Error naming the file (and the record
// or offset); through the `tpp` program, a message and exit status 1.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "data/cifar.h"
#include "data/image_codec.h"
#include "data/image_folder.h"
#include "data/mnist.h"
#include "tests/data/data_test_util.h"

using namespace tpp;
using namespace tpp::data;
using tpp::testing::TempDir;
using tpp::testing::write_bytes;

namespace {

std::vector<uint8_t> truncated(std::vector<uint8_t> bytes, size_t keep) {
  bytes.resize(keep);
  return bytes;
}

Tensor small_image(int64_t size = 16) {
  Tensor image = empty({3, size, size}, {.dtype = DType::u8});
  uint8_t* p = image.data<uint8_t>();
  for (int64_t i = 0; i < image.numel(); ++i) p[i] = static_cast<uint8_t>(i * 7);
  return image;
}

struct RunResult {
  int exit_status = -1;
  std::string stderr_text;
};

// Runs the built `tpp` program; nullopt when it has not been built.
std::optional<RunResult> run_tpp(const std::string& args, const fs::path& scratch) {
  const fs::path program = fs::path(TPP_BINARY_DIR) / "tpp";
  std::error_code ec;
  if (!fs::is_regular_file(program, ec)) return std::nullopt;
  const fs::path err = scratch / "stderr.txt";
  const std::string command = fmt::format("'{}' {} >/dev/null 2>'{}'", program.string(), args, err.string());
  const int status = std::system(command.c_str());
  std::ifstream in(err);
  std::stringstream text;
  text << in.rdbuf();
  return RunResult{WIFEXITED(status) ? WEXITSTATUS(status) : -1, text.str()};
}

}  // namespace

TEST_SUITE("data.bad_input") {
  TEST_CASE("a missing file names both names looked for") {
    TempDir tmp;
    const std::string base = (tmp / "train-images-idx3-ubyte").string();
    CHECK_THROWS_WITH(load_mnist(tmp.path(), "train"),
                      fmt::format("mnist: missing file {} (nor {}.gz)", base, base).c_str());
    const fs::path batch = tmp / "data_batch_1.bin";
    CHECK_THROWS_WITH(load_cifar10(tmp.path(), "train"),
                      fmt::format("cifar10: missing file {} (nor {}.gz)", batch.string(), batch.string()).c_str());
    CHECK_THROWS_WITH(load_cifar_files({tmp / "x.bin"}, CifarLabels::cifar10, "train"),
                      fmt::format("cifar10: missing file {}", (tmp / "x.bin").string()).c_str());
  }

  TEST_CASE("a truncated IDX file names the record cut off and its offset") {
    TempDir tmp;
    const fs::path images = tmp / "train-images-idx3-ubyte";
    write_bytes(images, truncated(tpp::testing::idx_images(3, 2, 2), 16 + 4 + 2));
    CHECK_THROWS_WITH(read_idx_images(images, "mnist"),
                      fmt::format("mnist: {}: truncated: the header announces 3 images (28 bytes) but the file "
                                  "holds 22 bytes (record 1 is cut off at offset 22)",
                                  images.string())
                          .c_str());
    write_bytes(images, truncated(tpp::testing::idx_images(3, 2, 2), 10));
    CHECK_THROWS_WITH(
        read_idx_images(images, "mnist"),
        fmt::format("mnist: {}: truncated: 10 bytes, shorter than the 16-byte IDX image header", images.string())
            .c_str());
  }

  TEST_CASE("a truncated gzip file is reported, not read short") {
    TempDir tmp;
    const fs::path whole = tmp / "whole.gz", cut = tmp / "train-labels-idx1-ubyte.gz";
    std::vector<uint8_t> labels(5000);
    for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<uint8_t>((i * 7919) % 10);
    tpp::testing::write_gzip(whole, tpp::testing::idx_labels(labels));
    std::ifstream in(whole, std::ios::binary);
    std::vector<uint8_t> packed((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    write_bytes(cut, truncated(packed, packed.size() / 2));
    CHECK_THROWS_WITH(read_idx_labels(cut, "mnist", 10),
                      fmt::format("mnist: {}: truncated gzip data: the stream ends after {} compressed bytes",
                                  cut.string(), packed.size() / 2)
                          .c_str());
  }

  TEST_CASE("trailing bytes after the last IDX record") {
    TempDir tmp;
    const fs::path labels = tmp / "labels";
    std::vector<uint8_t> bytes = tpp::testing::idx_labels({1, 2});
    bytes.push_back(0);
    write_bytes(labels, bytes);
    CHECK_THROWS_WITH(
        read_idx_labels(labels, "mnist", 10),
        fmt::format("mnist: {}: 1 unexpected bytes after the last of 2 labels (offset 10)", labels.string()).c_str());
  }

  TEST_CASE("a wrong magic number names the file and offset 0") {
    TempDir tmp;
    const fs::path images = tmp / "images";
    write_bytes(images, tpp::testing::idx_labels({1, 2, 3, 4, 5, 6, 7, 8}));  // a label file in its place
    CHECK_THROWS_WITH(read_idx_images(images, "mnist"),
                      fmt::format("mnist: {}: wrong magic number 0x00000801 at offset 0 (expected 0x00000803, an "
                                  "IDX image file)",
                                  images.string())
                          .c_str());
  }

  TEST_CASE("a label out of range names the record and offset") {
    TempDir tmp;
    const fs::path labels = tmp / "labels";
    write_bytes(labels, tpp::testing::idx_labels({1, 2, 10}));
    CHECK_THROWS_WITH(
        read_idx_labels(labels, "mnist", 10),
        fmt::format("mnist: {}: record 2 (offset 10) has label 10 (expected 0..9)", labels.string()).c_str());
    const fs::path batch = tmp / "batch.bin";
    write_bytes(batch, tpp::testing::cifar_records({{3}, {12}}));
    CHECK_THROWS_WITH(
        load_cifar_files({batch}, CifarLabels::cifar10, "train"),
        fmt::format("cifar10: {}: record 1 (offset 3073) has label 12 (expected 0..9)", batch.string()).c_str());
  }

  TEST_CASE("labels and images of different lengths") {
    TempDir tmp;
    write_bytes(tmp / "t10k-images-idx3-ubyte", tpp::testing::idx_images(3, 2, 2));
    write_bytes(tmp / "t10k-labels-idx1-ubyte", tpp::testing::idx_labels({1, 2}));
    CHECK_THROWS_WITH(load_mnist(tmp.path(), "test"),
                      fmt::format("mnist: {} holds 2 labels but {} holds 3 images",
                                  (tmp / "t10k-labels-idx1-ubyte").string(), (tmp / "t10k-images-idx3-ubyte").string())
                          .c_str());
  }

  TEST_CASE("a CIFAR file that is not a whole number of records") {
    TempDir tmp;
    const fs::path batch = tmp / "data_batch_1.bin";
    write_bytes(batch, truncated(tpp::testing::cifar_records({{1}, {2}, {3}}), 3073 * 2 + 100));
    CHECK_THROWS_WITH(load_cifar_files({batch}, CifarLabels::cifar10, "train"),
                      fmt::format("cifar10: {}: size 6246 bytes is not a whole number of 3073-byte records (2 "
                                  "records and 100 bytes over)",
                                  batch.string())
                          .c_str());
    const fs::path train = tmp / "train.bin";
    write_bytes(train, tpp::testing::cifar_records({{1}}));  // CIFAR-10 records read as CIFAR-100
    CHECK_THROWS_WITH(load_cifar100(tmp.path(), "train"),
                      fmt::format("cifar100: {}: size 3073 bytes is not a whole number of 3074-byte records (0 "
                                  "records and 3073 bytes over)",
                                  train.string())
                          .c_str());
    write_bytes(batch, {});
    CHECK_THROWS_WITH(load_cifar_files({batch}, CifarLabels::cifar10, "train"),
                      fmt::format("cifar10: {}: the file is empty", batch.string()).c_str());
  }

  TEST_CASE("a corrupt or truncated JPEG names the file") {
    TempDir tmp;
    write_bytes(tmp / "train" / "cat" / "good.png", encode_png(small_image()));
    write_bytes(tmp / "train" / "cat" / "garbage.jpg", {'n', 'o', 't', ' ', 'a', ' ', 'j', 'p', 'e', 'g'});
    // Cut inside the entropy-coded data, after the headers.
    const std::vector<uint8_t> jpeg = encode_jpeg(small_image(64));
    write_bytes(tmp / "train" / "dog" / "cut.jpg", truncated(jpeg, jpeg.size() - 200));
    const ImageFolder folder(tmp / "train");
    REQUIRE(folder.size() == 3);
    CHECK(folder.get(1).image.sizes() == Shape{3, 16, 16});
    CHECK_THROWS_WITH(
        folder.get(0),
        fmt::format("imagefolder: {}: corrupt JPEG: Not a JPEG file: starts with 0x6e 0x6f", folder.file(0).string())
            .c_str());
    CHECK_THROWS_WITH(
        folder.get(2),
        fmt::format("imagefolder: {}: corrupt JPEG: Premature end of JPEG file", folder.file(2).string()).c_str());
  }

  TEST_CASE("a corrupt PNG names the file") {
    TempDir tmp;
    const std::vector<uint8_t> png = encode_png(small_image());
    write_bytes(tmp / "train" / "a" / "cut.png", truncated(png, png.size() - 20));
    const ImageFolder folder(tmp / "train");
    // The last chunk (IEND) and 8 bytes of the IDAT chunk before it are gone.
    CHECK_THROWS_WITH(folder.get(0), fmt::format("imagefolder: {}: corrupt PNG: chunk IDAT at offset 33 announces {} "
                                                 "bytes but only {} follow",
                                                 folder.file(0).string(), png.size() - 57, png.size() - 61)
                                         .c_str());
  }

  TEST_CASE("an empty class folder, or no class folders at all") {
    TempDir tmp;
    write_bytes(tmp / "train" / "cat" / "0.png", encode_png(small_image()));
    write_bytes(tmp / "train" / "dog" / "readme.txt", {'x'});
    CHECK_THROWS_WITH(
        ImageFolder(tmp / "train"),
        fmt::format("imagefolder: class folder {} holds no .jpg, .jpeg or .png files", (tmp / "train" / "dog").string())
            .c_str());
    fs::create_directories(tmp / "empty");
    CHECK_THROWS_WITH(ImageFolder(tmp / "empty"),
                      fmt::format("imagefolder: {} holds no class folders", (tmp / "empty").string()).c_str());
    CHECK_THROWS_WITH(ImageFolder(tmp / "nowhere"),
                      fmt::format("imagefolder: missing folder {}", (tmp / "nowhere").string()).c_str());
  }

  TEST_CASE("tpp data: bad input gives one error line and exit status 1") {
    TempDir tmp;
    const fs::path mnist = tmp / "root" / "mnist";
    write_bytes(mnist / "train-images-idx3-ubyte", tpp::testing::idx_images(2, 2, 2));
    write_bytes(mnist / "train-labels-idx1-ubyte", tpp::testing::idx_images(2, 2, 2));  // wrong magic
    const std::string args = fmt::format("data --dataset mnist --data-dir '{}'", (tmp / "root").string());
    const auto wrong_magic = run_tpp(args, tmp.path());
    if (!wrong_magic) {
      MESSAGE("skipped: the tpp program is not built");
      return;
    }
    CHECK(wrong_magic->exit_status == 1);
    CHECK(wrong_magic->stderr_text ==
          fmt::format("tpp: error: mnist: {}: wrong magic number 0x00000803 at offset 0 (expected 0x00000801, an IDX "
                      "label file)\n",
                      (mnist / "train-labels-idx1-ubyte").string()));

    write_bytes(mnist / "train-labels-idx1-ubyte", tpp::testing::idx_labels({1, 2}));
    const auto missing_test = run_tpp(args, tmp.path());
    CHECK(missing_test->exit_status == 1);
    const std::string base = (mnist / "t10k-images-idx3-ubyte").string();
    CHECK(missing_test->stderr_text == fmt::format("tpp: error: mnist: missing file {} (nor {}.gz)\n", base, base));

    write_bytes(mnist / "t10k-images-idx3-ubyte", truncated(tpp::testing::idx_images(2, 2, 2), 18));
    write_bytes(mnist / "t10k-labels-idx1-ubyte", tpp::testing::idx_labels({1, 2}));
    const auto cut = run_tpp(args, tmp.path());
    CHECK(cut->exit_status == 1);
    CHECK(cut->stderr_text.find("truncated: the header announces 2 images") != std::string::npos);

    write_bytes(mnist / "t10k-images-idx3-ubyte", tpp::testing::idx_images(2, 2, 2));
    const auto good = run_tpp(args + " --json", tmp.path());
    CHECK(good->exit_status == 0);
    CHECK(good->stderr_text.empty());
  }
}
