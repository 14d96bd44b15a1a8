// fmt support: fmt::format("{}", tensor) prints values (abridged past 6 per
// dim) with dtype and shape, e.g. tensor([[1, 2], [3, 4]], f32, [2, 2]).
#pragma once

#include <fmt/format.h>

#include "engine/tensor.h"

template <>
struct fmt::formatter<tpp::Tensor> : fmt::formatter<std::string_view> {
  auto format(const tpp::Tensor& t, fmt::format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(t.str(), ctx);
  }
};
