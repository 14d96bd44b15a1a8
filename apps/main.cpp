// The `tpp` command line: one sub-command per job.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "apps/commands.h"
#include "apps/usage.h"
#include "engine/distributed.h"
#include "engine/error.h"
#include "engine/math_mode.h"
#include "ops/cpu/conv_path.h"

namespace {
// The rank named by the launcher's environment, or -1 outside a launcher
// (and when that environment is inconsistent: the error itself is reported).
int launched_rank() {
  try {
    const tpp::dist::LaunchEnv env = tpp::dist::detect_launch_env();
    return env.distributed() ? env.rank : -1;
  } catch (const std::exception&) {
    return -1;
  }
}

// A failing rank of a multi-process run ends the whole job at once, so that
// the other ranks do not wait for it until their collective timeout. Under a
// launcher, an error found before MPI starts (a bad option) names the rank too.
int report_error(std::string_view message, int status = 1) {
  if (tpp::dist::mpi_running())
    tpp::dist::abort_job(fmt::format("tpp: error on rank {}: {}", tpp::dist::detect_launch_env().rank, message),
                         status);
  if (const int rank = launched_rank(); rank >= 0)
    fmt::print(stderr, "tpp: error on rank {}: {}\n", rank, message);
  else
    fmt::print(stderr, "tpp: error: {}\n", message);
  return status;
}

// Library errors name settings by their config fields (`stage_pr`); the user
// typed flags (--stage-pr).
std::string with_flag_names(const CLI::App& app, std::string_view message) {
  const auto selected = app.get_subcommands();
  return tpp::apps::with_flag_names(message, selected.empty() ? app : *selected.front());
}

bool asks_for_help(const CLI::ParseError& e) {
  return dynamic_cast<const CLI::CallForHelp*>(&e) != nullptr ||
         dynamic_cast<const CLI::CallForAllHelp*>(&e) != nullptr;
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
      ->check(tpp::apps::one_of({"tf32", "fp32"}))
      ->capture_default_str();
  std::string cpu_conv;
  app.add_option("--cpu-conv", cpu_conv,
                 "CPU convolutions in f32: onednn (the default) or reference (im2col + GEMM); default: "
                 "$TPP_CPU_CONV, else onednn")
      ->check(CLI::IsMember({"onednn", "reference"}));
  tpp::apps::add_commands(app);
  try {
    app.parse(argc, argv);
    tpp::set_math_mode(tpp::parse_math_mode(math));
    if (!cpu_conv.empty()) tpp::ops::set_cpu_conv_path(tpp::ops::parse_cpu_conv_path(cpu_conv));
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
    if (asks_for_help(e)) return app.exit(e);
    return report_error(tpp::apps::usage_error_text(app, e), tpp::apps::kUsageExitStatus);
  } catch (const tpp::apps::UsageError& e) {
    return report_error(with_flag_names(app, e.what()), tpp::apps::kUsageExitStatus);
  } catch (const tpp::SettingError& e) {
    return report_error(with_flag_names(app, e.what()), tpp::apps::kUsageExitStatus);
  } catch (const std::exception& e) {
    return report_error(with_flag_names(app, e.what()));
  }
}
