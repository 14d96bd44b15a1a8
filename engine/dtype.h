// Element types. f32 is the working type, f64 serves gradient checks, i64
// holds labels and indices, u8 holds raw images and masks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

#include "engine/dtype_core.h"
#include "engine/error.h"

namespace tpp {

// Calls fn(T{}) with T the C++ type of a floating dtype; other dtypes are an
// error naming the op.
template <class Fn>
decltype(auto) dispatch_floating(DType t, std::string_view op, Fn&& fn) {
  switch (t) {
    case DType::f32: return fn(float{});
    case DType::f64: return fn(double{});
    default: fail("{}: expected a floating dtype (f32 or f64) but got {}", op, dtype_name(t));
  }
}

// Calls fn(T{}) for any dtype.
template <class Fn>
decltype(auto) dispatch_all(DType t, Fn&& fn) {
  switch (t) {
    case DType::f32: return fn(float{});
    case DType::f64: return fn(double{});
    case DType::i64: return fn(int64_t{});
    case DType::u8: return fn(uint8_t{});
  }
  fail("unknown dtype {}", static_cast<int>(t));
}

}  // namespace tpp
