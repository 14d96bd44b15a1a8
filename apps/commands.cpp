#include "apps/commands.h"

#include <map>

#include "engine/error.h"

namespace tpp::apps {

namespace {
std::map<CLI::App*, CommandRunner>& runners() {
  static std::map<CLI::App*, CommandRunner> table;
  return table;
}
}  // namespace

void register_command(CLI::App* sub, CommandRunner run) { runners()[sub] = std::move(run); }

void add_commands(CLI::App& app) {
  add_data_command(app);
  add_demo_command(app);
  add_info_command(app);
  add_eval_command(app);
  add_forward_command(app);
  add_prune_command(app);
}

int run_selected(CLI::App& app) {
  for (CLI::App* sub : app.get_subcommands()) {
    const auto it = runners().find(sub);
    TPP_CHECK(it != runners().end(), "no runner for command '{}'", sub->get_name());
    return it->second();
  }
  return 0;
}

}  // namespace tpp::apps
