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

// The text of `tpp --version`.
std::string version_text();

// Each command file provides one of these.
using CommandRunner = std::function<int()>;
void register_command(CLI::App* sub, CommandRunner run);

CLI::App* add_demo_command(CLI::App& app);
CLI::App* add_data_command(CLI::App& app);  // apps/cmd_data.cpp
CLI::App* add_info_command(CLI::App& app);  // apps/cmd_info.cpp
CLI::App* add_eval_command(CLI::App& app);  // apps/cmd_eval.cpp
CLI::App* add_forward_command(CLI::App& app);  // apps/cmd_forward.cpp
CLI::App* add_prune_command(CLI::App& app);  // apps/cmd_prune.cpp

}  // namespace tpp::apps
