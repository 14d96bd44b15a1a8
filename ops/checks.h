// Argument checks shared by ops. Every failure names the op and the shapes.
#pragma once

#include <string_view>

#include "engine/tensor.h"

namespace tpp::ops {

// Same dtype and same device for every tensor.
void check_same_dtype_device(std::string_view op, const Tensor& a, const Tensor& b);
void check_floating(std::string_view op, const Tensor& t);
void check_dim(std::string_view op, std::string_view what, const Tensor& t, int64_t ndim);

// The broadcast of two shapes (numpy rules), or an error naming the op.
Shape broadcast_shapes(std::string_view op, const Shape& a, const Shape& b);

}  // namespace tpp::ops
