// CUDA cross-entropy (CUDA builds only; free of fmt for nvcc): softmax, the
// smoothed negative log-likelihood and its mean or sum over the batch without
// a round trip to the host. logits and probs contiguous [N, C], target i64 [N].
// A row whose target is ignore_index adds nothing and counts nothing (the
// mean of no rows is NaN, as PyTorch); its gradient is 0 (NaN where its
// softmax is).
//
// Target values are checked on the GPU: a target outside [0, C) (and not
// ignore_index) is never used as an index; its row's loss (so the mean) and
// gradient are NaN, and the kernel records the first such target. The host
// learns of it without waiting: the next cross_entropy call on that GPU (once
// the copy of the record has landed) throws the error naming the target, its
// position and the class count. Under TPP_SYNC_DEBUG the call itself waits
// and throws, with the CPU's message.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "engine/dtype_core.h"
#include "ops/loss_types.h"

namespace tpp {
class Tensor;
}

namespace tpp::ops::cuda {

// Writes softmax(logits) into probs, the reduced smoothed loss into the 0-d
// `loss` (logits' dtype, on the GPU) and what it was divided by into the 0-d
// f64 `divisor` (the rows not ignored, or 1 for a sum), for the backward.
void cross_entropy_forward(const Tensor& logits, const Tensor& target, const FusedCrossEntropy& opts,
                           const Tensor& probs, const Tensor& loss, const Tensor& divisor);
// dlogits = dloss / divisor * (probs - ((1 - smoothing) * one_hot(target) + smoothing / C)) on the rows not
// ignored, with the 0-d upstream gradient dloss and the divisor read on the GPU.
void cross_entropy_backward(const Tensor& probs, const Tensor& target, const FusedCrossEntropy& opts,
                            const Tensor& divisor, const Tensor& dloss, const Tensor& dlogits);

namespace kernels {

// The first out-of-range target a forward kernel met (device memory; all
// zero until then).
struct TargetFault {
  unsigned long long flagged;
  int64_t position, value, classes;
};

// One block per row: probs, and each row's loss into row_loss (double [N]);
// then one block sums row_loss into loss[0] (in double, in a fixed order) and
// divides it by divisor[0].
void launch_cross_entropy_forward(const void* logits, const int64_t* target, void* probs, double* row_loss,
                                  void* loss, double* divisor, TargetFault* fault, DType dtype, int64_t n, int64_t c,
                                  const FusedCrossEntropy& opts, cudaStream_t stream);
// One thread per element of dlogits.
void launch_cross_entropy_backward(const void* probs, const int64_t* target, const double* divisor, const void* dloss,
                                   void* dlogits, DType dtype, int64_t n, int64_t c, const FusedCrossEntropy& opts,
                                   cudaStream_t stream);

}  // namespace kernels

}  // namespace tpp::ops::cuda
