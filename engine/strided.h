// Walks the elements of a shape for several operands with their own strides
// (in elements), calling fn(offsets...) with each operand's element offset.
// Adjacent dims that are contiguous for every operand are merged first, so a
// contiguous walk is one flat loop.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace tpp {

template <size_t N>
struct StridedLoop {
  Shape sizes;                           // merged sizes, outermost first
  std::array<Shape, N> strides;          // merged strides per operand

  StridedLoop(const Shape& shape, const std::array<const Shape*, N>& operand_strides) {
    for (size_t d = 0; d < shape.size(); ++d) {
      if (shape[d] == 1) continue;
      const bool mergeable = !sizes.empty() && [&] {
        for (size_t k = 0; k < N; ++k)
          if (strides[k].back() != (*operand_strides[k])[d] * shape[d]) return false;
        return true;
      }();
      if (mergeable) {
        sizes.back() *= shape[d];
        for (size_t k = 0; k < N; ++k) strides[k].back() = (*operand_strides[k])[d];
      } else {
        sizes.push_back(shape[d]);
        for (size_t k = 0; k < N; ++k) strides[k].push_back((*operand_strides[k])[d]);
      }
    }
    if (sizes.empty()) {
      sizes.push_back(1);
      for (size_t k = 0; k < N; ++k) strides[k].push_back(0);
    }
  }

  // fn(std::array<int64_t, N> offsets) for every element, innermost dim fastest.
  // A shape with a zero-size dim has no elements: fn is never called (the
  // odometer below would otherwise run the inner loop once before it looks
  // at an outer size of 0).
  template <class Fn>
  void run(Fn&& fn) const {
    for (const int64_t size : sizes)
      if (size == 0) return;  // no elements (an empty outer dim would still run one inner row)
    const size_t nd = sizes.size();
    std::vector<int64_t> index(nd, 0);
    std::array<int64_t, N> base{};
    const int64_t inner = sizes.back();
    std::array<int64_t, N> inner_stride;
    for (size_t k = 0; k < N; ++k) inner_stride[k] = strides[k].back();
    while (true) {
      std::array<int64_t, N> off = base;
      for (int64_t i = 0; i < inner; ++i) {
        fn(off);
        for (size_t k = 0; k < N; ++k) off[k] += inner_stride[k];
      }
      // advance the outer index (odometer)
      int64_t d = static_cast<int64_t>(nd) - 2;
      for (; d >= 0; --d) {
        ++index[d];
        for (size_t k = 0; k < N; ++k) base[k] += strides[k][d];
        if (index[d] < sizes[d]) break;
        for (size_t k = 0; k < N; ++k) base[k] -= strides[k][d] * sizes[d];
        index[d] = 0;
      }
      if (d < 0) return;
    }
  }
};

}  // namespace tpp
