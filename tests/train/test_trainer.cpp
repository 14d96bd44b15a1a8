// The Trainer on an in-memory dataset: stopping in mid-epoch at a step limit
// and going on (in the same trainer, or in a new one from the saved state)
// gives the same weights and epoch statistics as training straight through.
#include <doctest/doctest.h>

#include <cstring>

#include "train/trainer.h"
#include "data/dataset.h"
#include "engine/philox.h"
#include "models/zoo.h"

namespace {

using namespace tpp;

// 64 random 1×32×32 images in 4 classes: mlp7_linear takes them as they are.
std::shared_ptr<const data::Dataset> random_images(uint64_t seed) {
  manual_seed(seed);
  const Tensor images = randint({64, 1, 32, 32}, 0, 256).to(DType::u8);
  const Tensor labels = randint({64}, 0, 4);
  return std::make_shared<data::TensorDataset>(
      data::DatasetInfo{.name = "random", .split = "train", .source = "memory", .class_names = {"a", "b", "c", "d"}},
      images, labels, std::vector<std::string>{"memory"}, std::vector<int64_t>{0});
}

struct Setup {
  std::shared_ptr<const data::Dataset> data = random_images(7);
  std::shared_ptr<models::Module> model;
  std::unique_ptr<data::DataLoader> train, test;
  std::unique_ptr<train::Trainer> trainer;

  Setup() {
    manual_seed(3);
    model = models::make_model("mlp7_linear", 4, 1);
    const auto to_float = std::make_shared<data::ToFloat>();
    train = std::make_unique<data::DataLoader>(data, to_float,
                                               data::DataLoaderOptions{.batch_size = 8, .shuffle = true, .seed = 5});
    test = std::make_unique<data::DataLoader>(data, to_float, data::DataLoaderOptions{.batch_size = 32});
    trainer = std::make_unique<train::Trainer>(
        *model, *train, *test,
        train::TrainerOptions{.schedule = LrSchedule::parse_milestones("0:0.05,1:0.02"), .momentum = 0.9, .epochs = 2});
  }
};

bool same_bits(const models::Module& a, const models::Module& b) {
  const auto x = a.state_dict(), y = b.state_dict();
  for (size_t i = 0; i < x.size(); ++i) {
    const Tensor& s = x[i].second;
    const Tensor& t = y[i].second;
    if (s.sizes() != t.sizes() ||
        std::memcmp(s.raw_data(), t.raw_data(), static_cast<size_t>(s.numel()) * element_size(s.dtype())) != 0)
      return false;
  }
  return true;
}

TEST_CASE("Trainer: a step limit stops in mid-epoch, incomplete and unevaluated, the next call finishes the epoch") {
  Setup straight, stopped;
  const train::EpochStats whole = straight.trainer->run_epoch();

  const train::EpochStats part = stopped.trainer->run_epoch(3);
  CHECK_FALSE(part.complete);
  CHECK(stopped.trainer->state().global_step == 3);
  CHECK(stopped.trainer->state().step_in_epoch == 3);
  CHECK(stopped.trainer->state().epochs_done == 0);
  const train::EpochStats rest = stopped.trainer->run_epoch();
  CHECK(rest.complete);
  CHECK(rest.epoch == 1);
  CHECK(rest.train_loss == doctest::Approx(whole.train_loss).epsilon(1e-12));
  CHECK(rest.train_acc == whole.train_acc);
  CHECK(rest.test_acc == whole.test_acc);
  CHECK(stopped.trainer->state().step_in_epoch == 0);
  CHECK(same_bits(*straight.model, *stopped.model));
}

TEST_CASE("Trainer: state saved in mid-epoch and loaded into a new trainer continues with the same bits") {
  Setup straight, first;
  straight.trainer->run_epoch();
  straight.trainer->run_epoch();

  first.trainer->run_epoch(5);
  const auto weights = first.model->state_dict();
  const auto state = first.trainer->state_tensors();
  manual_seed(99);  // the state carries the generator: this must not matter

  Setup second;
  std::map<std::string, Tensor> values(weights.begin(), weights.end());
  second.model->load_state_dict(values);
  second.trainer->load_state_tensors(state);
  CHECK(second.trainer->state().step_in_epoch == 5);
  second.trainer->run_epoch();
  const train::EpochStats last = second.trainer->run_epoch();
  CHECK(last.epoch == 2);
  CHECK(second.trainer->state().global_step == 16);
  CHECK(same_bits(*straight.model, *second.model));
}

}  // namespace
