#include "engine/suggest.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace tpp {

namespace {
char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }
}  // namespace

size_t edit_distance(std::string_view a, std::string_view b) {
  // Optimal string alignment distance over three rolling rows.
  std::vector<size_t> before(b.size() + 1), previous(b.size() + 1), current(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) previous[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t substitution = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, previous[j - 1] + substitution});
      const bool swapped = i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) && lower(a[i - 2]) == lower(b[j - 1]);
      if (swapped) current[j] = std::min(current[j], before[j - 2] + 1);
    }
    std::swap(before, previous);
    std::swap(previous, current);
  }
  return previous[b.size()];
}

std::optional<std::string> nearest_name(std::string_view typed, const std::vector<std::string>& known) {
  const auto starts_with_typed = [&](const std::string& name) {
    return name.size() > typed.size() &&
           std::equal(typed.begin(), typed.end(), name.begin(), [](char x, char y) { return lower(x) == lower(y); });
  };
  const size_t leading_dashes = typed.find_first_not_of('-');
  const bool more_than_dashes = leading_dashes != std::string_view::npos && typed.size() - leading_dashes >= 2;
  if (more_than_dashes && std::count_if(known.begin(), known.end(), starts_with_typed) == 1)
    return *std::find_if(known.begin(), known.end(), starts_with_typed);
  const size_t allowed = std::max<size_t>(1, typed.size() / 3);
  std::optional<std::string> best;
  size_t best_distance = allowed + 1;
  for (const std::string& name : known) {
    const size_t d = edit_distance(typed, name);
    if (d < best_distance) best = name, best_distance = d;
  }
  return best;
}

std::string did_you_mean(std::string_view typed, const std::vector<std::string>& known) {
  const std::optional<std::string> nearest = nearest_name(typed, known);
  return nearest ? fmt::format("; did you mean '{}'?", *nearest) : std::string();
}

}  // namespace tpp
