#include "engine/cuda/fused_sgd.h"

#include "engine/cuda/indexing.h"

namespace tpp::cuda {

namespace {

constexpr int64_t kMaxBlocks = 65535 * 8;

// The slot whose chunks hold `chunk`: the last one starting at or before it.
__device__ int64_t slot_of_chunk(const SgdSlot* slots, int64_t count, int64_t chunk) {
  int64_t lo = 0, hi = count - 1;
  while (lo < hi) {
    const int64_t mid = (lo + hi + 1) / 2;
    if (slots[mid].first_chunk <= chunk) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

template <class T>
__global__ void fused_sgd_kernel(const SgdSlot* slots, int64_t slot_count, int64_t total_chunks, T lr, T momentum,
                                 T weight_decay, bool nesterov) {
  for (int64_t chunk = blockIdx.x; chunk < total_chunks; chunk += gridDim.x) {
    const SgdSlot slot = slots[slot_of_chunk(slots, slot_count, chunk)];
    T* p = static_cast<T*>(slot.param);
    const T* g = static_cast<const T*>(slot.grad);
    T* buf = static_cast<T*>(slot.buffer);
    const T* mask = static_cast<const T*>(slot.mask);
    const bool first_step = slot.first_step != 0;
    const int64_t begin = (chunk - slot.first_chunk) * kSgdChunk;
    const int64_t end = begin + kSgdChunk < slot.numel ? begin + kSgdChunk : slot.numel;
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
      if (mask != nullptr && mask[i] == T(0)) {  // pruned: stays zero and carries no momentum
        p[i] = T(0);
        if (buf != nullptr) buf[i] = T(0);
        continue;
      }
      T d = g[i] + weight_decay * p[i];
      if (buf != nullptr) {
        buf[i] = first_step ? d : momentum * buf[i] + d;
        d = nesterov ? d + momentum * buf[i] : buf[i];
      }
      p[i] -= lr * d;
    }
  }
}

}  // namespace

void launch_fused_sgd(const SgdSlot* slots, int64_t slot_count, int64_t total_chunks, DType dtype,
                      const SgdHyper& hyper, cudaStream_t stream) {
  if (slot_count == 0 || total_chunks == 0) return;
  const unsigned blocks = static_cast<unsigned>(total_chunks < kMaxBlocks ? total_chunks : kMaxBlocks);
  with_floating_type(dtype, [&](auto type) {
    using T = decltype(type);
    fused_sgd_kernel<T><<<blocks, kThreadsPerBlock, 0, stream>>>(
        slots, slot_count, total_chunks, static_cast<T>(hyper.lr), static_cast<T>(hyper.momentum),
        static_cast<T>(hyper.weight_decay), hyper.nesterov);
  });
  TPP_CUDA_CHECK_LAUNCH();
}

}  // namespace tpp::cuda
