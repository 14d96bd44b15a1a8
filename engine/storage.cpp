#include "engine/storage.h"

#include <cstdlib>
#include <string>

#include "engine/cpu_allocator.h"
#include "engine/cuda_info.h"
#include "engine/error.h"
#if TPP_WITH_CUDA
#include "engine/cuda/caching_allocator.h"
#include "engine/cuda/stream.h"
#endif

namespace tpp {

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
    buffer_ = allocate_on_gpu(nbytes, device);
    data_ = static_cast<cuda::DeviceBuffer*>(buffer_.get())->data();
    return;
  }
#endif
  TPP_CHECK(device.is_cpu(), "storage: {} tensors need the CUDA backend, which this build does not have",
            device.str());
  if (nbytes == 0) return;
  auto host = std::make_shared<CachedBuffer>(cpu_allocate(nbytes));
  data_ = host->data();
  buffer_ = std::move(host);
}

Storage::~Storage() = default;

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
