// The `tpp` command line: one sub-command per job.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "apps/commands.h"
#include "engine/distributed.h"
#include "engine/error.h"
#include "engine/math_mode.h"

namespace {
// A failing rank of a multi-process run ends the whole job at once, so that
// the other ranks do not wait for it until their collective timeout.
// Under a launcher, an error found before MPI starts (a bad setting, which
// every rank finds alike) still names the rank.
int report_error(std::string_view message) {
  if (tpp::dist::mpi_running())
    tpp::dist::abort_job(fmt::format("tpp: error on rank {}: {}", tpp::dist::detect_launch_env().rank, message), 1);
  int rank = -1;
  try {
    const tpp::dist::LaunchEnv env = tpp::dist::detect_launch_env();
    if (env.distributed()) rank = env.rank;
  } catch (const std::exception&) {  // an inconsistent launch environment: report the error itself
  }
  if (rank >= 0)
    fmt::print(stderr, "tpp: error on rank {}: {}\n", rank, message);
  else
    fmt::print(stderr, "tpp: error: {}\n", message);
  return 1;
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tpp: a from-scratch deep learning engine for Trainability Preserving Pruning"};
  app.require_subcommand(0, 1);
  bool show_version = false;
  app.add_flag("--version", show_version, "Print the engine, compiler and CUDA library versions");
  std::string math = "tf32";
  app.add_option("--math", math,
                 "CUDA convolution and matmul precision: tf32 (tensor cores, the default) or fp32 (full precision)")
      ->check(CLI::IsMember({"tf32", "fp32"}))
      ->capture_default_str();
  tpp::apps::add_commands(app);
  try {
    app.parse(argc, argv);
    tpp::set_math_mode(tpp::parse_math_mode(math));
    if (show_version) {
      fmt::print("{}", tpp::apps::version_text());
      return 0;
    }
    if (app.get_subcommands().empty()) {
      fmt::print("{}", app.help());
      return 0;
    }
    return tpp::apps::run_selected(app);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    const auto selected = app.get_subcommands();
    return report_error(tpp::apps::with_flag_names(e.what(), selected.empty() ? app : *selected.front()));
  }
}
