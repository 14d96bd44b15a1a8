// `tpp demo`: a short training run on CPU that exercises the whole engine —
// data loader, conv/BN/linear layers, autograd, SGD with a cosine schedule —
// and reports loss, accuracy and throughput per epoch. The quickstart runs it.
#include <fmt/format.h>

#include <chrono>
#include <memory>

#include "apps/commands.h"
#include "apps/usage.h"
#include "train/trainer.h"
#include "data/catalog.h"
#include "data/loader.h"
#include "engine/autograd.h"
#include "engine/lr_schedule.h"
#include "engine/optim.h"
#include "engine/philox.h"
#include "engine/text.h"
#include "models/layers.h"
#include "ops/loss.h"
#include "ops/reduce.h"

namespace tpp::apps {

using namespace tpp::train;  // the training floor (train/): run data, run directories, reports

namespace {

struct DemoOptions {
  std::string dataset = "mnist";
  std::string arch = "mlp";
  std::string data_dir;
  int64_t epochs = 2;
  int64_t batch_size = 128;
  int64_t limit = 0;  // train on the first `limit` samples (0: all)
  double lr = 0.05;
  int workers = 2;
  uint64_t seed = 0;
};

using models::Sequential;

std::shared_ptr<Sequential> build_model(const std::string& arch, const Shape& image, int64_t classes) {
  auto net = std::make_shared<Sequential>();
  if (arch == "mlp") {
    net->add(std::make_shared<models::Flatten>());
    net->add(std::make_shared<models::Linear>(numel_of(image), 256));
    net->add(std::make_shared<models::ReLU>());
    net->add(std::make_shared<models::Linear>(256, classes));
    return net;
  }
  TPP_CHECK(arch == "cnn", "demo: unknown --arch '{}' (expected mlp or cnn)", arch);
  int64_t channels = image[0];
  for (const int64_t width : {16, 32}) {
    net->add(std::make_shared<models::Conv2d>(
        models::Conv2dSpec{.in_channels = channels, .out_channels = width, .kernel_size = 3, .padding = 1, .bias = false}));
    net->add(std::make_shared<models::BatchNorm2d>(width));
    net->add(std::make_shared<models::ReLU>());
    net->add(std::make_shared<models::MaxPool2d>(2));
    channels = width;
  }
  net->add(std::make_shared<models::GlobalAvgPool2d>());
  net->add(std::make_shared<models::Linear>(channels, classes));
  return net;
}

int run_demo(const DemoOptions& o) {
  manual_seed(o.seed);
  const auto where = data::locate_dataset(o.dataset, data::resolve_data_root(o.data_dir));
  std::shared_ptr<const data::Dataset> train = data::open_dataset(where, "train");
  const auto test = data::open_dataset(where, "test");
  if (o.limit > 0) train = std::make_shared<data::FirstSamples>(train, o.limit);
  const Shape image = train->image_shape().value();
  const int64_t classes = train->info().num_classes();

  data::DataLoader train_loader(train, data::standard_transforms(where.name, true),
                                {.batch_size = o.batch_size, .shuffle = true, .drop_last = true,
                                 .num_workers = o.workers, .seed = o.seed});
  data::DataLoader test_loader(test, data::standard_transforms(where.name, false),
                               {.batch_size = 500, .num_workers = o.workers});
  auto net = build_model(o.arch, image, classes);
  Sgd sgd(net->parameters(), {.lr = o.lr, .momentum = 0.9, .weight_decay = 5e-4});
  const LrSchedule schedule = LrSchedule::cosine(o.lr, static_cast<double>(o.epochs));

  int64_t params = 0;
  for (const Tensor& p : net->parameters()) params += p.numel();
  fmt::print("demo: {} on {} ({} train / {} test images of {}), {} parameters, {}, batch {}\n", o.arch,
             where.name, train->size(), test->size(), shape_str(image), with_commas(params), counted(o.epochs, "epoch"),
             o.batch_size);

  const int64_t steps = train_loader.num_batches();
  for (int64_t epoch = 0; epoch < o.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    double loss_sum = 0;
    int64_t correct = 0, seen = 0, step = 0;
    train_loader.start_epoch(epoch);
    while (auto batch = train_loader.next()) {
      sgd.set_lr(schedule.lr_at(static_cast<double>(epoch) + static_cast<double>(step++) / steps));
      const Tensor logits = (*net)(batch->images);
      const Tensor loss = ops::cross_entropy(logits, batch->labels);
      sgd.zero_grad();
      loss.backward();
      sgd.step();
      loss_sum += loss.item() * static_cast<double>(batch->labels.numel());
      correct += count_correct(logits, batch->labels);
      seen += batch->labels.numel();
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double test_acc = evaluate_model(*net, test_loader).accuracy;
    fmt::print("epoch {}/{}  loss {:.4f}  train acc {:.2f}%  test acc {:.2f}%  {:.0f} img/s  {:.1f} s\n", epoch + 1,
               o.epochs, loss_sum / static_cast<double>(seen), 100.0 * static_cast<double>(correct) / static_cast<double>(seen),
               test_acc, static_cast<double>(seen) / seconds, seconds);
  }
  return 0;
}

}  // namespace

CLI::App* add_demo_command(CLI::App& app) {
  auto options = std::make_shared<DemoOptions>();
  CLI::App* sub = app.add_subcommand("demo", "Short CPU training run of a small MLP or CNN (the quickstart's job)");
  sub->footer("Examples:\n  tpp demo\n  tpp demo --dataset mnist --arch cnn --epochs 1");
  sub->add_option("--dataset", options->dataset, "mnist or fashion-mnist")->capture_default_str();
  sub->add_option("--arch", options->arch, "mlp or cnn")->capture_default_str();
  sub->add_option("--data-dir", options->data_dir, kDataDirHelp);
  sub->add_option("--epochs", options->epochs)->capture_default_str()->check(positive_integer());
  sub->add_option("--batch-size", options->batch_size)->capture_default_str()->check(positive_integer());
  sub->add_option("--limit", options->limit, "Train on the first N samples only (0: all)")->check(non_negative_integer());
  sub->add_option("--lr", options->lr)->capture_default_str()->check(positive_number());
  sub->add_option("--workers", options->workers, "Loader threads")->capture_default_str()->check(non_negative_integer());
  sub->add_option("--seed", options->seed)->capture_default_str()->check(non_negative_integer());
  register_command(sub, [options] { return run_demo(*options); });
  return sub;
}

}  // namespace tpp::apps
