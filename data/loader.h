// DataLoader: batches of transformed samples, images f32 [B, C, H, W] and
// labels i64 [B], loaded by N worker threads ahead of the consumer.
//
// Order and augmentation depend only on (seed, epoch, sample index): the
// epoch's permutation comes from the Philox shuffle stream and each sample's
// transforms from its own SampleRandom, so 0, 1 or 8 workers give the same
// batches. Workers claim batch numbers in turn and the consumer receives them
// in order; at most `prefetch_per_worker * num_workers` batches are loaded
// ahead. An exception in a worker (a corrupt file, a bad record) reaches the
// consumer from next() with the file and record named, and ends the epoch.
//
// Batches are plain CPU tensors. The CUDA path (pinned staging buffers, a
// copy to the device on a side stream, device-resident datasets) plugs in at
// allocate_batch() and at the hand-over in next(): see the comments there.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "data/dataset.h"
#include "data/transforms.h"

namespace tpp::data {

struct DataLoaderOptions {
  int64_t batch_size = 128;
  bool shuffle = false;
  bool drop_last = false;
  int num_workers = 0;  // 0: load in the calling thread, inside next()
  int prefetch_per_worker = 2;
  uint64_t seed = 0;
  // Data parallelism: this process is `rank` of `world_size` ranks that
  // share the dataset. Global batch b of an epoch is the contiguous block
  // [b·W·B, (b+1)·W·B) of the epoch's order (W = world_size, B =
  // batch_size) and rank r takes its r-th sub-block of B samples. The ranks'
  // shards of an epoch are disjoint, and W ranks with batch B together see
  // exactly the batches one process with batch W·B sees (drop_last drops
  // whole global batches, so every rank has the same number of steps).
  // Without drop_last the last global batch is cut into blocks of B in rank
  // order: a late rank may get a short block or none (evaluation only).
  int rank = 0;
  int world_size = 1;
};

struct Batch {
  Tensor images;      // f32 [B, C, H, W]
  Tensor labels;      // i64 [B]
  int64_t index = 0;  // batch number within the epoch
};

// The order in which an epoch visits the samples: 0..n-1, or a permutation
// (Fisher-Yates over the Philox shuffle stream of (seed, epoch)).
std::vector<int64_t> epoch_order(int64_t n, bool shuffle, uint64_t seed, int64_t epoch);

class DataLoader {
 public:
  // `transform` may be null (identity); it must leave f32 images of one shape.
  DataLoader(std::shared_ptr<const Dataset> dataset, TransformPtr transform, DataLoaderOptions options);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  // This rank's batches per epoch.
  int64_t num_batches() const;
  // batch_size × world_size: what one optimizer step sees over all ranks.
  int64_t global_batch_size() const;
  const Dataset& dataset() const { return *dataset_; }
  const DataLoaderOptions& options() const { return options_; }

  // Starts (or restarts) an epoch: its order is drawn and workers begin at
  // batch `first_batch` (a run resumed in the middle of an epoch).
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  // The next batch of the epoch, or nullopt at its end.
  std::optional<Batch> next();

  // Loads one batch from the given sample indices in the calling thread.
  Batch load_batch(int64_t batch_index, const std::vector<int64_t>& indices, int64_t epoch) const;

 private:
  struct Slot {
    std::optional<Batch> batch;
    std::exception_ptr error;
  };

  std::vector<int64_t> indices_of(int64_t batch_index) const;  // caller holds mutex_ (or no workers)
  bool can_claim() const;
  void worker_loop();
  void stop_workers();

  std::shared_ptr<const Dataset> dataset_;
  TransformPtr transform_;
  DataLoaderOptions options_;

  std::mutex mutex_;
  std::condition_variable work_ready_;   // workers wait here for batches to claim
  std::condition_variable batch_ready_;  // the consumer waits here for the next batch
  bool stopping_ = false;
  bool started_ = false;  // start_epoch() was called at least once
  bool epoch_active_ = false;
  uint64_t generation_ = 0;  // bumped at each start_epoch: stale work is dropped
  int64_t epoch_ = 0;
  std::vector<int64_t> order_;
  int64_t next_to_claim_ = 0, next_to_yield_ = 0;
  std::map<int64_t, Slot> ready_;
  std::vector<std::thread> workers_;
};

}  // namespace tpp::data
