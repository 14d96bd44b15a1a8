// End-to-end: the engine learns. A linear-ReLU-linear network trained for one
// epoch on 12,000 real MNIST images must pass 92% test accuracy.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>

#include "data/catalog.h"
#include "data/loader.h"
#include "engine/autograd.h"
#include "engine/optim.h"
#include "engine/philox.h"
#include "models/layers.h"
#include "ops/loss.h"
#include "ops/reduce.h"

using namespace tpp;

namespace {
std::filesystem::path shared_data() { return std::filesystem::path(TPP_SOURCE_DIR) / ".." / "shared" / "data"; }
}  // namespace

TEST_CASE("an MLP reaches 92% on MNIST after one epoch on 12k images") {
  if (!std::filesystem::exists(shared_data() / "mnist")) {
    MESSAGE("skipped: no shared MNIST at ", shared_data().string());
    return;
  }
  manual_seed(1);
  const auto where = data::locate_dataset("mnist", shared_data());
  const auto train = data::open_dataset(where, "train");
  const auto test = data::open_dataset(where, "test");
  data::DataLoader train_loader(train, data::standard_transforms("mnist", true),
                                {.batch_size = 64, .shuffle = true, .drop_last = true, .num_workers = 1, .seed = 3});
  data::DataLoader test_loader(test, data::standard_transforms("mnist", false), {.batch_size = 1000});

  models::Sequential net;
  net.add(std::make_shared<models::Flatten>());
  net.add(std::make_shared<models::Linear>(784, 128));
  net.add(std::make_shared<models::ReLU>());
  net.add(std::make_shared<models::Linear>(128, 10));
  Sgd sgd(net.parameters(), {.lr = 0.05, .momentum = 0.9});

  train_loader.start_epoch(0);
  for (int step = 0; step < 12000 / 64; ++step) {
    const auto batch = train_loader.next();
    REQUIRE(batch);
    const Tensor loss = ops::cross_entropy(net(batch->images), batch->labels);
    sgd.zero_grad();
    loss.backward();
    sgd.step();
  }

  NoGradGuard no_grad;
  int64_t correct = 0;
  test_loader.start_epoch(0);
  while (auto batch = test_loader.next()) {
    const auto predicted = ops::max(net(batch->images), 1).indices.to_vector<int64_t>();
    const auto truth = batch->labels.to_vector<int64_t>();
    for (size_t i = 0; i < truth.size(); ++i) correct += predicted[i] == truth[i];
  }
  const double accuracy = static_cast<double>(correct) / 100.0;
  MESSAGE("test accuracy ", accuracy, "%");
  CHECK(accuracy > 92.0);
}
