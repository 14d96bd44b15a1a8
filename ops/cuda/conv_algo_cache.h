// The memo of cuDNN's algorithm search: which algorithm ran fastest for one
// convolution pass of one shape. Searching times every algorithm on the GPU
// (tens of milliseconds), so it happens once per key and process.
//
// Free of CUDA and cuDNN types (the choice is a template parameter), so that
// the CPU-only build can test the keying.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "engine/dtype_core.h"
#include "ops/conv2d_types.h"

namespace tpp::ops::cuda {

enum class ConvPass : uint8_t { forward, backward_data, backward_filter };

// Everything that can change which algorithm wins: the full geometry, the
// element type, the requested math (a cudnnMathType_t), the GPU and the pass.
struct ConvAlgoKey {
  Conv2dGeometry geometry;
  DType dtype = DType::f32;
  int math = 0;
  int device = 0;
  ConvPass pass = ConvPass::forward;

  static constexpr size_t kFields = 20;
  std::array<int64_t, kFields> fields() const {
    const Conv2dGeometry& g = geometry;
    return {g.batch,      g.in_channels, g.in_h,  g.in_w,       g.out_channels,
            g.kernel_h,   g.kernel_w,    g.out_h, g.out_w,      g.stride_h,
            g.stride_w,   g.pad_h,       g.pad_w, g.dilation_h, g.dilation_w,
            g.groups,     static_cast<int64_t>(dtype), math,    device,
            static_cast<int64_t>(pass)};
  }
  bool operator==(const ConvAlgoKey& other) const { return fields() == other.fields(); }
};

struct ConvAlgoKeyHash {
  size_t operator()(const ConvAlgoKey& key) const {
    uint64_t h = 1469598103934665603ull;  // FNV-1a over the fields' bytes
    for (const int64_t field : key.fields()) {
      uint64_t v = static_cast<uint64_t>(field);
      for (int byte = 0; byte < 8; ++byte, v >>= 8) h = (h ^ (v & 0xffu)) * 1099511628211ull;
    }
    return static_cast<size_t>(h);
  }
};

// Thread-safe. Choice is whatever the caller stores per key (algorithm,
// workspace size, math type).
template <class Choice>
class ConvAlgoCache {
 public:
  // The stored choice for key; on a miss, search() is called, its result
  // stored and returned. The search runs under the lock, so that two threads
  // never time the same shape at once; a search that throws stores nothing.
  template <class Search>
  Choice find_or_search(const ConvAlgoKey& key, Search&& search) {
    const std::lock_guard<std::mutex> lock(mutex_);
    const auto found = choices_.find(key);
    if (found != choices_.end()) return found->second;
    Choice choice = std::forward<Search>(search)();
    choices_.emplace(key, choice);
    return choice;
  }

  size_t size() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return choices_.size();
  }

 private:
  mutable std::mutex mutex_;
  std::unordered_map<ConvAlgoKey, Choice, ConvAlgoKeyHash> choices_;
};

}  // namespace tpp::ops::cuda
