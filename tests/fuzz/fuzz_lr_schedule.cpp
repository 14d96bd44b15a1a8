// The learning-rate milestone string ("0:0.1,100:0.01"), then the schedule
// evaluated at a few epochs.
#include <cmath>
#include <string_view>

#include "engine/lr_schedule.h"
#include "tests/fuzz/fuzz_util.h"

using namespace tpp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::rejects_cleanly([&] {
    const LrSchedule schedule =
        LrSchedule::parse_milestones(std::string_view(reinterpret_cast<const char*>(data), size));
    fuzz::require(!schedule.milestones.empty() && schedule.milestones.front().first == 0, "starts at epoch 0");
    for (const double epoch : {0.0, 0.5, 1.0, 7.25, 1e9}) {
      const double lr = schedule.lr_at(epoch);
      fuzz::require(std::isfinite(lr) && lr >= 0, "finite, non-negative learning rates");
    }
  });
  return 0;
}
