// Kernels behind Tensor::fill_ and Tensor::copy_ on a GPU (CUDA builds only;
// fmt-free for nvcc). Both read and write strided views in place.
#pragma once

#include <cuda_runtime_api.h>

#include "engine/cuda/indexing.h"
#include "engine/dtype_core.h"

namespace tpp::cuda {

// data[at(i)] = value for i < n.
void launch_fill(void* data, DType dtype, const StridedOffsets<1>& at, int64_t n, double value, cudaStream_t stream);

// dst[at(i)[0]] = src[at(i)[1]] converted to dst's dtype (or += with
// accumulate, floating dst only), for i < n. dst and src must not overlap.
void launch_copy(void* dst, DType dst_dtype, const void* src, DType src_dtype, const StridedOffsets<2>& at, int64_t n,
                 bool accumulate, cudaStream_t stream);

// dst[kept(j)] = scale * sum over r < count of src[kept(j) + reduced(r)], for
// j < outputs: one block per output, the sum in double. kept gives offsets
// into dst (operand 0) and src (operand 1); reduced into src. Floating dtypes.
void launch_sum_reduce(void* dst, const void* src, DType dtype, const StridedOffsets<2>& kept,
                       const StridedOffsets<1>& reduced, int64_t outputs, int64_t count, double scale,
                       cudaStream_t stream);

}  // namespace tpp::cuda
