// The data side of a training run, shared by `tpp train` and `tpp prune`:
// the dataset's train and test splits (optionally cut to their first
// samples), the input the model takes, and the loaders with the dataset's
// usual transforms.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "data/catalog.h"
#include "data/loader.h"
#include "data/transforms.h"
#include "engine/device.h"

namespace tpp::train {

struct DataSpec {
  std::string arch;  // the model the data feeds (its input resolution)
  int64_t limit = 0, test_limit = 0;  // first N samples only (0: all)
};

struct RunData {
  data::DatasetLocation where;
  std::shared_ptr<const data::Dataset> train, test;
  int64_t num_classes = 0, in_channels = 3;
  Shape input;  // one sample as the model takes it, [C, H, W]
};

// The train split and the first split that is not "train" (test or val);
// `command` names the command in errors.
RunData open_run_data(const DataSpec& spec, data::DatasetLocation where, const std::string& command);

// The dataset's usual pipeline (augmented when `train`), after a resize when
// the model takes another resolution (mlp7_linear: MNIST at 32x32).
data::TransformPtr transforms_for(const RunData& data, bool train);

struct LoaderSpec {
  int64_t batch_size = 128;  // per rank
  int workers = 2;
  uint64_t seed = 0;
  int rank = 0, world_size = 1;  // data-parallel shards (data/loader.h)
};

// The shuffled training loader (whole batches only) and the evaluation loader.
std::unique_ptr<data::DataLoader> make_train_loader(const RunData& data, const LoaderSpec& spec);
std::unique_ptr<data::DataLoader> make_test_loader(const RunData& data, const LoaderSpec& spec);

// The images of `loader`'s epoch `epoch`, batch after batch (a source of
// images for prune::model_jsv); the loader must outlive the function.
std::function<std::optional<Tensor>()> epoch_images(data::DataLoader& loader, int64_t epoch = 0);

// cuda when this build trains on CUDA and a GPU is visible, else cpu.
Device default_device();
// Throws unless this build trains on `device` and it exists; `what` names the
// run ("train", "prune") in the error.
void check_training_device(Device device, const std::string& what);
// The device of this process's model and batches: in a data-parallel CUDA
// run, the GPU of the local rank.
Device training_device(Device device, int local_rank, bool distributed);

}  // namespace tpp::train
