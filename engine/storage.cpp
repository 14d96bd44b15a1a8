#include "engine/storage.h"

#include <cstdlib>
#include <string>

#include "engine/cuda_info.h"
#include "engine/error.h"
#if TPP_WITH_CUDA
#include "engine/cuda/caching_allocator.h"
#include "engine/cuda/stream.h"
#endif

namespace tpp {

namespace {
constexpr size_t kCpuAlignment = 64;
}

namespace {

#if TPP_WITH_CUDA
std::shared_ptr<void> allocate_on_gpu(size_t nbytes, Device device) {
  static const int usable = cuda_device_count();
  TPP_CHECK(device.index >= 0 && device.index < usable, "storage: {} is not available ({} usable GPU(s))",
            device.str(), usable);
  const cuda::DeviceGuard guard(device.index);
  return std::make_shared<cuda::DeviceBuffer>(cuda::device_allocate(nbytes, cuda::current_stream()));
}
#endif

}  // namespace

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
#if TPP_WITH_CUDA
  if (device.is_cuda()) {
    if (nbytes == 0) return;
    device_buffer_ = allocate_on_gpu(nbytes, device);
    data_ = static_cast<cuda::DeviceBuffer*>(device_buffer_.get())->data();
    return;
  }
#endif
  TPP_CHECK(device.is_cpu(), "storage: {} tensors need the CUDA backend, which this build does not have",
            device.str());
  const size_t rounded = (nbytes + kCpuAlignment - 1) / kCpuAlignment * kCpuAlignment;
  if (rounded == 0) return;
  data_ = std::aligned_alloc(kCpuAlignment, rounded);
  TPP_CHECK(data_ != nullptr, "storage: out of host memory allocating {} bytes", nbytes);
}

Storage::~Storage() {
  if (device_.is_cpu()) std::free(data_);
}

Device Device::parse(std::string_view text) {
  if (text == "cpu") return cpu();
  if (text == "cuda") return cuda(0);
  if (text.starts_with("cuda:")) {
    const std::string digits(text.substr(5));
    if (!digits.empty() && digits.find_first_not_of("0123456789") == std::string::npos && digits.size() < 6)
      return cuda(std::stoi(digits));
  }
  fail("device: expected cpu, cuda or cuda:N but got '{}'", text);
}

}  // namespace tpp
