// "Did you mean ...?" for mistyped names: commands, options, archs,
// datasets, methods. The nearest known name by edit distance, when it is
// near enough to be a typo and not another word.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tpp {

// Letters to insert, delete, substitute or swap (adjacent) to turn `a` into
// `b`, ignoring case.
size_t edit_distance(std::string_view a, std::string_view b);

// The known name `typed` most likely stands for: one it is a prefix of
// (`--epoch` for `--epochs`), else the nearest within a third of its length
// (at least one edit). None when nothing is close.
std::optional<std::string> nearest_name(std::string_view typed, const std::vector<std::string>& known);

// "; did you mean 'eval'?" or "" (to append to an error line).
std::string did_you_mean(std::string_view typed, const std::vector<std::string>& known);

}  // namespace tpp
