#include "train/run_data.h"

#include <fmt/ranges.h>

#include <algorithm>

#include "engine/cuda_info.h"
#include "engine/device.h"
#include "engine/error.h"
#include "models/zoo.h"

namespace tpp::train {

namespace {

constexpr int64_t kEvalBatchSize = 500;

#if TPP_WITH_CUDA
constexpr bool kCudaTrainingBuilt = true;
#else
constexpr bool kCudaTrainingBuilt = false;
#endif

}  // namespace

RunData open_run_data(const DataSpec& spec, data::DatasetLocation where, const std::string& command) {
  RunData d;
  d.where = std::move(where);
  const auto& splits = d.where.splits;
  const auto test_split = std::find_if(splits.begin(), splits.end(), [](const std::string& s) { return s != "train"; });
  TPP_CHECK(test_split != splits.end(), "{}: {} in {} has no test or validation split (splits: {})", command,
            d.where.name, d.where.dir.string(), fmt::join(splits, ", "));
  d.train = data::open_dataset(d.where, "train");
  d.test = data::open_dataset(d.where, *test_split);
  if (spec.limit > 0) d.train = std::make_shared<data::FirstSamples>(d.train, spec.limit);
  if (spec.test_limit > 0) d.test = std::make_shared<data::FirstSamples>(d.test, spec.test_limit);
  d.num_classes = d.train->info().num_classes();
  const std::optional<Shape> image = d.train->image_shape();
  d.in_channels = image ? (*image)[0] : 3;
  // Datasets of varying image sizes (ImageFolder) are cropped to 224 by their transforms.
  d.input = models::model_input_shape(spec.arch, d.in_channels, image ? (*image)[1] : 224);
  return d;
}

data::TransformPtr transforms_for(const RunData& d, bool train) {
  data::TransformPtr standard = data::standard_transforms(d.where.name, train);
  const std::optional<Shape> image = d.train->image_shape();
  if (!image || ((*image)[1] == d.input[1] && (*image)[2] == d.input[2])) return standard;
  return std::make_shared<data::Compose>(std::vector<data::TransformPtr>{
      std::make_shared<data::Resize>(d.input[1], d.input[2]), std::move(standard)});
}

std::unique_ptr<data::DataLoader> make_train_loader(const RunData& d, const LoaderSpec& spec) {
  return std::make_unique<data::DataLoader>(d.train, transforms_for(d, true),
                                            data::DataLoaderOptions{.batch_size = spec.batch_size,
                                                                    .shuffle = true,
                                                                    .drop_last = true,
                                                                    .num_workers = spec.workers,
                                                                    .seed = spec.seed,
                                                                    .rank = spec.rank,
                                                                    .world_size = spec.world_size});
}

std::unique_ptr<data::DataLoader> make_test_loader(const RunData& d, const LoaderSpec& spec) {
  return std::make_unique<data::DataLoader>(
      d.test, transforms_for(d, false),
      data::DataLoaderOptions{.batch_size = kEvalBatchSize,
                              .num_workers = spec.workers,
                              .seed = spec.seed,
                              .rank = spec.rank,
                              .world_size = spec.world_size});
}

std::function<std::optional<Tensor>()> epoch_images(data::DataLoader& loader, int64_t epoch) {
  loader.start_epoch(epoch);
  return [&loader]() -> std::optional<Tensor> {
    std::optional<data::Batch> batch = loader.next();
    if (!batch) return std::nullopt;
    return std::move(batch->images);
  };
}

Device default_device() { return kCudaTrainingBuilt && cuda_device_count() > 0 ? Device::cuda() : Device::cpu(); }

void check_training_device(Device device, const std::string& what) {
  if (device.is_cpu()) return;
  TPP_CHECK(kCudaTrainingBuilt, "{}: `device` {}: this build has no CUDA backend ({} GPU(s) visible); use `device` cpu",
            what, device.str(), cuda_device_count());
  TPP_CHECK(device.index < cuda_device_count(), "{}: `device` {}: no such GPU ({} usable); use `device` cpu", what,
            device.str(), cuda_device_count());
}

Device training_device(Device device, int local_rank, bool distributed) {
  // One process per GPU: the rank's GPU is its local rank's, as NCCL set it up.
  return device.is_cuda() && distributed ? Device::cuda(local_rank) : device;
}

}  // namespace tpp::train
