// A block of memory that tensors view. CPU blocks are 64-byte aligned so that
// vector loads never straddle cache lines, and come from the CPU caching
// allocator (engine/cpu_allocator.h). CUDA blocks come from the device's
// caching allocator (engine/cuda/caching_allocator.h), allocated for its
// compute stream, and go back to the cache when the last view goes.
#pragma once

#include <cstddef>
#include <memory>

#include "engine/device.h"

namespace tpp {

class Storage {
 public:
  Storage(size_t nbytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  std::shared_ptr<void> buffer_;  // owns data_: a CachedBuffer on the CPU, a cuda::DeviceBuffer on GPUs
};

}  // namespace tpp
