// The `tpp` command line: one sub-command per job.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <unistd.h>

#include <csignal>

#include "apps/commands.h"
#include "apps/usage.h"
#include "engine/distributed.h"
#include "engine/error.h"
#include "engine/interrupt.h"
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

// The first Ctrl-C or SIGTERM asks the run to stop after its current step
// and save a checkpoint (engine/interrupt.h); a second one ends it at once.
extern "C" void on_stop_signal(int signal) {
  if (tpp::interrupt_requested() != 0) _exit(128 + signal);
  tpp::request_interrupt(signal);
}

void stop_cleanly_on_signals() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

// Commands whose runs checkpoint and resume; the others keep the default
// action (a Ctrl-C ends them at once).
bool runs_resumably(const CLI::App& app) { return app.got_subcommand("train") || app.got_subcommand("prune"); }

// "tpp: interrupted (SIGINT): <where it stopped>; resume with: tpp train --resume DIR"
// Rank 0 speaks for a data-parallel job: the ranks stopped together.
int report_interrupt(const CLI::App& app, const tpp::Interrupted& e) {
  if (launched_rank() > 0) return 128 + e.signal;
  const auto selected = app.get_subcommands();
  const std::string command = selected.empty() ? "tpp" : "tpp " + selected.front()->get_name();
  fmt::print(stderr, "tpp: interrupted ({}): {}; resume with: {} --resume {}\n",
             e.signal == SIGTERM ? "SIGTERM" : e.signal == SIGINT ? "SIGINT" : fmt::format("signal {}", e.signal),
             e.what(), command, e.run_dir);
  return 128 + e.signal;
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
    if (runs_resumably(app)) stop_cleanly_on_signals();
    return tpp::apps::run_selected(app);
  } catch (const tpp::Interrupted& e) {
    return report_interrupt(app, e);
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
