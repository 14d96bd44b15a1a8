// The trainer and NaN/infinity: a step whose loss or gradients are not finite
// stops the run with one line naming the phase and the step (--on-nan stop),
// or is skipped without touching weights, momentum or BN statistics (--on-nan
// skip). The data: tiny 1x2x2 images whose first pixel 255 marks a sample the
// transform poisons with a NaN.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "train/trainer.h"
#include "data/dataset.h"
#include "engine/finite.h"
#include "engine/philox.h"
#include "models/layers.h"

using namespace tpp;
using namespace tpp::train;

namespace {

constexpr uint8_t kPoisonMark = 255;

std::vector<int64_t> range(int64_t first, int64_t end) {
  std::vector<int64_t> out;
  for (int64_t i = first; i < end; ++i) out.push_back(i);
  return out;
}

// The given samples of a fixed sequence (labels alternate); `poisoned` ones
// are marked for PoisonMarked.
std::shared_ptr<data::TensorDataset> tiny_dataset(const std::vector<int64_t>& samples,
                                                  const std::vector<int64_t>& poisoned = {}) {
  const auto count = static_cast<int64_t>(samples.size());
  Tensor images = empty({count, 1, 2, 2}, {.dtype = DType::u8});
  Tensor labels = empty({count}, {.dtype = DType::i64});
  for (int64_t i = 0; i < count; ++i) {
    const int64_t sample = samples[static_cast<size_t>(i)];
    for (int64_t k = 0; k < 4; ++k) images.data<uint8_t>()[i * 4 + k] = static_cast<uint8_t>((sample * 37 + k * 61) % 200);
    if (std::find(poisoned.begin(), poisoned.end(), sample) != poisoned.end())
      images.data<uint8_t>()[i * 4] = kPoisonMark;
    labels.data<int64_t>()[i] = sample % 2;
  }
  return std::make_shared<data::TensorDataset>(data::DatasetInfo{.name = "tiny", .split = "train", .source = "memory",
                                                                 .class_names = {"even", "odd"}},
                                               images, labels, std::vector<std::string>{}, std::vector<int64_t>{});
}

// u8 -> f32 / 255, with the first value NaN in a marked sample.
class PoisonMarked final : public data::Transform {
 public:
  Tensor apply(const Tensor& image, data::SampleRandom&) const override {
    Tensor out = data::to_float(image);
    if (image.contiguous().data<uint8_t>()[0] == kPoisonMark)
      out.data<float>()[0] = std::numeric_limits<float>::quiet_NaN();
    return out;
  }
  std::string describe() const override { return "PoisonMarked"; }
};

// BN (running statistics that a skipped step must not move) and a linear
// classifier: parameters "0.weight", "0.bias", "2.weight", "2.bias".
std::shared_ptr<models::Sequential> tiny_model() {
  manual_seed(5);
  auto model = std::make_shared<models::Sequential>();
  model->add(std::make_shared<models::BatchNorm2d>(1));
  model->add(std::make_shared<models::Flatten>());
  model->add(std::make_shared<models::Linear>(4, 2));
  return model;
}

struct Setup {
  std::shared_ptr<models::Sequential> model = tiny_model();
  data::DataLoader train, test;
  Trainer trainer;

  Setup(std::shared_ptr<data::TensorDataset> train_data, TrainerOptions options, TrainHooks hooks = {})
      : train(std::move(train_data), std::make_shared<PoisonMarked>(),
              {.batch_size = 4, .shuffle = false, .drop_last = true, .num_workers = 0}),
        test(tiny_dataset(range(0, 8)), std::make_shared<PoisonMarked>(), {.batch_size = 8}),
        trainer(*model, train, test, std::move(options), std::move(hooks)) {}
};

TrainerOptions options(OnNan on_nan, std::string phase = "train") {
  return {.schedule = LrSchedule::parse_milestones("0:0.1"),
          .momentum = 0.9,
          .epochs = 1,
          .phase = std::move(phase),
          .on_nan = on_nan};
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.sizes() == b.sizes() &&
         std::memcmp(a.raw_data(), b.raw_data(), static_cast<size_t>(a.numel()) * element_size(a.dtype())) == 0;
}

bool all_finite_state(const models::Module& model) {
  for (const auto& [name, t] : model.state_dict())
    if (!all_finite(t)) return false;
  return true;
}

const std::string kStopAdvice =
    "; stopping (`on_nan` stop): lower the learning rate or check the data, or pass `on_nan` skip to skip such steps";
const std::string kDebugHint = "; TPP_SYNC_DEBUG=1 names the op that produced it";

}  // namespace

TEST_SUITE("train.trainer") {
  TEST_CASE("--on-nan stop: a NaN loss stops training with one line naming the phase and the step") {
    const SyncDebugOverride off(false);
    Setup s(tiny_dataset(range(0, 16), {6}), options(OnNan::stop, "retrain"));  // sample 6: the second batch
    CHECK_THROWS_WITH_AS(s.trainer.run_epoch(),
                         ("train: non-finite loss (nan) at phase retrain, epoch 1, step 2 (global step 2)" +
                          kStopAdvice + kDebugHint)
                             .c_str(),
                         Error);
    CHECK(all_finite_state(*s.model));  // the bad step changed nothing
  }

  TEST_CASE("--on-nan stop: a non-finite gradient names the parameter (a hook that adds gradient terms counts)") {
    const SyncDebugOverride off(false);
    TrainHooks hooks;
    Setup* setup = nullptr;
    hooks.after_backward = [&](const StepContext& context) {
      if (context.step == 2) setup->model->named_parameters()[2].second.grad().data<float>()[5] =
          std::numeric_limits<float>::infinity();
    };
    Setup s(tiny_dataset(range(0, 16)), options(OnNan::stop, "regularize"), hooks);
    setup = &s;
    CHECK_THROWS_WITH_AS(s.trainer.run_epoch(),
                         ("train: non-finite gradient (inf) of '2.weight' at phase regularize, epoch 1, step 3 "
                          "(global step 3)" +
                          kStopAdvice + kDebugHint)
                             .c_str(),
                         Error);
  }

  TEST_CASE("--on-nan skip: a skipped step changes nothing, as if its batch were not there, and is counted") {
    const SyncDebugOverride off(false);
    Setup poisoned(tiny_dataset(range(0, 16), {6}), options(OnNan::skip));
    const EpochStats stats = poisoned.trainer.run_epoch();
    CHECK(stats.skipped_steps == 1);
    CHECK(epoch_json(stats)["skipped_steps"] == 1);
    CHECK(poisoned.trainer.state().global_step == 4);

    // The same data without the second batch (samples 4..7): same LR, same momentum sequence.
    std::vector<int64_t> others = range(0, 4);
    for (const int64_t i : range(8, 16)) others.push_back(i);
    Setup clean(tiny_dataset(others), options(OnNan::skip));
    const EpochStats clean_stats = clean.trainer.run_epoch();
    CHECK(clean_stats.skipped_steps == 0);
    CHECK(stats.train_loss == clean_stats.train_loss);
    CHECK(stats.train_acc == clean_stats.train_acc);
    const models::NamedTensors a = poisoned.model->state_dict(), b = clean.model->state_dict();
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) CHECK_MESSAGE(bitwise_equal(a[i].second, b[i].second), a[i].first);
    const auto momentum_a = poisoned.trainer.state_tensors(), momentum_b = clean.trainer.state_tensors();
    CHECK(bitwise_equal(momentum_a.at("optimizer.momentum.2.weight"), momentum_b.at("optimizer.momentum.2.weight")));
  }

  TEST_CASE("--on-nan skip: too many skipped steps in a row stop training anyway") {
    const SyncDebugOverride off(false);
    TrainerOptions o = options(OnNan::skip);
    o.max_skips_in_a_row = 2;
    Setup s(tiny_dataset(range(0, 16), {4, 9}), o);  // steps 2 and 3
    CHECK_THROWS_WITH_AS(s.trainer.run_epoch(),
                         ("train: 2 steps in a row skipped (`on_nan` skip), the last for a non-finite loss (nan) at "
                          "phase train, epoch 1, step 3 (global step 3); stopping: training diverged, lower the "
                          "learning rate or check the data" +
                          kDebugHint)
                             .c_str(),
                         Error);
  }

  TEST_CASE("--on-nan skip: a finite step in between resets the count of skips in a row") {
    const SyncDebugOverride off(false);
    TrainerOptions o = options(OnNan::skip);
    o.max_skips_in_a_row = 2;
    Setup s(tiny_dataset(range(0, 16), {4, 13}), o);  // steps 2 and 4
    CHECK(s.trainer.run_epoch().skipped_steps == 2);
  }

  TEST_CASE("TPP_SYNC_DEBUG: the trainer's message names the op that produced the first NaN, and its input") {
    const SyncDebugOverride on(true);
    Setup s(tiny_dataset(range(0, 16), {6}), options(OnNan::stop));
    // Sample 6 is the third of its batch: element 8 of the input; BN spreads the NaN over the whole channel.
    CHECK_THROWS_WITH_AS(s.trainer.run_epoch(),
                         ("train: non-finite value at phase train, epoch 1, step 2 (global step 2); TPP_SYNC_DEBUG: "
                          "op 'batch_norm2d' produced nan (shape [4, 1, 2, 2]) at element 0; input 0 (shape [4, 1, "
                          "2, 2]) already holds nan at element 8 (data, a parameter or an in-place update)" +
                          kStopAdvice)
                             .c_str(),
                         Error);
  }

  TEST_CASE("TPP_SYNC_DEBUG with --on-nan skip: the step the op stopped is skipped") {
    const SyncDebugOverride on(true);
    Setup s(tiny_dataset(range(0, 16), {6}), options(OnNan::skip));
    CHECK(s.trainer.run_epoch().skipped_steps == 1);
    CHECK(all_finite_state(*s.model));
  }

  TEST_CASE("log lines carry skipped_steps, a line from before it existed reads as 0") {
    const EpochStats stats{.epoch = 3, .skipped_steps = 7};
    CHECK(epoch_from_json(epoch_json(stats)).skipped_steps == 7);
    nlohmann::ordered_json old = epoch_json(stats);
    old.erase("skipped_steps");
    CHECK(epoch_from_json(old).skipped_steps == 0);
  }

  TEST_CASE("--on-nan takes stop or skip") {
    CHECK(parse_on_nan("stop") == OnNan::stop);
    CHECK(parse_on_nan("skip") == OnNan::skip);
    CHECK(std::string(on_nan_name(OnNan::skip)) == "skip");
    CHECK_THROWS_WITH_AS(parse_on_nan("ignore"), "`on_nan`: expected stop or skip but got 'ignore'", Error);
  }
}
