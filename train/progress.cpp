#include "train/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace tpp::train {

namespace {
constexpr auto kRedrawInterval = std::chrono::milliseconds(200);
constexpr const char* kClearLine = "\r\033[K";
}  // namespace

bool stdout_is_terminal() { return ::isatty(::fileno(stdout)) == 1; }

std::string format_duration(double seconds) {
  const auto total = static_cast<int64_t>(std::llround(std::max(seconds, 0.0)));
  const int64_t h = total / 3600, m = total / 60 % 60, s = total % 60;
  return h > 0 ? fmt::format("{}:{:02}:{:02}", h, m, s) : fmt::format("{}:{:02}", m, s);
}

ProgressLine::ProgressLine(bool live) : live_(live) {}

void ProgressLine::start(std::string label, int64_t total_steps, int64_t steps_after, int64_t done_at_start) {
  label_ = std::move(label);
  total_ = total_steps;
  steps_after_ = steps_after;
  done_at_start_ = done_at_start;
  started_ = Clock::now();
  last_drawn_ = started_ - kRedrawInterval;
}

void ProgressLine::update(int64_t done, int64_t images, double mean_loss) {
  if (!live_) return;
  const Clock::time_point now = Clock::now();
  if (now - last_drawn_ < kRedrawInterval && done < total_) return;
  last_drawn_ = now;
  const double elapsed = std::chrono::duration<double>(now - started_).count();
  const double per_step = elapsed / static_cast<double>(std::max<int64_t>(done - done_at_start_, 1));
  const double epoch_left = per_step * static_cast<double>(total_ - done);
  std::string eta = format_duration(epoch_left);
  if (steps_after_ > 0) eta += fmt::format(" (run {})", format_duration(epoch_left + per_step * static_cast<double>(steps_after_)));
  fmt::print("{}{}  {}/{}  {:.0f} img/s  loss {:.4f}  ETA {}", kClearLine, label_, done, total_,
             elapsed > 0 ? static_cast<double>(images) / elapsed : 0.0, mean_loss, eta);
  std::fflush(stdout);
}

void ProgressLine::finish(const std::string& text) {
  fmt::print("{}{}\n", live_ ? kClearLine : "", text);
  std::fflush(stdout);
}

void ProgressLine::clear() {
  if (!live_) return;
  fmt::print("{}", kClearLine);
  std::fflush(stdout);
}

}  // namespace tpp::train
