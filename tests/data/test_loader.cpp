// DataLoader: batching, seeded shuffling, determinism across worker counts,
// the bounded prefetch window, and errors from workers.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include "data/loader.h"

using namespace tpp;
using namespace tpp::data;

namespace {

// n images [3, 6, 6] whose pixels encode the sample index; label = index % 10.
std::shared_ptr<TensorDataset> numbered_dataset(int64_t n) {
  Tensor images = empty({n, 3, 6, 6}, {.dtype = DType::u8});
  uint8_t* p = images.data<uint8_t>();
  for (int64_t i = 0; i < images.numel(); ++i) p[i] = static_cast<uint8_t>((i / 108) * 7 + i % 108);
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) labels[static_cast<size_t>(i)] = i % 10;
  DatasetInfo info{"numbered", "train", "memory", {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}};
  return std::make_shared<TensorDataset>(info, images, from_vector<int64_t>(labels, {n}), std::vector<std::string>{},
                                         std::vector<int64_t>{});
}

TransformPtr augmenting() {
  return std::make_shared<Compose>(std::vector<TransformPtr>{
      std::make_shared<RandomCrop>(6, 2), std::make_shared<RandomHorizontalFlip>(), std::make_shared<ToFloat>()});
}

struct EpochRecord {
  std::vector<std::vector<float>> images;
  std::vector<std::vector<int64_t>> labels;
};

EpochRecord run_epoch(DataLoader& loader, int64_t epoch) {
  EpochRecord record;
  loader.start_epoch(epoch);
  while (auto batch = loader.next()) {
    CHECK(batch->index == static_cast<int64_t>(record.images.size()));
    record.images.push_back(batch->images.to_vector<float>());
    record.labels.push_back(batch->labels.to_vector<int64_t>());
  }
  return record;
}

// A dataset that fails on one index and counts its reads.
class FlakyDataset final : public Dataset {
 public:
  FlakyDataset(std::shared_ptr<TensorDataset> inner, int64_t bad_index)
      : Dataset(inner->info()), inner_(std::move(inner)), bad_(bad_index) {}
  int64_t size() const override { return inner_->size(); }
  Sample get(int64_t index) const override {
    ++reads;
    if (index == bad_) fail("{}: corrupt JPEG: Not a JPEG file: starts with 0x00 0x00", describe(index));
    return inner_->get(index);
  }
  int64_t label(int64_t index) const override { return inner_->label(index); }
  std::optional<Shape> image_shape() const override { return inner_->image_shape(); }
  std::string describe(int64_t index) const override { return fmt::format("/data/img{}.jpg", index); }
  mutable std::atomic<int64_t> reads{0};

 private:
  std::shared_ptr<TensorDataset> inner_;
  int64_t bad_;
};

}  // namespace

TEST_SUITE("data.loader") {
  TEST_CASE("batches stack f32 images [B, C, H, W] and i64 labels [B] in order without shuffling") {
    DataLoader loader(numbered_dataset(10), std::make_shared<ToFloat>(), {.batch_size = 4});
    CHECK(loader.num_batches() == 3);
    loader.start_epoch(0);
    const auto first = loader.next();
    REQUIRE(first.has_value());
    CHECK(first->images.sizes() == Shape{4, 3, 6, 6});
    CHECK(first->images.dtype() == DType::f32);
    CHECK(first->labels.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3});
    // Sample 1's first pixel is 7 / 255.
    CHECK(first->images.to_vector<float>()[108] == doctest::Approx(7.0 / 255.0));
    CHECK(loader.next()->labels.size(0) == 4);
    CHECK(loader.next()->labels.to_vector<int64_t>() == std::vector<int64_t>{8, 9});
    CHECK(!loader.next().has_value());
    CHECK(!loader.next().has_value());
  }

  TEST_CASE("drop_last drops the short final batch") {
    DataLoader loader(numbered_dataset(10), std::make_shared<ToFloat>(), {.batch_size = 4, .drop_last = true});
    CHECK(loader.num_batches() == 2);
    CHECK(run_epoch(loader, 0).labels.size() == 2);
  }

  TEST_CASE("epoch_order is a seeded permutation that changes with the epoch") {
    const std::vector<int64_t> a = epoch_order(100, true, 1, 0);
    std::vector<int64_t> sorted = a;
    std::sort(sorted.begin(), sorted.end());
    CHECK(sorted == epoch_order(100, false, 1, 0));
    CHECK(a != sorted);
    CHECK(a == epoch_order(100, true, 1, 0));
    CHECK(a != epoch_order(100, true, 1, 1));
    CHECK(a != epoch_order(100, true, 2, 0));
  }

  TEST_CASE("the same seed gives the same batches with 0, 1 and 3 workers") {
    const auto dataset = numbered_dataset(50);
    const DataLoaderOptions base{.batch_size = 7, .shuffle = true, .seed = 123};
    DataLoaderOptions one = base, three = base;
    one.num_workers = 1;
    three.num_workers = 3;
    DataLoader inline_loader(dataset, augmenting(), base), single(dataset, augmenting(), one),
        pool(dataset, augmenting(), three);
    for (int64_t epoch = 0; epoch < 2; ++epoch) {
      const EpochRecord reference = run_epoch(inline_loader, epoch);
      CHECK(reference.labels.size() == 8);
      const EpochRecord with_one = run_epoch(single, epoch);
      const EpochRecord with_three = run_epoch(pool, epoch);
      CHECK(with_one.labels == reference.labels);
      CHECK(with_three.labels == reference.labels);
      CHECK(with_one.images == reference.images);
      CHECK(with_three.images == reference.images);
    }
    CHECK(run_epoch(inline_loader, 0).images != run_epoch(inline_loader, 1).images);
  }

  TEST_CASE("a sample gets the same augmentation in a given epoch whatever its batch") {
    const auto dataset = numbered_dataset(20);
    DataLoader shuffled(dataset, augmenting(), {.batch_size = 5, .shuffle = true, .seed = 9});
    DataLoader ordered(dataset, augmenting(), {.batch_size = 5, .shuffle = false, .seed = 9});
    const EpochRecord a = run_epoch(shuffled, 3), b = run_epoch(ordered, 3);
    // Sample 0, found at its place in the shuffled order, matches sample 0 of the ordered epoch.
    const std::vector<int64_t> order = epoch_order(20, true, 9, 3);
    const auto position = std::find(order.begin(), order.end(), 0) - order.begin();
    const size_t per_image = 3 * 6 * 6;
    const auto& batch = a.images[static_cast<size_t>(position / 5)];
    const std::vector<float> from_shuffled(batch.begin() + (position % 5) * per_image,
                                           batch.begin() + (position % 5 + 1) * per_image);
    const std::vector<float> from_ordered(b.images[0].begin(), b.images[0].begin() + per_image);
    CHECK(from_shuffled == from_ordered);
  }

  TEST_CASE("workers load at most prefetch_per_worker * num_workers batches ahead") {
    auto dataset = std::make_shared<FlakyDataset>(numbered_dataset(100), -1);
    DataLoader loader(dataset, std::make_shared<ToFloat>(),
                      {.batch_size = 2, .num_workers = 2, .prefetch_per_worker = 2});
    loader.start_epoch(0);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    CHECK(dataset->reads.load() <= 2 * 2 * 2);
    CHECK(loader.next().has_value());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    CHECK(dataset->reads.load() <= 2 * 2 * 2 + 2);
  }

  TEST_CASE("an error in a worker reaches the consumer, naming the file, after the good batches") {
    for (const int workers : {0, 3}) {
      CAPTURE(workers);
      auto dataset = std::make_shared<FlakyDataset>(numbered_dataset(30), 13);
      DataLoader loader(dataset, std::make_shared<ToFloat>(), {.batch_size = 5, .num_workers = workers});
      loader.start_epoch(0);
      CHECK(loader.next().has_value());
      CHECK(loader.next().has_value());
      CHECK_THROWS_WITH(loader.next(), "/data/img13.jpg: corrupt JPEG: Not a JPEG file: starts with 0x00 0x00");
      CHECK(!loader.next().has_value());  // the epoch ended with the error
      loader.start_epoch(1);              // and a new one starts cleanly
      CHECK(loader.next()->labels.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3, 4});
    }
  }

  TEST_CASE("transform errors and mismatched shapes name the sample") {
    const auto dataset = numbered_dataset(4);
    DataLoader no_float(dataset, nullptr, {.batch_size = 2});
    no_float.start_epoch(0);
    CHECK_THROWS_WITH(no_float.next(),
                      "DataLoader: numbered train sample 0: the transforms leave a u8 image [3, 6, 6]; end them "
                      "with ToFloat (and Normalize)");
    DataLoader too_big(dataset, std::make_shared<RandomCrop>(20), {.batch_size = 2, .num_workers = 1});
    too_big.start_epoch(0);
    CHECK_THROWS_WITH(too_big.next(),
                      "numbered train sample 0: RandomCrop: crop 20x20 is larger than the padded image 6x6");
  }

  TEST_CASE("next() before start_epoch() is an error, destroying a busy loader does not hang") {
    auto loader = std::make_unique<DataLoader>(numbered_dataset(40), augmenting(),
                                               DataLoaderOptions{.batch_size = 4, .num_workers = 3});
    CHECK_THROWS_WITH(loader->next(), "DataLoader: next() before start_epoch()");
    loader->start_epoch(0);
    CHECK(loader->next().has_value());
    loader.reset();  // workers still have batches in flight
    CHECK(loader == nullptr);
  }
}
