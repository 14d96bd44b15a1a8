// Example (b): load the CNN that train_cnn saved, prune half the filters of
// both conv layers with TPP through the library's API, retrain briefly, and
// print parameters, FLOPs, test accuracy and mean Jacobian singular value
// (JSV) before and after.
//
// TPP (prune/tpp_regularizer.h): filters are chosen by L1 norm on the trained
// weights (prune/plan.h); a regularised phase pushes them to zero while
// keeping the kept filters decorrelated (gram penalty) and, once the penalty
// is at its ceiling, zeroes the chosen filters layer by layer; then they are
// removed physically (models/surgery.h) and the smaller dense model retrains.
//
//   prune_checkpoint [--checkpoint small_cnn.safetensors] [--reg-steps 200]
//                    [--retrain-steps 200] [--data-dir DIR] [--out small_cnn_pruned.safetensors]
#include <fmt/format.h>
#include <tpp/tpp.h>

#include <algorithm>

#include "example_args.h"
#include "small_cnn.h"

using namespace tpp;

namespace {

struct Measures {
  int64_t params = 0, flops = 0;
  double accuracy = 0, mean_jsv = 0;
};

Measures measure(models::Module& model, data::DataLoader& test_loader, data::DataLoader& jsv_loader) {
  const models::ModelSummary summary = models::summarize(model, {1, 28, 28});
  return {.params = summary.params,
          .flops = summary.flops,
          .accuracy = train::evaluate_model(model, test_loader).accuracy,
          .mean_jsv = prune::model_jsv(model, train::epoch_images(jsv_loader), 2).mean};
}

// Trains until `steps` optimizer steps are done in all.
void train_steps(train::Trainer& trainer, int64_t steps) {
  while (trainer.state().global_step < steps) trainer.run_epoch(steps);
}

}  // namespace

int main(int argc, char** argv) try {
  const ExampleArgs args(argc, argv,
                         {{"checkpoint", "small_cnn.safetensors"}, {"reg-steps", "200"}, {"retrain-steps", "200"},
                          {"data-dir", ""}, {"out", "small_cnn_pruned.safetensors"}});
  manual_seed(0);
  SmallCnn model(1, 10);
  model.load_state_dict(load_safetensors(args.text("checkpoint")).tensors);

  const data::DatasetLocation where =
      data::locate_dataset("fashion-mnist", data::resolve_data_root(args.text("data-dir")));
  const auto train_images = data::open_dataset(where, "train");
  const auto test_images = std::make_shared<data::FirstSamples>(data::open_dataset(where, "test"), 2000);
  data::DataLoader train_loader(train_images, data::standard_transforms(where.name, true),
                                {.batch_size = 64, .shuffle = true, .drop_last = true, .num_workers = 2});
  data::DataLoader test_loader(test_images, data::standard_transforms(where.name, false), {.batch_size = 500});
  data::DataLoader jsv_loader(train_images, data::standard_transforms(where.name, false), {.batch_size = 16});
  const Measures dense = measure(model, test_loader, jsv_loader);

  // The plan: half the filters of each conv layer, the lowest L1 norms.
  const prune::PrunePlan plan = prune::make_plan(model, {.stage_pr = "conv*:0.5"});

  // TPP's regularised phase, shortened to --reg-steps iterations: λ grows to
  // its ceiling over the first half, then the pruned filters are zeroed
  // layer by layer while it holds there.
  const int64_t reg_steps = std::max<int64_t>(4, args.number("reg-steps") / 2 * 2);
  const prune::TppRegularizer tpp(model, plan,
                                  {.schedule = {.step = 2.0 / static_cast<double>(reg_steps),
                                                .ceiling = 1.0,
                                                .interval = 1,
                                                .stabilize = reg_steps / 2,
                                                .zero_out_interval = std::max<int64_t>(1, reg_steps / 8)}});
  {
    train::Trainer regularize(model, train_loader, test_loader,
                              {.schedule = LrSchedule::parse_milestones("0:0.001"), .phase = "regularize"},
                              {.extra_loss = [&](const train::StepContext& s) { return tpp.loss_term(s.global_step); },
                               .after_backward = [&](const train::StepContext& s) { tpp.add_gradients(s.global_step); },
                               .after_step = [&](const train::StepContext& s) { tpp.after_step(s.global_step); }});
    train_steps(regularize, tpp.iterations());
  }

  // Physical removal: a smaller dense model (the BN and the next layer's
  // input channels follow), then a short retraining with a fresh optimizer.
  models::keep_filters(model, plan.kept_indices());
  const Measures removed = measure(model, test_loader, jsv_loader);
  {
    train::Trainer retrain(model, train_loader, test_loader,
                           {.schedule = LrSchedule::parse_milestones("0:0.01"), .phase = "retrain"});
    train_steps(retrain, args.number("retrain-steps"));
  }
  const Measures retrained = measure(model, test_loader, jsv_loader);

  fmt::print("\n{:<22} {:>10} {:>12} {:>10} {:>10}\n", "", "params", "FLOPs", "accuracy", "mean JSV");
  for (const auto& [label, m] : {std::pair{"dense", dense}, std::pair{"pruned (TPP)", removed},
                                 std::pair{"pruned, retrained", retrained}})
    fmt::print("{:<22} {:>10} {:>12} {:>9.2f}% {:>10.4f}\n", label, m.params, m.flops, m.accuracy, m.mean_jsv);

  save_weights(model, args.text("out"), "SmallCnn (pruned)");
  fmt::print("saved {}\n", args.text("out"));
  return 0;
} catch (const std::exception& e) {
  fmt::print(stderr, "prune_checkpoint: {}\n", e.what());
  return 1;
}
