#include "engine/text.h"

#include <fmt/format.h>

namespace tpp {

std::string with_commas(int64_t value) {
  const std::string digits = std::to_string(value < 0 ? -static_cast<uint64_t>(value) : static_cast<uint64_t>(value));
  std::string out = value < 0 ? "-" : "";
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string counted(int64_t count, std::string_view noun) {
  std::string word(noun);
  const bool sibilant = noun.ends_with("tch") || noun.ends_with("sh") || noun.ends_with("ss") || noun.ends_with("x");
  if (count != 1) word += sibilant ? "es" : "s";
  return fmt::format("{} {}", with_commas(count), word);
}

}  // namespace tpp
