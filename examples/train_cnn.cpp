// Example (a): define a CNN in C++ (small_cnn.h), train it on Fashion-MNIST
// with the library's data loader, autograd and SGD, report the test accuracy
// and save the weights as safetensors.
//
//   train_cnn [--steps 600] [--data-dir DIR] [--out small_cnn.safetensors]
#include <fmt/format.h>
#include <tpp/tpp.h>

#include "example_args.h"
#include "small_cnn.h"

using namespace tpp;

int main(int argc, char** argv) try {
  const ExampleArgs args(argc, argv, {{"steps", "600"}, {"data-dir", ""}, {"out", "small_cnn.safetensors"}});
  manual_seed(0);

  // Fashion-MNIST: the Debian package's copy, or under --data-dir.
  const data::DatasetLocation where =
      data::locate_dataset("fashion-mnist", data::resolve_data_root(args.text("data-dir")));
  const auto train_images = data::open_dataset(where, "train");
  const auto test_images = std::make_shared<data::FirstSamples>(data::open_dataset(where, "test"), 2000);
  data::DataLoader train_loader(train_images, data::standard_transforms(where.name, true),
                                {.batch_size = 64, .shuffle = true, .drop_last = true, .num_workers = 2});
  data::DataLoader test_loader(test_images, data::standard_transforms(where.name, false), {.batch_size = 500});

  SmallCnn model(1, 10);
  Sgd sgd(model.parameters(), {.lr = 0.05, .momentum = 0.9, .weight_decay = 5e-4});
  const int64_t steps = args.number("steps");
  int64_t step = 0;
  for (int64_t epoch = 0; step < steps; ++epoch) {
    train_loader.start_epoch(epoch);
    while (step < steps) {
      const std::optional<data::Batch> batch = train_loader.next();
      if (!batch) break;
      const Tensor loss = ops::cross_entropy(model(batch->images), batch->labels);
      sgd.zero_grad();
      loss.backward();
      sgd.step();
      if (++step % 100 == 0 || step == steps) fmt::print("step {:5d}  loss {:.4f}\n", step, loss.item());
    }
  }

  const train::EvalResult test = train::evaluate_model(model, test_loader);
  fmt::print("test accuracy {:.2f}% on {} images\n", test.accuracy, test.samples);
  save_weights(model, args.text("out"), "SmallCnn");
  fmt::print("saved {}\n", args.text("out"));
  return 0;
} catch (const std::exception& e) {
  fmt::print(stderr, "train_cnn: {}\n", e.what());
  return 1;
}
