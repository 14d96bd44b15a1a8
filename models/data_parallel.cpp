#include "models/data_parallel.h"

#include <memory>

#include "models/layers.h"

namespace tpp::models {

DistributedMode parse_distributed_mode(const std::string& text) {
  if (text == "auto") return DistributedMode::automatic;
  if (text == "off") return DistributedMode::off;
  fail("`distributed`: expected auto or off but got '{}'", text);
}

DistributedContext single_process_context(Device device) {
  return {.comm = dist::make_single_process_communicator(device)};
}

DistributedContext init_distributed(DistributedMode mode, Device device) {
  if (mode == DistributedMode::off) return single_process_context(device);
  const dist::LaunchEnv env = dist::detect_launch_env();
  if (!env.distributed()) return single_process_context(device);
  DistributedContext context{.rank = env.rank,
                             .world_size = env.world_size,
                             .local_rank = env.local_rank,
                             .launcher = env.launcher,
                             .comm = dist::make_communicator(env, device, dist::collective_timeout())};
  return context;
}

void average_buffers(dist::Communicator& comm, const Module& model) {
  for (const auto& [name, buffer] : model.named_buffers())
    if (is_floating(buffer.dtype())) comm.all_reduce(buffer, dist::ReduceOp::avg);
}

int set_sync_batch_norm(Module& model, const std::shared_ptr<dist::Communicator>& comm) {
  int changed = 0;
  for (auto& [name, module] : model.named_modules())
    if (auto* bn = dynamic_cast<BatchNorm2d*>(module)) {
      bn->sync = comm;
      ++changed;
    }
  return changed;
}

std::vector<GradBucket> plan_grad_buckets(const ParameterArena& arena, int64_t bucket_bytes) {
  TPP_CHECK(bucket_bytes > 0, "plan_grad_buckets: the bucket size must be positive but is {} bytes", bucket_bytes);
  const int64_t element_bytes = static_cast<int64_t>(element_size(arena.grads.dtype()));
  std::vector<GradBucket> buckets;
  int64_t bucket_end = 0;  // one past the highest element of the open bucket
  for (auto it = arena.views.rbegin(); it != arena.views.rend(); ++it) {
    const auto& [name, param] = *it;
    const int64_t start = param.offset() - arena.params.offset();
    const int64_t end = start + param.numel();
    const bool fits = !buckets.empty() && (bucket_end - start) * element_bytes <= bucket_bytes;
    if (!fits) {
      buckets.push_back(GradBucket{});
      bucket_end = end;
    }
    GradBucket& bucket = buckets.back();
    bucket.offset = start;
    bucket.numel = bucket_end - start;
    bucket.params.push_back(name);
  }
  return buckets;
}

void broadcast_model(dist::Communicator& comm, const Module& model) {
  for (const auto& [name, tensor] : model.state_dict()) comm.broadcast(tensor, 0);
}

void average_gradients(dist::Communicator& comm, const ParameterArena& arena, const std::vector<GradBucket>& buckets) {
  std::vector<std::unique_ptr<dist::PendingCollective>> pending;
  pending.reserve(buckets.size());
  for (const GradBucket& bucket : buckets)
    pending.push_back(comm.all_reduce_async(arena.grads.slice(0, bucket.offset, bucket.offset + bucket.numel),
                                            dist::ReduceOp::avg));
  for (const auto& p : pending) p->wait();
}

}  // namespace tpp::models
