// Errors: one exception type whose message is one line naming the op, the
// shapes or the file involved. TPP_CHECK formats that line with fmt.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace tpp {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A setting the caller chose cannot work (an unknown architecture, a finished
// run resumed without more epochs, a plan that prunes nothing): the caller's
// mistake rather than the data's or the machine's. The tpp program reports it
// as a usage error (exit status 2).
struct SettingError : Error {
  using Error::Error;
};

template <class... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

template <class... Args>
[[noreturn]] void setting_fail(fmt::format_string<Args...> format, Args&&... args) {
  throw SettingError(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace tpp

#define TPP_CHECK(cond, ...)         \
  do {                               \
    if (!(cond)) ::tpp::fail(__VA_ARGS__); \
  } while (0)

// Errors about a setting of a run name the setting by its config field in
// backticks ("`stage_pr` '*:0.9' prunes no layer"): the library knows config
// structs, not command lines. A front end that sets the field by some other
// name rewrites it (the tpp program: `stage_pr` -> --stage-pr,
// apps/commands.h with_flag_names).
