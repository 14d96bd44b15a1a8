// DataLoader shards for data parallelism: W ranks with batch B see, step by
// step, exactly the samples (and augmentations) one process with batch W·B
// sees, in disjoint shards.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>

#include "data/loader.h"

using namespace tpp;
using namespace tpp::data;

namespace {

// n images [1, 4, 4]; label = the sample index.
std::shared_ptr<TensorDataset> indexed_dataset(int64_t n) {
  Tensor images = empty({n, 1, 4, 4}, {.dtype = DType::u8});
  uint8_t* p = images.data<uint8_t>();
  for (int64_t i = 0; i < images.numel(); ++i) p[i] = static_cast<uint8_t>(i % 251);
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) labels[static_cast<size_t>(i)] = i;
  std::vector<std::string> classes(static_cast<size_t>(n), "c");
  return std::make_shared<TensorDataset>(DatasetInfo{"indexed", "train", "memory", classes}, images,
                                         from_vector<int64_t>(labels, {n}), std::vector<std::string>{},
                                         std::vector<int64_t>{});
}

TransformPtr to_float() { return std::make_shared<ToFloat>(); }

std::vector<std::vector<int64_t>> epoch_labels(DataLoader& loader, int64_t epoch) {
  std::vector<std::vector<int64_t>> batches;
  loader.start_epoch(epoch);
  while (auto batch = loader.next()) batches.push_back(batch->labels.to_vector<int64_t>());
  return batches;
}

DataLoaderOptions sharded(int64_t batch, int rank, int world, bool drop_last, int workers = 0) {
  return {.batch_size = batch, .shuffle = true, .drop_last = drop_last, .num_workers = workers, .seed = 11,
          .rank = rank, .world_size = world};
}

}  // namespace

TEST_SUITE("data") {

TEST_CASE("two ranks with batch B together see each batch of one process with batch 2B, rank 0 first") {
  const auto dataset = indexed_dataset(103);
  DataLoader whole(dataset, to_float(), sharded(10, 0, 1, true));
  DataLoader rank0(dataset, to_float(), sharded(5, 0, 2, true, 2));
  DataLoader rank1(dataset, to_float(), sharded(5, 1, 2, true));
  CHECK(whole.num_batches() == 10);
  CHECK(rank0.num_batches() == 10);
  CHECK(rank1.num_batches() == 10);
  CHECK(rank1.global_batch_size() == 10);
  for (int64_t epoch : {0, 3}) {
    const auto want = epoch_labels(whole, epoch), first = epoch_labels(rank0, epoch), second = epoch_labels(rank1, epoch);
    REQUIRE(first.size() == want.size());
    REQUIRE(second.size() == want.size());
    for (size_t b = 0; b < want.size(); ++b) {
      std::vector<int64_t> joined = first[b];
      joined.insert(joined.end(), second[b].begin(), second[b].end());
      CHECK(joined == want[b]);
    }
  }
}

TEST_CASE("the ranks' shards of an epoch are disjoint") {
  const auto dataset = indexed_dataset(64);
  std::set<int64_t> seen;
  int64_t total = 0;
  for (int rank = 0; rank < 4; ++rank) {
    DataLoader loader(dataset, to_float(), sharded(4, rank, 4, true));
    for (const auto& batch : epoch_labels(loader, 2)) {
      seen.insert(batch.begin(), batch.end());
      total += static_cast<int64_t>(batch.size());
    }
  }
  CHECK(total == 64);
  CHECK(static_cast<int64_t>(seen.size()) == 64);
}

TEST_CASE("without drop_last the last global batch is cut in rank order: every sample exactly once") {
  // 23 samples, 3 ranks x batch 4: two full global batches (24 > 23: one), then 11 left: 4, 4, 3.
  const auto dataset = indexed_dataset(23);
  std::vector<int64_t> all;
  std::vector<int64_t> batches_per_rank;
  for (int rank = 0; rank < 3; ++rank) {
    DataLoader loader(dataset, to_float(), sharded(4, rank, 3, false));
    const auto batches = epoch_labels(loader, 0);
    batches_per_rank.push_back(loader.num_batches());
    CHECK(static_cast<int64_t>(batches.size()) == loader.num_batches());
    for (const auto& b : batches) all.insert(all.end(), b.begin(), b.end());
  }
  CHECK(batches_per_rank == std::vector<int64_t>{2, 2, 2});
  std::sort(all.begin(), all.end());
  std::vector<int64_t> want(23);
  for (int64_t i = 0; i < 23; ++i) want[static_cast<size_t>(i)] = i;
  CHECK(all == want);

  // 9 samples, 3 ranks x batch 4: one global batch, cut 4, 4, 1; with 8 samples rank 2 gets nothing.
  DataLoader short_block(indexed_dataset(9), to_float(), sharded(4, 2, 3, false));
  CHECK(epoch_labels(short_block, 0).at(0).size() == 1);
  DataLoader empty_shard(indexed_dataset(8), to_float(), sharded(4, 2, 3, false));
  CHECK(empty_shard.num_batches() == 0);
  CHECK(epoch_labels(empty_shard, 0).empty());
}

TEST_CASE("a rank outside the world is an error") {
  const auto dataset = indexed_dataset(8);
  CHECK_THROWS_WITH(DataLoader(dataset, to_float(), sharded(2, 2, 2, true)),
                    "DataLoader: rank 2 is not a rank of a world of size 2");
  CHECK_THROWS_WITH(DataLoader(dataset, to_float(), sharded(2, 0, 0, true)),
                    "DataLoader: rank 0 is not a rank of a world of size 0");
}

}  // TEST_SUITE
