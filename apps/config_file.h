// The TOML subset of `--config` files and run directories' config.toml:
// `key = value` lines, where a value is a number, a quoted string, true or
// false, or a one-line [array] of those; `#` starts a comment. Anything
// else (a [section], a stray `[[`, an unquoted word) is an error naming the
// file and the line, raised before any value is used.
#pragma once

#include <string>
#include <vector>

namespace tpp::apps {

struct ConfigEntry {
  int line = 0;                     // 1-based
  std::string key;
  std::vector<std::string> values;  // one for a scalar; an array's elements
};

// Throws UsageError "SOURCE:LINE: <what is wrong>".
std::vector<ConfigEntry> parse_config_text(const std::string& text, const std::string& source);

}  // namespace tpp::apps
