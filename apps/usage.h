// Usage errors of the `tpp` program: how it was called, not what happened
// while it ran. Each is one line `tpp: error: <what>` and exit status 2
// (errors of the run exit 1), as git, cargo and Python's argparse do.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "engine/error.h"

namespace tpp::apps {

inline constexpr int kUsageExitStatus = 2;

// A value or a combination of options the program refuses before it starts.
struct UsageError : Error {
  using Error::Error;
};

template <class... Args>
[[noreturn]] void usage_fail(fmt::format_string<Args...> format, Args&&... args) {
  throw UsageError(fmt::format(format, std::forward<Args>(args)...));
}

// Runs `look_up` (of a name the user typed: an arch, a dataset, a method)
// and reports its failure as a usage error.
template <class LookUp>
auto as_usage_error(LookUp&& look_up) -> decltype(look_up()) {
  try {
    return look_up();
  } catch (const UsageError&) {
    throw;
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
}

// Option checks whose failures read "--batch-size must be a positive
// integer (got 0)". They check the text as typed, so "-1" never wraps into
// a huge unsigned value.
CLI::Validator positive_integer();
CLI::Validator non_negative_integer();
CLI::Validator positive_number();
CLI::Validator non_negative_number();
// A ratio in [0, 1).
CLI::Validator pruning_ratio();
// A step LR schedule "epoch:lr,..." as LrSchedule::parse_milestones reads it.
CLI::Validator lr_schedule_text();
// A device as Device::parse reads it: cpu, cuda or cuda:N.
CLI::Validator device_name();
// One of `names` (matched exactly); a near miss is suggested.
CLI::Validator one_of(std::vector<std::string> names);

// The one line (without "tpp: error: ") for a CLI11 parse error of `app`:
// a mistyped command or option gets the nearest known one suggested.
std::string usage_error_text(const CLI::App& app, const CLI::ParseError& error);

// Every long option name of `command` ("--epochs", ...), for suggestions.
std::vector<std::string> option_names(const CLI::App& command);

}  // namespace tpp::apps
