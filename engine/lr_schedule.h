// Learning-rate schedules, evaluated at a (possibly fractional) epoch so a
// trainer can update per epoch or per iteration.
//   milestones  "0:0.1,100:0.01,150:0.001": the LR of the largest milestone <= epoch
//   cosine      base -> min over `epochs` (PyTorch CosineAnnealingLR, closed form)
// Either can be preceded by a linear warm-up from start_factor * lr(0) to lr(warmup).
#pragma once

#include <string_view>
#include <utility>
#include <vector>

namespace tpp {

struct LrSchedule {
  enum class Kind { milestones, cosine };
  Kind kind = Kind::milestones;
  std::vector<std::pair<double, double>> milestones;  // (epoch, lr), ascending
  double base_lr = 0.1, min_lr = 0, epochs = 1;       // cosine
  double warmup_epochs = 0, warmup_start_factor = 0.1;

  // Parses "e0:lr0,e1:lr1,..."; the first milestone must be at epoch 0.
  static LrSchedule parse_milestones(std::string_view spec);
  static LrSchedule cosine(double base_lr, double epochs, double min_lr = 0);
  LrSchedule& with_warmup(double epochs, double start_factor = 0.1);

  double lr_at(double epoch) const;
};

}  // namespace tpp
