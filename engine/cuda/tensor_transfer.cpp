// CUDA builds only.
#include "engine/cuda/tensor_transfer.h"

#include <cstring>

#include "engine/cuda/pinned_pool.h"
#include "engine/cuda/stream.h"
#include "engine/cuda/tensor_kernels.h"

namespace tpp::cuda {

namespace {

void copy_on_gpu(const Tensor& dst, const Tensor& src, bool accumulate) {
  TPP_CHECK(!accumulate || is_floating(dst.dtype()), "copy_: accumulating into a {} tensor", dtype_name(dst.dtype()));
  const DeviceGuard guard(dst.device().index);
  const auto at = strided_offsets<2>("copy_", dst.sizes(), {&dst.strides(), &src.strides()});
  launch_copy(dst.raw_data(), dst.dtype(), src.raw_data(), src.dtype(), at, dst.numel(), accumulate,
              current_stream());
}

// A contiguous CPU tensor with src's values in dtype `dtype`.
Tensor host_contiguous(const Tensor& src, DType dtype) { return src.detach().to(dtype).contiguous(); }

void upload(const Tensor& dst, const Tensor& src) {
  if (!dst.is_contiguous()) {
    const Tensor staged = empty(dst.sizes(), {.dtype = dst.dtype(), .device = dst.device()});
    upload(staged, src);
    copy_on_gpu(dst, staged, false);
    return;
  }
  const Tensor host = host_contiguous(src, dst.dtype());
  upload_bytes(dst.raw_data(), host.raw_data(), dst.numel() * element_size(dst.dtype()), dst.device().index);
}

void download(const Tensor& dst, const Tensor& src) {
  // Converted and made contiguous on the GPU, where that is cheap.
  const Tensor device_src = src.detach().to(dst.dtype()).contiguous();
  const size_t bytes = dst.numel() * element_size(dst.dtype());
  if (dst.is_contiguous()) {
    download_bytes(dst.raw_data(), device_src.raw_data(), bytes, src.device().index);
    return;
  }
  const Tensor host = empty(dst.sizes(), {.dtype = dst.dtype()});
  download_bytes(host.raw_data(), device_src.raw_data(), bytes, src.device().index);
  Tensor(dst).copy_(host);  // a handle: the copy writes dst's storage
}

}  // namespace

void fill(const Tensor& t, double value) {
  const DeviceGuard guard(t.device().index);
  const auto at = strided_offsets<1>("fill_", t.sizes(), {&t.strides()});
  launch_fill(t.raw_data(), t.dtype(), at, t.numel(), value, current_stream());
}

void copy(const Tensor& dst, const Tensor& src, bool accumulate) {
  if (dst.numel() == 0) return;
  if (dst.device() == src.device()) return copy_on_gpu(dst, src, accumulate);
  TPP_CHECK(!accumulate, "copy_: cannot accumulate from {} into {}", src.device().str(), dst.device().str());
  if (src.device().is_cpu()) return upload(dst, src);
  if (dst.device().is_cpu()) return download(dst, src);
  upload(dst, src.to(Device::cpu()));  // GPU to GPU: through the host, which is correct if slow
}

void reduce_sum(const Tensor& out, const Tensor& x, const std::vector<bool>& reduced, double scale) {
  TPP_CHECK(static_cast<int64_t>(reduced.size()) == x.dim() && out.is_contiguous() && out.dtype() == x.dtype() &&
                is_floating(x.dtype()),
            "reduce_sum: bad arguments for input {} and output {}", shape_str(x.sizes()), shape_str(out.sizes()));
  Shape kept_sizes, kept_x_strides, reduced_sizes, reduced_strides;
  for (int64_t d = 0; d < x.dim(); ++d) {
    Shape& sizes = reduced[d] ? reduced_sizes : kept_sizes;
    Shape& strides = reduced[d] ? reduced_strides : kept_x_strides;
    sizes.push_back(x.size(d));
    strides.push_back(x.stride(d));
  }
  TPP_CHECK(numel_of(kept_sizes) == out.numel(), "reduce_sum: output {} does not hold the kept dims {} of {}",
            shape_str(out.sizes()), shape_str(kept_sizes), shape_str(x.sizes()));
  const Shape out_strides = contiguous_strides(kept_sizes);
  const auto kept = strided_offsets<2>("reduce_sum", kept_sizes, {&out_strides, &kept_x_strides});
  const auto over = strided_offsets<1>("reduce_sum", reduced_sizes, {&reduced_strides});
  const DeviceGuard guard(x.device().index);
  launch_sum_reduce(out.raw_data(), x.raw_data(), x.dtype(), kept, over, out.numel(), numel_of(reduced_sizes), scale,
                    current_stream());
}

void sum_to(const Tensor& out, const Tensor& grad) {
  const size_t lead = grad.sizes().size() - out.sizes().size();
  std::vector<bool> reduced(grad.sizes().size(), true);
  for (size_t d = 0; d < out.sizes().size(); ++d) reduced[lead + d] = out.sizes()[d] == 1 && grad.sizes()[lead + d] != 1;
  reduce_sum(out, grad, reduced);
}

void upload_bytes(void* device_dst, const void* host_src, size_t bytes, int device) {
  if (bytes == 0) return;
  const DeviceGuard guard(device);
  PinnedBuffer staging = pinned_allocate(bytes, current_stream());
  std::memcpy(staging.data(), host_src, bytes);
  copy_to_device_async(device_dst, staging, bytes);  // the pool reuses staging only after this copy
}

void download_bytes(void* host_dst, const void* device_src, size_t bytes, int device) {
  if (bytes == 0) return;
  const DeviceGuard guard(device);
  PinnedBuffer staging = pinned_allocate(bytes, current_stream());
  copy_to_host_async(staging, device_src, bytes);
  TPP_CUDA_CHECK(cudaStreamSynchronize(current_stream()));
  std::memcpy(host_dst, staging.data(), bytes);
}

}  // namespace tpp::cuda
