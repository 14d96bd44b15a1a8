// A request to stop a long run cleanly (Ctrl-C, SIGTERM): a signal handler
// records it, the training loop polls it between steps and stops where a
// checkpoint can be written (train/trainer.h). Recording is async-signal-safe
// (one lock-free atomic store); the library installs no handler itself: the
// program does (apps/main.cpp).
#pragma once

#include <string>
#include <utility>

#include "engine/error.h"

namespace tpp {

// Records that the run should stop, and why (the signal number, > 0).
// Safe to call from a signal handler.
void request_interrupt(int signal) noexcept;
// The signal of the pending request, 0 when none.
int interrupt_requested() noexcept;
// Forgets the request (tests; a program that goes on after handling it).
void clear_interrupt() noexcept;

// Thrown once a run stopped at a request and saved its state: the run
// directory holds a checkpoint to resume from.
struct Interrupted : Error {
  Interrupted(int signal_number, std::string run_directory, const std::string& message)
      : Error(message), signal(signal_number), run_dir(std::move(run_directory)) {}
  int signal;
  std::string run_dir;  // what to resume
};

}  // namespace tpp
