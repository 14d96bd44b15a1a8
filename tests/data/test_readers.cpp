// Dataset readers on the real MNIST, Fashion-MNIST and CIFAR-10 files (when
// present) and on files the tests write (CIFAR-100, gzip and raw IDX).
#include <doctest/doctest.h>

#include <cstdlib>

#include "data/catalog.h"
#include "data/cifar.h"
#include "data/mnist.h"
#include "tests/data/data_test_util.h"

using namespace tpp;
using namespace tpp::data;
using tpp::testing::TempDir;

namespace {

// The MNIST training set, decoded once for all tests that need it.
std::shared_ptr<TensorDataset> mnist_train() {
  static std::shared_ptr<TensorDataset> cached = [] {
    const auto shared = tpp::testing::shared_data_dir();
    return shared ? load_mnist(*shared / "mnist", "train") : nullptr;
  }();
  return cached;
}

std::vector<int64_t> first_labels(const Dataset& dataset, int64_t n) {
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < n; ++i) labels.push_back(dataset.label(i));
  return labels;
}

bool fashion_mnist_installed() {
  std::error_code ec;
  return fs::is_directory(tpp::testing::kFashionMnistDir, ec);
}

}  // namespace

TEST_SUITE("data.readers") {
  // One test case, so that ctest (a process per case) decodes the 60000 images once.
  TEST_CASE("MNIST train: 60000 images [1, 28, 28], known labels, pixels, mean 0.1307 and std 0.3081") {
    const auto train = mnist_train();
    if (!train) {
      MESSAGE("skipped: no shared data (../shared/data or $TPP_DATA)");
      return;
    }
    SUBCASE("sizes, first labels and a row of the first image") {
      CHECK(train->size() == 60000);
      CHECK(train->image_shape() == Shape{1, 28, 28});
      CHECK(train->info().num_classes() == 10);
      CHECK(first_labels(*train, 10) == std::vector<int64_t>{5, 0, 4, 1, 9, 2, 1, 3, 1, 4});
      // Row 14 of the first image (a "5"), read with Python's gzip module.
      const Tensor row = train->get(0).image.select(0, 0).select(0, 14).contiguous();
      const std::vector<uint8_t> expected = {0,   0,   0,   0,   0,  0, 0, 0, 0, 0, 0, 0, 0, 81,
                                             240, 253, 253, 119, 25, 0, 0, 0, 0, 0, 0, 0, 0, 0};
      CHECK(row.to_vector<uint8_t>() == expected);
      CHECK(train->get(0).image.dtype() == DType::u8);
    }
    SUBCASE("the well-known mean and std, and those of the first 1000 images") {
      const ChannelStats all = channel_stats(*train);
      REQUIRE(all.mean.size() == 1);
      CHECK(all.samples == 60000);
      CHECK(all.mean[0] == doctest::Approx(0.1307).epsilon(1e-3));
      CHECK(all.std[0] == doctest::Approx(0.3081).epsilon(1e-3));
      // As numpy computes them: (images[:1000] / 255).mean(), .std().
      const ChannelStats subset = channel_stats(*train, 1000);
      CHECK(subset.mean[0] == doctest::Approx(0.12823896058423373).epsilon(1e-12));
      CHECK(subset.std[0] == doctest::Approx(0.3051388396377267).epsilon(1e-12));
    }
    SUBCASE("label histogram") {
      CHECK(label_histogram(*train) ==
            std::vector<int64_t>{5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949});
    }
  }

  TEST_CASE("MNIST test: 10000 images with the known first labels") {
    const auto shared = tpp::testing::shared_data_dir();
    if (!shared) {
      MESSAGE("skipped: no shared data (../shared/data or $TPP_DATA)");
      return;
    }
    const auto test = load_mnist(*shared / "mnist", "test");
    CHECK(test->size() == 10000);
    CHECK(test->info().split == "test");
    CHECK(first_labels(*test, 10) == std::vector<int64_t>{7, 2, 1, 0, 4, 1, 4, 9, 5, 9});
  }

  TEST_CASE("Fashion-MNIST from the Debian package: sizes, first labels, class names") {
    if (!fashion_mnist_installed()) {
      MESSAGE("skipped: /usr/share/datasets/fashion-mnist is not installed");
      return;
    }
    const DatasetLocation where = locate_dataset("fashion-mnist", DataRoot("/nonexistent-root", false));
    CHECK(where.dir == fs::path(tpp::testing::kFashionMnistDir));
    const auto test = std::dynamic_pointer_cast<TensorDataset>(open_dataset(where, "test"));
    REQUIRE(test != nullptr);
    CHECK(test->size() == 10000);
    CHECK(test->image_shape() == Shape{1, 28, 28});
    CHECK(first_labels(*test, 10) == std::vector<int64_t>{9, 2, 1, 1, 6, 1, 4, 6, 5, 7});
    CHECK(test->info().class_names[9] == "Ankle boot");
    // The training labels alone (the images are not needed for this).
    const Tensor train_labels =
        read_idx_labels(fs::path(tpp::testing::kFashionMnistDir) / "train-labels-idx1-ubyte.gz", "fashion-mnist", 10);
    CHECK(train_labels.size(0) == 60000);
    CHECK(train_labels.slice(0, 0, 10).to_vector<int64_t>() == std::vector<int64_t>{9, 0, 0, 3, 0, 2, 7, 2, 5, 5});
  }

  TEST_CASE("CIFAR-10 sample (the first 258 real records of data_batch_1.bin)") {
    const auto shared = tpp::testing::shared_data_dir();
    if (!shared) {
      MESSAGE("skipped: no shared data (../shared/data or $TPP_DATA)");
      return;
    }
    const fs::path file = *shared / "cifar10-sample" / "data_batch_1.first258.bin";
    const auto sample = load_cifar_files({file}, CifarLabels::cifar10, "train");
    CHECK(sample->size() == 258);
    CHECK(sample->image_shape() == Shape{3, 32, 32});
    CHECK(first_labels(*sample, 10) == std::vector<int64_t>{6, 9, 9, 4, 1, 1, 2, 7, 8, 3});
    CHECK(sample->label(257) == 1);
    CHECK(sample->info().class_names[6] == "frog");
    // Pixels (c, 0, 0..3) of the first image: red, green and blue planes.
    const Tensor image = sample->get(0).image;
    CHECK(image.select(0, 0).select(0, 0).slice(0, 0, 4).contiguous().to_vector<uint8_t>() ==
          std::vector<uint8_t>{59, 43, 50, 68});
    CHECK(image.select(0, 1).select(0, 0).slice(0, 0, 4).contiguous().to_vector<uint8_t>() ==
          std::vector<uint8_t>{62, 46, 48, 54});
    CHECK(image.select(0, 2).select(0, 0).slice(0, 0, 4).contiguous().to_vector<uint8_t>() ==
          std::vector<uint8_t>{63, 45, 43, 42});
    CHECK(label_histogram(*sample) == std::vector<int64_t>{18, 38, 23, 27, 21, 22, 33, 25, 22, 29});
    const ChannelStats stats = channel_stats(*sample);
    CHECK(stats.mean[0] == doctest::Approx(0.48642753).epsilon(1e-7));
    CHECK(stats.std[2] == doctest::Approx(0.25273419).epsilon(1e-7));
    CHECK(sample->describe(5) == fmt::format("{} record 5", file.string()));
  }

  TEST_CASE("CIFAR-10 folder: five training batches (one gzip) and a test batch") {
    TempDir tmp;
    const fs::path dir = tmp / "cifar-10-batches-bin";
    for (int b = 1; b <= 5; ++b) {
      const auto bytes = tpp::testing::cifar_records({{static_cast<uint8_t>(b)}, {static_cast<uint8_t>(b + 1)}});
      if (b == 3) {
        tpp::testing::write_gzip(dir / "data_batch_3.bin.gz", bytes);
      } else {
        tpp::testing::write_bytes(dir / fmt::format("data_batch_{}.bin", b), bytes);
      }
    }
    tpp::testing::write_bytes(dir / "test_batch.bin", tpp::testing::cifar_records({{0}, {9}, {4}}));
    const auto train = load_cifar10(dir, "train");
    CHECK(train->size() == 10);
    CHECK(first_labels(*train, 10) == std::vector<int64_t>{1, 2, 2, 3, 3, 4, 4, 5, 5, 6});
    CHECK(train->describe(5) == fmt::format("{} record 1", (dir / "data_batch_3.bin.gz").string()));
    // Record 1 of a file: pixel k is (1 + k) % 256, channel 2 starts at k = 2048.
    CHECK(train->get(5).image.select(0, 2).select(0, 0).select(0, 0).item() == (1 + 2048) % 256);
    const auto test = load_cifar10(dir, "test");
    CHECK(first_labels(*test, 3) == std::vector<int64_t>{0, 9, 4});
    const DatasetLocation where = locate_dataset("cifar10", tmp.path());
    CHECK(where.dir == dir);
  }

  TEST_CASE("CIFAR-100: fine labels by default, coarse on request") {
    TempDir tmp;
    const fs::path dir = tmp / "cifar-100-binary";
    // (coarse, fine) pairs of real CIFAR-100 classes: (11, 19) cattle, (15, 29) dinosaur, (4, 0) apple.
    tpp::testing::write_bytes(dir / "train.bin", tpp::testing::cifar_records({{11, 19}, {15, 29}, {4, 0}}));
    tpp::testing::write_bytes(dir / "test.bin", tpp::testing::cifar_records({{19, 99}}));
    const auto fine = load_cifar100(dir, "train");
    CHECK(fine->size() == 3);
    CHECK(first_labels(*fine, 3) == std::vector<int64_t>{19, 29, 0});
    CHECK(fine->info().num_classes() == 100);
    CHECK(fine->info().class_names[19] == "cattle");
    const auto coarse = load_cifar100(dir, "train", /*coarse=*/true);
    CHECK(first_labels(*coarse, 3) == std::vector<int64_t>{11, 15, 4});
    CHECK(coarse->info().num_classes() == 20);
    CHECK(coarse->info().class_names[11] == "large_omnivores_and_herbivores");
    // The pixels follow the two label bytes.
    CHECK(fine->get(1).image.select(0, 0).select(0, 0).select(0, 0).item() == 1);
    const auto test = open_dataset(locate_dataset("cifar100", tmp.path()), "test");
    CHECK(test->label(0) == 99);
  }

  TEST_CASE("IDX files load raw or gzip-compressed, in either layout") {
    TempDir tmp;
    tpp::testing::write_bytes(tmp / "MNIST/raw/train-images-idx3-ubyte", tpp::testing::idx_images(4, 3, 2));
    tpp::testing::write_gzip(tmp / "MNIST/raw/train-labels-idx1-ubyte.gz", tpp::testing::idx_labels({3, 1, 4, 1}));
    const DatasetLocation where = locate_dataset("mnist", tmp.path());
    CHECK(where.dir == tmp / "MNIST/raw");
    const auto train = open_dataset(where, "train");
    CHECK(train->size() == 4);
    CHECK(train->image_shape() == Shape{1, 3, 2});
    CHECK(first_labels(*train, 4) == std::vector<int64_t>{3, 1, 4, 1});
    CHECK(train->get(2).image.contiguous().to_vector<uint8_t>() == std::vector<uint8_t>{62, 63, 64, 65, 66, 67});
  }

  TEST_CASE("the data root: --data-dir, else $TPP_DATA") {
    const char* saved = std::getenv("TPP_DATA");
    const std::string saved_value = saved ? saved : "";
    setenv("TPP_DATA", "/from/env", 1);
    CHECK(resolve_data_root("/from/flag").dir == fs::path("/from/flag"));
    CHECK(resolve_data_root("/from/flag").given);
    CHECK(resolve_data_root("").dir == fs::path("/from/env"));
    CHECK_FALSE(resolve_data_root("").given);
    if (saved) {
      setenv("TPP_DATA", saved_value.c_str(), 1);
    } else {
      unsetenv("TPP_DATA");
    }
  }

  TEST_CASE("an unknown dataset or a dataset not found names the places looked") {
    CHECK_THROWS_WITH(locate_dataset("svhn", "/r"),
                      "data: unknown dataset 'svhn' (known: mnist, fashion-mnist, cifar10, cifar100, imagenet, "
                      "imagefolder:<path>)");
    CHECK_THROWS_WITH(locate_dataset("cifar10", "/r"),
                      "cifar10: no data found in `data_dir` /r (looked in /r, /r/cifar-10-batches-bin, /r/cifar10)");
    CHECK_THROWS_WITH(locate_dataset("cifar10", DataRoot("/r", false)),
                      "cifar10: no data found (looked in /r, /r/cifar-10-batches-bin, /r/cifar10, "
                      "/usr/share/datasets/cifar-10-batches-bin, /usr/share/datasets/cifar10); pass `data_dir`, set "
                      "TPP_DATA, or fetch it with scripts/get_data.sh");
    CHECK_THROWS_WITH(locate_dataset("cifr10", "/r"),
                      "data: unknown dataset 'cifr10' (known: mnist, fashion-mnist, cifar10, cifar100, imagenet, "
                      "imagefolder:<path>); did you mean 'cifar10'?");
  }
}
