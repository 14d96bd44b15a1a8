// Numbers written for people: thousands separators and counted nouns.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tpp {

// 93738 -> "93,738"; -1234567 -> "-1,234,567".
std::string with_commas(int64_t value);

// (1, "epoch") -> "1 epoch"; (2, "epoch") -> "2 epochs"; (12000, "batch") -> "12,000 batches".
std::string counted(int64_t count, std::string_view noun);

}  // namespace tpp
