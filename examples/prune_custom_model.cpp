// Example (c): a model that is not in the zoo — the user's own layers,
// including a residual block — pruned through the library's layer tracing.
// The library runs one forward pass to learn which layer feeds which
// (models/surgery.h): a conv inside the residual block can lose filters (the
// block's second conv and BN follow), while the conv whose output joins the
// residual sum cannot, and the plan refuses it with the reason. The pruned
// model then trains a few steps on Fashion-MNIST.
//
//   prune_custom_model [--steps 100] [--data-dir DIR]
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <tpp/tpp.h>

#include "example_args.h"

using namespace tpp;

namespace {

std::shared_ptr<models::Conv2d> conv3x3(int64_t in, int64_t out, int64_t stride = 1) {
  return std::make_shared<models::Conv2d>(models::Conv2dSpec{
      .in_channels = in, .out_channels = out, .kernel_size = 3, .stride = stride, .padding = 1, .bias = false});
}

// out = relu(x + bn2(conv2(relu(bn1(conv1(x))))))
class ResidualBlock : public models::Module {
 public:
  explicit ResidualBlock(int64_t channels) {
    conv1 = register_module("conv1", conv3x3(channels, channels));
    bn1 = register_module("bn1", std::make_shared<models::BatchNorm2d>(channels));
    conv2 = register_module("conv2", conv3x3(channels, channels));
    bn2 = register_module("bn2", std::make_shared<models::BatchNorm2d>(channels));
  }
  Tensor forward(const Tensor& x) override {
    const Tensor inner = ops::relu((*bn1)((*conv1)(x)));
    return ops::relu(ops::add(x, (*bn2)((*conv2)(inner))));
  }
  std::string type_name() const override { return "ResidualBlock"; }

  std::shared_ptr<models::Conv2d> conv1, conv2;
  std::shared_ptr<models::BatchNorm2d> bn1, bn2;
};

// stem -> residual block -> strided conv -> residual block -> pool -> linear
class TinyResNet : public models::Module {
 public:
  TinyResNet(int64_t in_channels, int64_t classes) {
    stem = register_module("stem", conv3x3(in_channels, 16));
    stem_bn = register_module("stem_bn", std::make_shared<models::BatchNorm2d>(16));
    block1 = register_module("block1", std::make_shared<ResidualBlock>(16));
    down = register_module("down", conv3x3(16, 32, 2));
    down_bn = register_module("down_bn", std::make_shared<models::BatchNorm2d>(32));
    block2 = register_module("block2", std::make_shared<ResidualBlock>(32));
    fc = register_module("fc", std::make_shared<models::Linear>(32, classes));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = (*block1)(ops::relu((*stem_bn)((*stem)(x))));
    h = (*block2)(ops::relu((*down_bn)((*down)(h))));
    return (*fc)(ops::global_avg_pool2d(h));
  }
  std::string type_name() const override { return "TinyResNet"; }

  std::shared_ptr<models::Conv2d> stem, down;
  std::shared_ptr<models::BatchNorm2d> stem_bn, down_bn;
  std::shared_ptr<ResidualBlock> block1, block2;
  std::shared_ptr<models::Linear> fc;
};

}  // namespace

int main(int argc, char** argv) try {
  const ExampleArgs args(argc, argv, {{"steps", "100"}, {"data-dir", ""}});
  manual_seed(0);
  TinyResNet model(1, 10);

  fmt::print("what the trace found (layer: consumers / why its filters must stay):\n");
  for (const models::LayerLink& link : models::trace_layer_links(model))
    fmt::print("  {:<14} {}\n", link.name,
               link.prunable() ? fmt::format("-> {}", fmt::join(link.consumers, ", ")) : "kept: " + link.refusal);

  // A ratio for a layer that feeds the residual sum is refused, naming why.
  try {
    prune::make_plan(model, {.stage_pr = "block1.conv2:0.5"});
  } catch (const Error& e) {
    fmt::print("refused as expected: {}\n", e.what());
  }

  // Half the filters of each block's inner conv (the stem and `down` feed the
  // blocks' identity shortcuts, so they keep theirs).
  const prune::PrunePlan plan = prune::make_plan(model, {.stage_pr = "*.conv1:0.5"});
  const models::ModelSummary dense = models::summarize(model, {1, 28, 28});
  models::keep_filters(model, plan.kept_indices());
  const models::ModelSummary pruned = models::summarize(model, {1, 28, 28});
  for (const prune::LayerPlan& layer : plan.layers)
    if (!layer.pruned.empty()) fmt::print("  {:<14} {} -> {} filters\n", layer.name, layer.total, layer.width());
  fmt::print("params {} -> {}, FLOPs {} -> {}\n", dense.params, pruned.params, dense.flops, pruned.flops);

  // The pruned model is an ordinary model: it trains.
  const data::DatasetLocation where =
      data::locate_dataset("fashion-mnist", data::resolve_data_root(args.text("data-dir")));
  data::DataLoader train_loader(data::open_dataset(where, "train"), data::standard_transforms(where.name, true),
                                {.batch_size = 64, .shuffle = true, .drop_last = true, .num_workers = 2});
  data::DataLoader test_loader(std::make_shared<data::FirstSamples>(data::open_dataset(where, "test"), 1000),
                               data::standard_transforms(where.name, false), {.batch_size = 500});
  train::Trainer trainer(model, train_loader, test_loader, {.schedule = LrSchedule::parse_milestones("0:0.05")});
  const int64_t steps = args.number("steps");
  while (trainer.state().global_step < steps) trainer.run_epoch(steps);
  const train::EvalResult test = trainer.evaluate();
  fmt::print("after {} steps: test accuracy {:.2f}% on {} images\n", steps, test.accuracy, test.samples);
  return 0;
} catch (const std::exception& e) {
  fmt::print(stderr, "prune_custom_model: {}\n", e.what());
  return 1;
}
