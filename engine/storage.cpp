#include "engine/storage.h"

#include <cstdlib>
#include <string>

#include "engine/error.h"

namespace tpp {

namespace {
constexpr size_t kCpuAlignment = 64;
}

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  TPP_CHECK(device.is_cpu(), "storage: {} tensors need the CUDA backend, which this build does not have",
            device.str());
  const size_t rounded = (nbytes + kCpuAlignment - 1) / kCpuAlignment * kCpuAlignment;
  if (rounded == 0) return;
  data_ = std::aligned_alloc(kCpuAlignment, rounded);
  TPP_CHECK(data_ != nullptr, "storage: out of host memory allocating {} bytes", nbytes);
}

Storage::~Storage() { std::free(data_); }

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
