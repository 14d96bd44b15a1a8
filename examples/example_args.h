// The examples' few command-line settings ("--steps 20 --data-dir DIR"):
// enough for CI to run them briefly, without a command-line library.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>

class ExampleArgs {
 public:
  // `known` maps each setting to its default.
  ExampleArgs(int argc, char** argv, std::map<std::string, std::string> known) : values_(std::move(known)) {
    for (int i = 1; i < argc; ++i) {
      const std::string flag = argv[i];
      if (!flag.starts_with("--") || !values_.count(flag.substr(2)) || i + 1 == argc)
        throw std::invalid_argument("unknown setting or missing value: " + flag + usage());
      values_[flag.substr(2)] = argv[++i];
    }
  }
  const std::string& text(const std::string& name) const { return values_.at(name); }
  int64_t number(const std::string& name) const { return std::stoll(values_.at(name)); }

 private:
  std::string usage() const {
    std::string out = " (settings:";
    for (const auto& [name, value] : values_) out += " --" + name + " [" + value + "]";
    return out + ")";
  }
  std::map<std::string, std::string> values_;
};
