// Progress of a long phase on stdout. On a terminal: one line, rewritten in
// place at most a few times a second, with the step count, rate, running
// loss and the time left. Elsewhere (a log file, a pipe): nothing until the
// phase's closing line, so logs get exactly one line per epoch.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace tpp::train {

// Whether stdout is a terminal (and so gets the live line).
bool stdout_is_terminal();

// "1:02:03" or "4:05" for a number of seconds.
std::string format_duration(double seconds);

class ProgressLine {
 public:
  explicit ProgressLine(bool live);

  // A new phase of `total_steps` steps; `label` starts every line ("epoch 3/90").
  // `steps_after` is how many steps later phases still hold, for the run's ETA;
  // `done_at_start` the steps already done (a resumed phase): the rate counts
  // from there.
  void start(std::string label, int64_t total_steps, int64_t steps_after = 0, int64_t done_at_start = 0);
  // After step `done` (1-based) of the phase, having seen `images` images since start().
  void update(int64_t done, int64_t images, double mean_loss);
  // Replaces the live line (if any) with `text` and ends the line.
  void finish(const std::string& text);
  // Removes the live line (if any) and prints nothing: a phase paused midway.
  void clear();

 private:
  using Clock = std::chrono::steady_clock;
  bool live_;
  std::string label_;
  int64_t total_ = 0, steps_after_ = 0, done_at_start_ = 0;
  Clock::time_point started_, last_drawn_;
};

}  // namespace tpp::train
