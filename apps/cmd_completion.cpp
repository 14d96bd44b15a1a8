// `tpp completion bash`: a bash completion script for the commands, their
// options and the names --arch, --dataset and --method take, written from
// the program's own option tables (so it never goes stale). Install with
//   tpp completion bash > ~/.local/share/bash-completion/completions/tpp
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "apps/commands.h"
#include "apps/usage.h"
#include "models/zoo.h"
#include "prune/method.h"

namespace tpp::apps {

namespace {

std::string joined(const std::vector<std::string>& words) { return fmt::format("{}", fmt::join(words, " ")); }

std::vector<std::string> method_names() {
  std::vector<std::string> names;
  for (const prune::Method& m : prune::known_methods()) names.push_back(m.name);
  return names;
}

std::string bash_script(const CLI::App& app) {
  std::vector<std::string> commands;
  std::string per_command;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    commands.push_back(sub->get_name());
    const std::vector<std::string> options = option_names(*sub);
    per_command += fmt::format("    {}) words=\"{}\" ;;\n", sub->get_name(), joined(options));
  }
  std::vector<std::string> top = commands;
  for (const std::string& option : option_names(app)) top.push_back(option);
  return fmt::format(R"(# bash completion for tpp; written by `tpp completion bash`.
_tpp() {{
  local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}" command="" words="" w
  for w in "${{COMP_WORDS[@]:1:COMP_CWORD-1}}"; do
    case "$w" in {commands_alternatives}) command="$w"; break ;; esac
  done
  case "$prev" in
    --arch) COMPREPLY=($(compgen -W "{archs}" -- "$cur")); return ;;
    --dataset) COMPREPLY=($(compgen -W "{datasets}" -- "$cur")); return ;;
    --method) COMPREPLY=($(compgen -W "{methods}" -- "$cur")); return ;;
    --config|--checkpoint|--base|--input|--output) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --data-dir|--out|--resume) COMPREPLY=($(compgen -d -- "$cur")); return ;;
  esac
  case "$command" in
    "") words="{top}" ;;
{per_command}  esac
  if [[ "$command" == compare && "$cur" != -* ]]; then
    COMPREPLY=($(compgen -d -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
  fi
}}
complete -F _tpp tpp
)",
                     fmt::arg("commands_alternatives", fmt::join(commands, "|")),
                     fmt::arg("archs", joined(models::known_archs())),
                     fmt::arg("datasets", "mnist fashion-mnist cifar10 cifar100 imagenet imagefolder:"),
                     fmt::arg("methods", joined(method_names())), fmt::arg("top", joined(top)),
                     fmt::arg("per_command", per_command));
}

}  // namespace

CLI::App* add_completion_command(CLI::App& app) {
  auto shell = std::make_shared<std::string>();
  CLI::App* sub = app.add_subcommand("completion", "Print a shell completion script (bash)");
  sub->add_option("shell", *shell, "The shell: bash")->required()->check(one_of({"bash"}));
  sub->footer(
      "Examples:\n"
      "  source <(tpp completion bash)\n"
      "  tpp completion bash > ~/.local/share/bash-completion/completions/tpp");
  register_command(sub, [shell, &app] {
    fmt::print("{}", bash_script(app));
    return 0;
  });
  return sub;
}

}  // namespace tpp::apps
