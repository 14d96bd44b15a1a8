#include "apps/commands.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "apps/config_file.h"
#include "apps/usage.h"
#include "engine/error.h"
#include "engine/suggest.h"

namespace tpp::apps {

namespace {
std::map<CLI::App*, CommandRunner>& runners() {
  static std::map<CLI::App*, CommandRunner> table;
  return table;
}
}  // namespace

void register_command(CLI::App* sub, CommandRunner run) { runners()[sub] = std::move(run); }

namespace {
bool is_setting_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}
}  // namespace

std::string with_flag_names(std::string_view message, const CLI::App& command) {
  std::string out;
  size_t at = 0;
  while (at < message.size()) {
    const size_t open = message.find('`', at);
    const size_t close = open == std::string_view::npos ? open : message.find('`', open + 1);
    if (close == std::string_view::npos) break;
    const std::string_view name = message.substr(open + 1, close - open - 1);
    std::string flag = "--" + std::string(name);
    std::replace(flag.begin(), flag.end(), '_', '-');
    out += message.substr(at, open - at);
    if (is_setting_name(name) && command.get_option_no_throw(flag) != nullptr) {
      out += flag;
      at = close + 1;
    } else {  // not a setting of this command: the text stays, the closing backtick may open the next
      out += '`';
      out += name;
      at = close;
    }
  }
  out += message.substr(at);
  return out;
}

CLI::Option* add_config_option(CLI::App* sub) {
  return sub->add_option("--config", "Read options from a TOML file (flags override it)")
      ->type_name("FILE")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->configurable(false);
}

void apply_config_text(CLI::App& sub, const std::string& text, const std::string& source) {
  const std::string command = sub.get_name();
  // Every line is read before any value is used: a file with a bad line is refused whole.
  std::vector<ConfigEntry> entries;
  try {
    entries = parse_config_text(text, source);
  } catch (const UsageError& e) {
    usage_fail("{}: --config {}", command, e.what());
  }
  std::vector<std::string> keys;
  for (const CLI::Option* option : sub.get_options())
    if (option->get_configurable() && !option->get_lnames().empty()) keys.push_back(option->get_lnames().front());
  for (const ConfigEntry& entry : entries) {
    const std::string at = fmt::format("{}: --config {}:{}", command, source, entry.line);
    CLI::Option* option = sub.get_option_no_throw("--" + entry.key);
    if (option == nullptr || !option->get_configurable())
      usage_fail("{}: unknown option '{}'{}", at, entry.key, did_you_mean(entry.key, keys));
    if (option->count() > 0) continue;  // given on the command line (or by an earlier file)
    try {
      option->add_result(entry.values);
      option->run_callback();
    } catch (const CLI::Error& e) {  // a value of the wrong type or out of range
      std::string why = e.what();
      if (why.starts_with(option->get_name() + ": ")) why.erase(0, option->get_name().size() + 2);
      usage_fail("{}: '{}' {}", at, entry.key, why);
    }
  }
}

std::string with_config_value(const std::string& config, const std::string& key, const std::string& value) {
  std::istringstream lines(config);
  std::string out, line;
  bool replaced = false;
  const std::string entry = fmt::format("{}={}", key, nlohmann::json(value).dump());  // a TOML basic string
  while (std::getline(lines, line)) {
    if (line.starts_with(key + "=") || line.starts_with(key + " =")) {
      line = entry;
      replaced = true;
    }
    out += line + "\n";
  }
  if (!replaced) out += entry + "\n";
  return out;
}

void apply_config_files(CLI::App& sub) {
  const CLI::Option* config = sub.get_option("--config");
  for (const std::string& file : config->results()) {
    if (!std::filesystem::is_regular_file(file)) usage_fail("{}: --config {}: no such file", sub.get_name(), file);
    std::ifstream in(file);
    std::ostringstream text;
    text << in.rdbuf();
    TPP_CHECK(in.good() || in.eof(), "{}: --config {}: cannot read it", sub.get_name(), file);
    apply_config_text(sub, text.str(), file);
  }
}

namespace {
// A value as a comparable text: numbers by value ("0.10" is "0.1"), flags as true/false.
std::string comparable(const std::string& text) {
  if (text == "true" || text == "1") return "true";
  if (text == "false" || text == "0") return "false";
  try {
    size_t used = 0;
    const double value = std::stod(text, &used);
    if (used == text.size()) return fmt::format("{}", value);
  } catch (const std::exception&) {
  }
  return text;
}

std::string joined(const std::vector<std::string>& values) {
  std::string out;
  for (const std::string& v : values) out += (out.empty() ? "" : ",") + v;
  return out;
}
}  // namespace

std::vector<std::string> changes_on_resume(const CLI::App& sub, const std::string& run_dir) {
  static const std::vector<std::string> harmless = {"epochs",  "data-dir",     "workers", "checkpoint-interval",
                                                    "log-interval", "device"};
  const std::filesystem::path file = std::filesystem::path(run_dir) / "config.toml";
  std::ifstream in(file);
  std::ostringstream text;
  text << in.rdbuf();
  std::vector<ConfigEntry> entries;
  try {
    entries = parse_config_text(text.str(), file.string());
  } catch (const UsageError& e) {
    usage_fail("{}: --resume {}", sub.get_name(), e.what());
  }
  std::vector<std::string> changes;
  for (const ConfigEntry& entry : entries) {
    const CLI::Option* option = sub.get_option_no_throw("--" + entry.key);
    if (option == nullptr || option->count() == 0 ||
        std::find(harmless.begin(), harmless.end(), entry.key) != harmless.end())
      continue;
    const std::string was = joined(entry.values), now = joined(option->results());
    if (comparable(was) != comparable(now)) changes.push_back(fmt::format("{}: {} -> {}", entry.key, was, now));
  }
  const CLI::Option* allow = sub.get_option_no_throw("--allow-changes");
  if (!changes.empty() && (allow == nullptr || allow->count() == 0)) {
    std::string listed;
    for (const std::string& c : changes) listed += (listed.empty() ? "--" : ", --") + c;
    usage_fail("{}: --resume {}: {} the run's config.toml ({}); resume without {}, or pass --allow-changes to "
               "continue with {} (logged in log.jsonl and the report)",
               sub.get_name(), run_dir, changes.size() == 1 ? "an option differs from" : "options differ from",
               listed, changes.size() == 1 ? "it" : "them", changes.size() == 1 ? "the change" : "the changes");
  }
  return changes;
}

void add_commands(CLI::App& app) {
  add_data_command(app);
  add_demo_command(app);
  add_info_command(app);
  add_eval_command(app);
  add_jsv_command(app);
  add_forward_command(app);
  add_prune_command(app);
  add_train_command(app);
  add_repro_command(app);
  add_compare_command(app);
  add_list_command(app);
  add_completion_command(app);
}

int run_selected(CLI::App& app) {
  for (CLI::App* sub : app.get_subcommands()) {
    const auto it = runners().find(sub);
    TPP_CHECK(it != runners().end(), "no runner for command '{}'", sub->get_name());
    return it->second();
  }
  return 0;
}

void add_run_dir_options(CLI::App* sub, CLI::Option* config, std::string& out, bool& overwrite, std::string& resume,
                         const std::string& default_out) {
  CLI::Option* out_option =
      sub->add_option("--out", out, fmt::format("Run directory (default: {})", default_out))->configurable(false);
  CLI::Option* overwrite_option =
      sub->add_flag("--overwrite", overwrite, "Replace the run in an existing --out directory")->configurable(false);
  CLI::Option* resume_option = sub->add_option_function<std::string>(
         "--resume",
         [&resume, config](const std::string& dir) {
           resume = dir;
           const std::filesystem::path file = std::filesystem::path(dir) / "config.toml";
           if (!std::filesystem::is_regular_file(file))
             throw CLI::ValidationError("--resume", fmt::format("{} has no config.toml (not a run directory)", dir));
           config->add_result(file.string());
         },
         "Continue the run in RUN_DIR from its last checkpoint")
      ->type_name("RUN_DIR")
      ->configurable(false)
      ->trigger_on_parse()
      ->excludes(out_option)
      ->excludes(overwrite_option);
  sub->add_flag("--allow-changes")
      ->description(
          "--resume: accept options that change the run's meaning (batch size, LR, ...); logged in log.jsonl and the "
          "report")
      ->configurable(false)
      ->needs(resume_option);
}

}  // namespace tpp::apps
