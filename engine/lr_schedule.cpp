#include "engine/lr_schedule.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numbers>
#include <string>

#include "engine/error.h"

namespace tpp {

namespace {

double parse_number(std::string_view text, std::string_view spec) {
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  TPP_CHECK(ec == std::errc() && end == text.data() + text.size() && std::isfinite(value),
            "lr schedule '{}': '{}' is not a number", spec, text);
  return value;
}

}  // namespace

LrSchedule LrSchedule::parse_milestones(std::string_view spec) {
  LrSchedule s;
  TPP_CHECK(!spec.empty(), "lr schedule: empty; expected e.g. '0:0.1,100:0.01'");
  size_t start = 0;
  while (start <= spec.size()) {
    const size_t comma = std::min(spec.find(',', start), spec.size());
    const std::string_view item = spec.substr(start, comma - start);
    const size_t colon = item.find(':');
    TPP_CHECK(colon != std::string_view::npos, "lr schedule '{}': item '{}' is not epoch:lr", spec, item);
    const double epoch = parse_number(item.substr(0, colon), spec);
    const double lr = parse_number(item.substr(colon + 1), spec);
    TPP_CHECK(epoch >= 0 && lr >= 0, "lr schedule '{}': epoch and lr must be >= 0 in '{}'", spec, item);
    TPP_CHECK(s.milestones.empty() || epoch > s.milestones.back().first,
              "lr schedule '{}': epochs must increase, but {} follows {}", spec, epoch, s.milestones.back().first);
    s.milestones.emplace_back(epoch, lr);
    start = comma + 1;
  }
  TPP_CHECK(s.milestones.front().first == 0, "lr schedule '{}': the first milestone must be at epoch 0", spec);
  return s;
}

LrSchedule LrSchedule::cosine(double base_lr, double epochs, double min_lr) {
  TPP_CHECK(epochs > 0 && base_lr >= 0 && min_lr >= 0, "lr schedule: cosine needs epochs > 0 and lrs >= 0");
  LrSchedule s;
  s.kind = Kind::cosine;
  s.base_lr = base_lr;
  s.epochs = epochs;
  s.min_lr = min_lr;
  return s;
}

LrSchedule& LrSchedule::with_warmup(double epochs, double start_factor) {
  TPP_CHECK(epochs >= 0 && start_factor > 0 && start_factor <= 1,
            "lr schedule: warm-up needs epochs >= 0 and a start factor in (0, 1]");
  warmup_epochs = epochs;
  warmup_start_factor = start_factor;
  return *this;
}

double LrSchedule::lr_at(double epoch) const {
  auto scheduled = [this](double e) {
    if (kind == Kind::cosine) {
      const double t = std::clamp(e / epochs, 0.0, 1.0);
      return min_lr + (base_lr - min_lr) * (1 + std::cos(std::numbers::pi * t)) / 2;
    }
    double lr = milestones.front().second;
    for (const auto& [at, value] : milestones)
      if (at <= e) lr = value;
    return lr;
  };
  if (epoch < warmup_epochs) {
    const double factor = warmup_start_factor + (1 - warmup_start_factor) * epoch / warmup_epochs;
    return factor * scheduled(warmup_epochs);
  }
  return scheduled(epoch);
}

}  // namespace tpp
