#include "data/loader.h"

#include <cstring>

#include "engine/error.h"

namespace tpp::data {

std::vector<int64_t> epoch_order(int64_t n, bool shuffle, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  if (!shuffle) return order;
  SampleRandom rng(seed, kShuffleStream, static_cast<uint64_t>(epoch), 0);
  for (int64_t i = n - 1; i > 0; --i) {
    const int64_t j = rng.integer(0, i + 1);
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
  }
  return order;
}

namespace {

// Where the pinned host memory of the CUDA path will come from: a batch is
// written once, here, so a pinned allocator can replace empty() without
// touching the rest.
Tensor allocate_batch(const Shape& shape, DType dtype) { return empty(shape, {.dtype = dtype}); }

}  // namespace

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, TransformPtr transform, DataLoaderOptions options)
    : dataset_(std::move(dataset)), transform_(std::move(transform)), options_(options) {
  TPP_CHECK(dataset_ != nullptr, "DataLoader: no dataset");
  TPP_CHECK(options_.batch_size > 0, "DataLoader: batch_size must be positive but got {}", options_.batch_size);
  TPP_CHECK(options_.world_size >= 1 && options_.rank >= 0 && options_.rank < options_.world_size,
            "DataLoader: rank {} is not a rank of a world of size {}", options_.rank, options_.world_size);
  TPP_CHECK(options_.num_workers >= 0 && options_.prefetch_per_worker > 0,
            "DataLoader: num_workers {} must be >= 0 and prefetch_per_worker {} > 0", options_.num_workers,
            options_.prefetch_per_worker);
  for (int w = 0; w < options_.num_workers; ++w) workers_.emplace_back([this] { worker_loop(); });
}

DataLoader::~DataLoader() { stop_workers(); }

void DataLoader::stop_workers() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_ready_.notify_all();
  for (std::thread& worker : workers_) worker.join();
  workers_.clear();
}

int64_t DataLoader::global_batch_size() const { return options_.batch_size * options_.world_size; }

int64_t DataLoader::num_batches() const {
  const int64_t n = dataset_->size(), global = global_batch_size();
  if (options_.drop_last) return n / global;
  const bool has_part_of_last = n % global > options_.rank * options_.batch_size;
  return n / global + (has_part_of_last ? 1 : 0);
}

std::vector<int64_t> DataLoader::indices_of(int64_t batch_index) const {
  const int64_t first = batch_index * global_batch_size() + options_.rank * options_.batch_size;
  const int64_t last = std::min<int64_t>(first + options_.batch_size, static_cast<int64_t>(order_.size()));
  return {order_.begin() + first, order_.begin() + last};
}

void DataLoader::start_epoch(int64_t epoch, int64_t first_batch) {
  TPP_CHECK(first_batch >= 0 && first_batch <= num_batches(), "DataLoader: cannot start epoch {} at batch {} of {}",
            epoch, first_batch, num_batches());
  std::vector<int64_t> order = epoch_order(dataset_->size(), options_.shuffle, options_.seed, epoch);
  {
    std::lock_guard lock(mutex_);
    ++generation_;
    epoch_ = epoch;
    order_ = std::move(order);
    next_to_claim_ = next_to_yield_ = first_batch;
    ready_.clear();
    epoch_active_ = started_ = true;
  }
  work_ready_.notify_all();
}

bool DataLoader::can_claim() const {
  const int64_t window = static_cast<int64_t>(options_.prefetch_per_worker) * options_.num_workers;
  return epoch_active_ && next_to_claim_ < num_batches() && next_to_claim_ < next_to_yield_ + window;
}

void DataLoader::worker_loop() {
  std::unique_lock lock(mutex_);
  while (true) {
    work_ready_.wait(lock, [this] { return stopping_ || can_claim(); });
    if (stopping_) return;
    const int64_t batch_index = next_to_claim_++;
    const uint64_t generation = generation_;
    const int64_t epoch = epoch_;
    const std::vector<int64_t> indices = indices_of(batch_index);
    lock.unlock();

    Slot slot;
    try {
      slot.batch = load_batch(batch_index, indices, epoch);
    } catch (...) {
      slot.error = std::current_exception();
    }

    lock.lock();
    if (generation == generation_) {
      ready_[batch_index] = std::move(slot);
      batch_ready_.notify_all();
    }
  }
}

std::optional<Batch> DataLoader::next() {
  std::unique_lock lock(mutex_);
  TPP_CHECK(started_, "DataLoader: next() before start_epoch()");
  if (!epoch_active_ || next_to_yield_ >= num_batches()) {
    epoch_active_ = false;
    return std::nullopt;
  }
  const int64_t batch_index = next_to_yield_++;
  if (workers_.empty()) {
    const std::vector<int64_t> indices = indices_of(batch_index);
    const int64_t epoch = epoch_;
    lock.unlock();
    try {
      return load_batch(batch_index, indices, epoch);
    } catch (...) {
      lock.lock();
      epoch_active_ = false;
      throw;
    }
  }
  batch_ready_.wait(lock, [&] { return ready_.count(batch_index) > 0; });
  Slot slot = std::move(ready_.at(batch_index));
  ready_.erase(batch_index);
  if (slot.error) {
    // The epoch ends here: drop what the workers loaded beyond the failure.
    epoch_active_ = false;
    ++generation_;
    ready_.clear();
    std::rethrow_exception(slot.error);
  }
  lock.unlock();
  work_ready_.notify_all();  // a place in the prefetch window opened
  // The CUDA path hands the batch to a copy stream here (pinned -> device).
  return std::move(slot.batch);
}

Batch DataLoader::load_batch(int64_t batch_index, const std::vector<int64_t>& indices, int64_t epoch) const {
  const auto count = static_cast<int64_t>(indices.size());
  Batch batch;
  batch.index = batch_index;
  batch.labels = allocate_batch({count}, DType::i64);
  int64_t* labels = batch.labels.data<int64_t>();
  Shape image_shape;
  for (int64_t k = 0; k < count; ++k) {
    const int64_t index = indices[static_cast<size_t>(k)];
    Sample sample = dataset_->get(index);
    Tensor image = sample.image;
    if (transform_) {
      SampleRandom rng(options_.seed, kTransformStream, static_cast<uint64_t>(epoch), static_cast<uint64_t>(index));
      try {
        image = transform_->apply(sample.image, rng);
      } catch (const Error& e) {
        fail("{}: {}", dataset_->describe(index), e.what());
      }
    }
    TPP_CHECK(image.dtype() == DType::f32,
              "DataLoader: {}: the transforms leave a {} image {}; end them with ToFloat (and Normalize)",
              dataset_->describe(index), dtype_name(image.dtype()), shape_str(image.sizes()));
    if (k == 0) {
      image_shape = image.sizes();
      Shape shape{count};
      shape.insert(shape.end(), image_shape.begin(), image_shape.end());
      batch.images = allocate_batch(shape, DType::f32);
    }
    TPP_CHECK(image.sizes() == image_shape,
              "DataLoader: {}: image {} differs from the batch's {}; add a Resize or crop transform",
              dataset_->describe(index), shape_str(image.sizes()), shape_str(image_shape));
    const Tensor contiguous = image.contiguous();
    const int64_t per_image = contiguous.numel();
    std::memcpy(batch.images.data<float>() + k * per_image, contiguous.data<float>(),
                static_cast<size_t>(per_image) * sizeof(float));
    labels[k] = sample.label;
  }
  return batch;
}

}  // namespace tpp::data
