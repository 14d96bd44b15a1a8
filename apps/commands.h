// Registration of the `tpp` sub-commands. Each command lives in its own file
// and adds itself to the app here; run_selected() runs the one parsed.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>

namespace tpp::apps {

// Adds every sub-command to `app`.
void add_commands(CLI::App& app);
// Runs the parsed sub-command and returns the process exit code.
int run_selected(CLI::App& app);

// Library errors name a setting of a run by its config field in backticks
// (`stage_pr`, engine/error.h). On the command line settings are flags: each
// such name for which `command` has an option becomes the flag (--stage-pr);
// other text stays as it is.
std::string with_flag_names(std::string_view message, const CLI::App& command);

// The text of `tpp --version`.
std::string version_text();

// Each command file provides one of these.
using CommandRunner = std::function<int()>;
void register_command(CLI::App* sub, CommandRunner run);

// Options from TOML files for sub-commands. CLI11 2.1 reads config files for
// the top-level app only, so a sub-command adds its own `--config FILE`
// (may be repeated) and calls apply_config_files() before running: every
// configurable option not given on the command line takes the file's value
// (flags override files; an earlier file overrides a later one). Keys are the
// long option names without dashes (`batch-size = 128`), in the TOML subset
// of apps/config_file.h; sub.config_to_str() writes files in this form.
CLI::Option* add_config_option(CLI::App* sub);
// `config` (as config_to_str() writes it) with `key` set to `value`: the
// run's config.toml records the data folder actually used, so that a
// resume reads the same data wherever it was found.
std::string with_config_value(const std::string& config, const std::string& key, const std::string& value);
// The help text of --data-dir.
inline constexpr const char* kDataDirHelp =
    "The dataset's folder, or a data root holding it (default: $TPP_DATA, else ./data; then /usr/share/datasets)";
// An unknown key, a [section], a bad value or a missing file throws
// UsageError naming the file and the line; a file with a bad line is
// refused before any of its values is used.
void apply_config_files(CLI::App& sub);
// On `--resume`, before apply_config_files(): the options given on the
// command line whose values differ from the run's config.toml, as
// "batch-size: 128 -> 64". Options that do not change what the run computes
// (epochs: more of them continue a finished run; data-dir, workers,
// checkpoint-interval, log-interval, device) are left out. Without
// --allow-changes any change is a usage error naming them all.
std::vector<std::string> changes_on_resume(const CLI::App& sub, const std::string& run_dir);
// The same for the TOML text of one file; `source` names it in errors.
void apply_config_text(CLI::App& sub, const std::string& text, const std::string& source);

// --out RUN_DIR, --overwrite and --resume RUN_DIR of a command that writes a
// run directory (train, prune). --resume reads RUN_DIR/config.toml as if it
// were given with --config (`config`, from add_config_option), so flags
// still override the run's options (--epochs to extend it); it excludes the
// other two. The strings must outlive the parse (a command's options struct).
void add_run_dir_options(CLI::App* sub, CLI::Option* config, std::string& out, bool& overwrite, std::string& resume,
                         const std::string& default_out);

CLI::App* add_demo_command(CLI::App& app);
CLI::App* add_data_command(CLI::App& app);  // apps/cmd_data.cpp
CLI::App* add_info_command(CLI::App& app);  // apps/cmd_info.cpp
CLI::App* add_eval_command(CLI::App& app);  // apps/cmd_eval.cpp
CLI::App* add_forward_command(CLI::App& app);  // apps/cmd_forward.cpp
CLI::App* add_prune_command(CLI::App& app);  // apps/cmd_prune.cpp
CLI::App* add_train_command(CLI::App& app);  // apps/cmd_train.cpp
CLI::App* add_repro_command(CLI::App& app);  // apps/cmd_repro.cpp
CLI::App* add_jsv_command(CLI::App& app);  // apps/cmd_jsv.cpp
CLI::App* add_compare_command(CLI::App& app);  // apps/cmd_compare.cpp
CLI::App* add_list_command(CLI::App& app);  // apps/cmd_list.cpp
CLI::App* add_completion_command(CLI::App& app);  // apps/cmd_completion.cpp

}  // namespace tpp::apps
