// Tensor::fill_, copy_ and the host transfers for tensors on a GPU (CUDA
// builds only). Host <-> device copies go through pinned staging buffers
// (engine/cuda/pinned_pool.h) on the device's compute stream: uploads return
// as soon as the bytes are staged; downloads wait for their copy only.
#pragma once

#include <cstddef>
#include <vector>

#include "engine/cuda/indexing.h"
#include "engine/tensor.h"

namespace tpp::cuda {

// The element offsets of N operands of one shape for a strided kernel; an
// error naming `op` when the merged shape has more than kMaxDims dims.
template <int N>
StridedOffsets<N> strided_offsets(std::string_view op, const Shape& shape, const std::array<const Shape*, N>& strides) {
  StridedOffsets<N> at;
  TPP_CHECK(make_strided_offsets<N>(shape, strides, at), "{}: operands of shape {} have more than {} dims after merging",
            op, shape_str(shape), kMaxDims);
  return at;
}

void fill(const Tensor& t, double value);

// dst = src converted to dst's dtype (same shapes; either may be strided) for
// any two devices of which one at least is a GPU. With accumulate, dst += src
// (both on the same GPU).
void copy(const Tensor& dst, const Tensor& src, bool accumulate = false);

// out = scale * the sum of x over the dims marked in `reduced` (one flag per
// dim of x). out is contiguous, of x's dtype, with the kept dims' elements.
void reduce_sum(const Tensor& out, const Tensor& x, const std::vector<bool>& reduced, double scale = 1);

// out = grad summed down to out's shape (autograd's sum_to_shape): the
// leading dims of grad, and its dims where out has size 1, are summed.
void sum_to(const Tensor& out, const Tensor& grad);

// Raw bytes between host memory and device memory on `device`.
void upload_bytes(void* device_dst, const void* host_src, size_t bytes, int device);
void download_bytes(void* host_dst, const void* device_src, size_t bytes, int device);

}  // namespace tpp::cuda
