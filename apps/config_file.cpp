#include "apps/config_file.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <sstream>

#include "apps/usage.h"

namespace tpp::apps {

namespace {

struct LineReader {
  const std::string& source;
  int line;

  template <class... Args>
  [[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) const {
    usage_fail("{}:{}: {}", source, line, fmt::format(format, std::forward<Args>(args)...));
  }
};

std::string_view trim(std::string_view text) {
  const auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!text.empty() && space(text.front())) text.remove_prefix(1);
  while (!text.empty() && space(text.back())) text.remove_suffix(1);
  return text;
}

// The end of the quoted string that starts at text[0] (the index of its closing quote).
size_t closing_quote(std::string_view text, const LineReader& at) {
  const char quote = text.front();
  for (size_t i = 1; i < text.size(); ++i) {
    if (quote == '"' && text[i] == '\\') {
      ++i;
      continue;
    }
    if (text[i] == quote) return i;
  }
  at.fail("a string is not closed ({})", std::string(1, quote));
}

// The text before a comment, outside quoted strings.
std::string_view without_comment(std::string_view text, const LineReader& at) {
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '"' || text[i] == '\'') i += closing_quote(text.substr(i), at);
    else if (text[i] == '#') return text.substr(0, i);
  }
  return text;
}

std::string unescape(std::string_view body, const LineReader& at) {
  std::string out;
  for (size_t i = 0; i < body.size(); ++i) {
    if (body[i] != '\\') {
      out += body[i];
      continue;
    }
    const char next = i + 1 < body.size() ? body[++i] : '\0';
    switch (next) {
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      default: at.fail("unknown escape \\{} in a string", std::string(1, next));
    }
  }
  return out;
}

bool is_number(std::string_view text) {
  std::string plain(text);
  plain.erase(std::remove(plain.begin(), plain.end(), '_'), plain.end());  // TOML's 1_000
  if (plain.empty()) return false;
  size_t used = 0;
  try {
    const double value = std::stod(plain, &used);
    return used == plain.size() && std::isfinite(value);
  } catch (const std::exception&) {
    return false;
  }
}

std::string scalar(std::string_view text, const std::string& key, const LineReader& at) {
  text = trim(text);
  if (text.empty()) at.fail("'{}' has no value", key);
  if (text.front() == '"' || text.front() == '\'') {
    const size_t end = closing_quote(text, at);
    if (end + 1 != text.size()) at.fail("'{}': text after the closing quote: {}", key, std::string(text.substr(end + 1)));
    const std::string_view body = text.substr(1, end - 1);
    return text.front() == '"' ? unescape(body, at) : std::string(body);
  }
  if (text == "true" || text == "false" || is_number(text)) {
    std::string plain(text);
    plain.erase(std::remove(plain.begin(), plain.end(), '_'), plain.end());
    return plain;
  }
  at.fail("'{}': {} is not a number, a quoted string, true or false", key, std::string(text));
}

std::vector<std::string> array(std::string_view text, const std::string& key, const LineReader& at) {
  if (text.back() != ']') at.fail("'{}': an array must end with ] on the same line", key);
  const std::string_view body = trim(text.substr(1, text.size() - 2));
  std::vector<std::string> values;
  if (body.empty()) at.fail("'{}' has no value", key);
  size_t start = 0;
  for (size_t i = 0; i <= body.size(); ++i) {
    if (i < body.size() && (body[i] == '"' || body[i] == '\'')) {
      i += closing_quote(body.substr(i), at);
      continue;
    }
    if (i == body.size() || body[i] == ',') {
      values.push_back(scalar(body.substr(start, i - start), key, at));
      start = i + 1;
    }
  }
  return values;
}

bool is_key(std::string_view key) {
  return !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_';
  });
}

}  // namespace

std::vector<ConfigEntry> parse_config_text(const std::string& text, const std::string& source) {
  std::vector<ConfigEntry> entries;
  std::istringstream lines(text);
  std::string raw;
  for (int number = 1; std::getline(lines, raw); ++number) {
    const LineReader at{source, number};
    const std::string_view line = trim(without_comment(raw, at));
    if (line.empty()) continue;
    if (line.front() == '[')
      at.fail("sections ({}) are not read; write key = value lines", std::string(line));
    const size_t equals = line.find('=');
    if (equals == std::string_view::npos) at.fail("'{}' is not a key = value line", std::string(line));
    const std::string key(trim(line.substr(0, equals)));
    if (!is_key(key)) at.fail("'{}' is not an option name", key);
    const std::string_view value = trim(line.substr(equals + 1));
    const bool duplicate = std::any_of(entries.begin(), entries.end(), [&](const ConfigEntry& e) { return e.key == key; });
    if (duplicate) at.fail("'{}' is given twice", key);
    entries.push_back({number, key,
                       !value.empty() && value.front() == '[' ? array(value, key, at)
                                                              : std::vector<std::string>{scalar(value, key, at)}});
  }
  return entries;
}

}  // namespace tpp::apps
