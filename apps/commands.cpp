#include "apps/commands.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "engine/error.h"

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
  std::vector<CLI::ConfigItem> items;
  try {
    std::istringstream in(text);
    items = CLI::ConfigTOML().from_config(in);
  } catch (const CLI::Error& e) {
    fail("{}: --config {}: {}", command, source, e.what());
  }
  for (const CLI::ConfigItem& item : items) {
    TPP_CHECK(item.parents.empty(), "{}: --config {}: sections ([{}]) are not read; write key = value lines", command,
              source, item.parents.front());
    CLI::Option* option = sub.get_option_no_throw("--" + item.name);
    TPP_CHECK(option != nullptr && option->get_configurable(), "{}: --config {}: unknown option '{}'", command, source,
              item.name);
    if (option->count() > 0) continue;  // given on the command line (or by an earlier file)
    // An empty array ("key = []", or "key = [" cut short) would reach the option's callback with no value.
    TPP_CHECK(!item.inputs.empty(), "{}: --config {}: '{}' has no value", command, source, item.name);
    try {
      option->add_result(item.inputs);
      option->run_callback();
    } catch (const CLI::Error& e) {  // a value of the wrong type or out of range
      fail("{}: --config {}: {}", command, source, e.what());
    }
  }
}

void apply_config_files(CLI::App& sub) {
  const CLI::Option* config = sub.get_option("--config");
  for (const std::string& file : config->results()) {
    TPP_CHECK(std::filesystem::is_regular_file(file), "{}: --config {}: no such file", sub.get_name(), file);
    std::ifstream in(file);
    std::ostringstream text;
    text << in.rdbuf();
    TPP_CHECK(in.good() || in.eof(), "{}: --config {}: cannot read it", sub.get_name(), file);
    apply_config_text(sub, text.str(), file);
  }
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
  sub->add_option_function<std::string>(
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
}

}  // namespace tpp::apps
