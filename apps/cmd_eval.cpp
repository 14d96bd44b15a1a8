// `tpp eval --checkpoint F [--dataset D] [--data-dir P] [--batch-size B]
// [--workers N] [--arch A] [--json]`: loss, top-1 and top-5 accuracy of a
// checkpoint on the test split of its dataset (the one in its metadata unless
// --dataset names another), with the dataset's evaluation transforms.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "apps/usage.h"
#include "train/model_input.h"
#include "data/catalog.h"
#include "data/loader.h"
#include "engine/autograd.h"
#include "models/checkpoint.h"
#include "ops/loss.h"

namespace tpp::apps {

using namespace tpp::train;  // the training floor (train/): run data, run directories, reports

namespace {

struct EvalOptions {
  std::string checkpoint, dataset, data_dir, arch;
  int64_t batch_size = 256;
  int workers = 2;
  bool json = false;
};

struct EvalTotals {
  double loss_sum = 0;
  int64_t top1 = 0, top5 = 0, seen = 0;

  double loss() const { return loss_sum / static_cast<double>(seen); }
  double percent(int64_t correct) const { return 100.0 * static_cast<double>(correct) / static_cast<double>(seen); }
};

// A sample counts towards top-k when fewer than k classes score strictly
// higher than its true class.
void count_top_k(const Tensor& logits, const Tensor& labels, EvalTotals& totals) {
  const int64_t classes = logits.size(1);
  const std::vector<float> scores = logits.contiguous().to_vector<float>();
  const std::vector<int64_t> truth = labels.to_vector<int64_t>();
  for (size_t i = 0; i < truth.size(); ++i) {
    const float* row = scores.data() + static_cast<int64_t>(i) * classes;
    const float target = row[truth[i]];
    const auto higher = std::count_if(row, row + classes, [&](float s) { return s > target; });
    totals.top1 += higher < 1;
    totals.top5 += higher < 5;
  }
}

std::string test_split(const data::DatasetLocation& where) {
  for (const char* split : {"test", "val"})
    if (std::find(where.splits.begin(), where.splits.end(), split) != where.splits.end()) return split;
  fail("eval: {} in {} has no test or val split", where.name, where.dir.string());
}

// The dataset's evaluation transforms, after a resize for models that take
// one resolution only (mlp7_linear: MNIST's 28x28 images become 32x32).
data::TransformPtr eval_transform(const std::string& dataset, const data::Dataset& test, const ModelInput& input) {
  data::TransformPtr standard = data::standard_transforms(dataset, false);
  const std::optional<Shape> image = test.image_shape();
  if (!input.fixed_resolution || (image && (*image)[1] == input.height && (*image)[2] == input.width)) return standard;
  return std::make_shared<data::Compose>(
      std::vector<data::TransformPtr>{std::make_shared<data::Resize>(input.height, input.width), standard});
}

int run_eval(const EvalOptions& o) {
  const models::Checkpoint ckpt = models::read_checkpoint(o.checkpoint);
  const std::string dataset =
      o.dataset.empty() ? ckpt.info.dataset : as_usage_error([&] { return data::canonical_dataset_name(o.dataset); });
  TPP_CHECK(!dataset.empty(), "eval: {} names no dataset; pass --dataset", o.checkpoint);
  if (!ckpt.info.dataset.empty() && dataset != ckpt.info.dataset)
    fmt::print(stderr, "eval: warning: {} was trained on {}; evaluating it on {}\n", o.checkpoint, ckpt.info.dataset,
               dataset);
  const data::DatasetLocation where = data::locate_dataset(dataset, data::resolve_data_root(o.data_dir));
  const std::string split = test_split(where);
  const auto test = data::open_dataset(where, split);

  const std::shared_ptr<models::Module> model = models::build_model(ckpt, o.arch);
  const std::string arch = o.arch.empty() ? ckpt.info.arch : o.arch;
  const ModelInput input = model_input(*model, arch);
  const int64_t classes = test->info().num_classes();
  if (const std::optional<Shape> image = test->image_shape())
    TPP_CHECK((*image)[0] == input.channels, "eval: {} has {}-channel images but {} in {} takes {} channels",
              where.name, (*image)[0], arch, o.checkpoint, input.channels);
  TPP_CHECK(ckpt.info.num_classes <= 0 || ckpt.info.num_classes == classes,
            "eval: {} has {} classes but {} was trained for {}", where.name, classes, o.checkpoint,
            ckpt.info.num_classes);

  data::DataLoader loader(test, eval_transform(where.name, *test, input),
                          {.batch_size = o.batch_size, .num_workers = o.workers});
  model->eval();
  const NoGradGuard no_grad;
  const auto start = std::chrono::steady_clock::now();
  EvalTotals totals;
  loader.start_epoch(0);
  while (auto batch = loader.next()) {
    const Tensor logits = (*model)(batch->images);
    const int64_t n = batch->labels.numel();
    totals.loss_sum += ops::cross_entropy(logits, batch->labels).item() * static_cast<double>(n);
    count_top_k(logits, batch->labels, totals);
    totals.seen += n;
  }
  TPP_CHECK(totals.seen > 0, "eval: the {} split of {} is empty", split, where.name);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  if (o.json) {
    const nlohmann::ordered_json out = {{"checkpoint", o.checkpoint}, {"arch", arch},
                                        {"dataset", where.name},      {"split", split},
                                        {"images", totals.seen},      {"loss", totals.loss()},
                                        {"top1", totals.percent(totals.top1)}, {"top5", totals.percent(totals.top5)}};
    fmt::print("{}\n", out.dump(2));
  } else {
    fmt::print("{} ({}) on {} {}: {} images, {:.1f} s\nloss {:.4f}  top-1 {:.2f}%  top-5 {:.2f}%\n", o.checkpoint,
               arch, where.name, split, totals.seen, seconds, totals.loss(), totals.percent(totals.top1),
               totals.percent(totals.top5));
  }
  return 0;
}

}  // namespace

CLI::App* add_eval_command(CLI::App& app) {
  auto opts = std::make_shared<EvalOptions>();
  CLI::App* sub = app.add_subcommand("eval", "Loss, top-1 and top-5 accuracy of a checkpoint on a test split");
  sub->footer("Examples:\n  tpp eval --checkpoint runs/vgg_small/best.safetensors\n  tpp eval --checkpoint runs/prune/final.safetensors --json");
  sub->add_option("--checkpoint", opts->checkpoint, "Checkpoint (.safetensors)")->required();
  sub->add_option("--dataset", opts->dataset, "Dataset (default: the checkpoint's)");
  sub->add_option("--data-dir", opts->data_dir, kDataDirHelp);
  sub->add_option("--batch-size", opts->batch_size)->capture_default_str()->check(positive_integer());
  sub->add_option("--workers", opts->workers, "Loader threads")->capture_default_str()->check(non_negative_integer());
  sub->add_option("--arch", opts->arch, "Architecture, for a checkpoint without metadata (a torchvision state_dict)");
  sub->add_flag("--json", opts->json, "Print JSON (images, loss, top1, top5) instead of text");
  register_command(sub, [opts] { return run_eval(*opts); });
  return sub;
}

}  // namespace tpp::apps
