#include "apps/usage.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <charconv>
#include <cmath>

#include "engine/device.h"
#include "engine/lr_schedule.h"
#include "engine/suggest.h"

namespace tpp::apps {

namespace {

bool parses_as_integer(const std::string& text, long long& value) {
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value);
  return error == std::errc() && stop == end;
}

bool parses_as_number(const std::string& text, double& value) {
  if (text.empty()) return false;
  size_t used = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    return false;
  }
  return used == text.size() && std::isfinite(value);
}

CLI::Validator integer_check(const std::string& what, long long least) {
  return CLI::Validator(
      [what, least](std::string& text) {
        long long value = 0;
        if (!parses_as_integer(text, value) || value < least) return fmt::format("must be {} (got {})", what, text);
        return std::string();
      },
      "INT", what);
}

CLI::Validator number_check(const std::string& what, bool zero_allowed) {
  return CLI::Validator(
      [what, zero_allowed](std::string& text) {
        double value = 0;
        if (!parses_as_number(text, value) || value < 0 || (value == 0 && !zero_allowed))
          return fmt::format("must be {} (got {})", what, text);
        return std::string();
      },
      "NUMBER", what);
}

std::vector<std::string> command_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) names.push_back(sub->get_name());
  return names;
}

// The sub-command being parsed when the error came, else the program.
const CLI::App& active_command(const CLI::App& app) {
  const std::vector<CLI::App*> parsed = app.get_subcommands();
  return parsed.empty() ? app : *parsed.front();
}

std::string unexpected_argument_text(const CLI::App& app) {
  const CLI::App& command = active_command(app);
  const std::vector<std::string> left = app.remaining(true);
  if (left.empty()) return "unexpected arguments";
  std::string first = left.front();
  if (first.starts_with("--")) first = first.substr(0, first.find('='));
  if (first.starts_with("-")) {
    const std::string where = &command == &app ? "tpp" : "tpp " + command.get_name();
    return fmt::format("{} has no option '{}'{}", where, first, did_you_mean(first, option_names(command)));
  }
  if (&command == &app)
    return fmt::format("unknown command '{}'{}", first, did_you_mean(first, command_names(app)));
  return fmt::format("tpp {}: unexpected argument '{}'", command.get_name(), first);
}

}  // namespace

CLI::Validator positive_integer() { return integer_check("a positive integer", 1); }
CLI::Validator non_negative_integer() { return integer_check("a non-negative integer", 0); }
CLI::Validator positive_number() { return number_check("a positive number", false); }
CLI::Validator non_negative_number() { return number_check("a non-negative number", true); }

CLI::Validator pruning_ratio() {
  return CLI::Validator(
      [](std::string& text) {
        double value = 0;
        if (!parses_as_number(text, value) || value < 0 || value >= 1)
          return fmt::format("must be a ratio from 0 up to but not including 1 (got {})", text);
        return std::string();
      },
      "RATIO", "ratio");
}

CLI::Validator lr_schedule_text() {
  return CLI::Validator(
      [](std::string& text) {
        try {
          LrSchedule::parse_milestones(text);
        } catch (const Error& e) {
          // "lr schedule '<text>': <reason>"
          const std::string message = e.what();
          const size_t reason = message.find("': ");
          return fmt::format("is not a valid schedule: {}",
                             reason == std::string::npos ? message : message.substr(reason + 3));
        }
        return std::string();
      },
      "SCHEDULE", "epoch:lr,...");
}

CLI::Validator device_name() {
  return CLI::Validator(
      [](std::string& text) {
        try {
          Device::parse(text);
        } catch (const Error&) {
          return fmt::format("must be cpu, cuda or cuda:N (got '{}')", text);
        }
        return std::string();
      },
      "DEVICE", "cpu, cuda or cuda:N");
}

CLI::Validator one_of(std::vector<std::string> names) {
  const std::string listed = fmt::format("{}", fmt::join(names, ", "));
  return CLI::Validator(
      [names, listed](std::string& text) {
        if (std::find(names.begin(), names.end(), text) != names.end()) return std::string();
        return fmt::format("must be one of {} (got '{}'){}", listed, text, did_you_mean(text, names));
      },
      "{" + fmt::format("{}", fmt::join(names, ",")) + "}", "one of " + listed);
}

std::vector<std::string> option_names(const CLI::App& command) {
  std::vector<std::string> names;
  for (const CLI::Option* option : command.get_options())
    for (const std::string& name : option->get_lnames()) names.push_back("--" + name);
  return names;
}

std::string usage_error_text(const CLI::App& app, const CLI::ParseError& error) {
  if (dynamic_cast<const CLI::ExtrasError*>(&error) != nullptr) return unexpected_argument_text(app);
  std::string text = error.what();
  text = text.substr(0, text.find('\n'));
  // CLI11 writes "--name: message"; ours read "--name must be ...".
  if (const size_t colon = text.find(": "); colon != std::string::npos && text.find(' ') > colon) {
    const std::string_view rest = std::string_view(text).substr(colon + 2);
    if (rest.starts_with("must be ") || rest.starts_with("is ")) text.erase(colon, 1);
  }
  return text;
}

}  // namespace tpp::apps
