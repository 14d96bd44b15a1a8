// Data-parallel training pieces over a packed model (models/arena.h): the
// bucket plan of the gradient arena, the broadcast of rank 0's weights, and
// the gradient average. Every rank derives the same plan from the same arena
// layout, so all ranks issue the same collectives in the same order.
#pragma once

#include <string>
#include <vector>

#include "engine/distributed.h"
#include "models/arena.h"

namespace tpp::models {

// A run of whole parameters of the gradient arena, reduced as one collective.
struct GradBucket {
  int64_t offset = 0;  // elements from the start of the arena
  int64_t numel = 0;   // including the alignment padding between its parameters
  std::vector<std::string> params;  // in the order backward produces their gradients
};

inline constexpr int64_t kDefaultBucketBytes = int64_t{16} << 20;  // 16 MiB

// Buckets in reverse arena order (backward produces the last layer's
// gradients first, so the first bucket is ready first). Each holds whole
// parameters up to `bucket_bytes`; a larger parameter is a bucket of its own.
std::vector<GradBucket> plan_grad_buckets(const ParameterArena& arena, int64_t bucket_bytes = kDefaultBucketBytes);

// Copies rank 0's parameters and buffers (batch-norm running statistics)
// into every rank's model.
void broadcast_model(dist::Communicator& comm, const Module& model);

// Replaces every rank's gradient arena by the average over the ranks: one
// all-reduce per bucket, all issued in plan order, then all awaited.
void average_gradients(dist::Communicator& comm, const ParameterArena& arena, const std::vector<GradBucket>& buckets);

}  // namespace tpp::models
