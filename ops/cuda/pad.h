// CUDA constant padding (CUDA builds only; free of fmt for nvcc): the padded
// output written in one pass, x's values inside and `value` around them.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "engine/cuda/indexing.h"
#include "engine/dtype_core.h"

namespace tpp {
class Tensor;
}

namespace tpp::ops::cuda {

// y = x padded with `value`; pad in torch.nn.functional.pad order (last dim
// first), already checked; x contiguous, y contiguous of the padded shape.
void constant_pad_forward(const Tensor& x, const std::vector<int64_t>& pad, double value, const Tensor& y);

namespace kernels {

// Sizes of x and y and the padding before x along each dim, leading
// unpadded dims merged into one.
struct PadGeometry {
  int ndim = 0;
  int64_t in_sizes[tpp::cuda::kMaxDims] = {};
  int64_t out_sizes[tpp::cuda::kMaxDims] = {};
  int64_t before[tpp::cuda::kMaxDims] = {};
};

// One thread per output element.
void launch_constant_pad(const void* x, void* y, DType dtype, const PadGeometry& g, int64_t out_numel, double value,
                         cudaStream_t stream);

}  // namespace kernels

}  // namespace tpp::ops::cuda
