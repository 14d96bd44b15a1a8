// Datasets: indexable collections of (image, label). Images are u8 tensors
// [C, H, W] (as stored on disk, never scaled); labels are class indices.
// get() is const and thread-safe so that DataLoader workers share one dataset.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace tpp::data {

namespace fs = std::filesystem;

struct Sample {
  Tensor image;  // u8 [C, H, W]
  int64_t label = 0;
};

struct DatasetInfo {
  std::string name;    // "mnist", "cifar10", "imagefolder", ...
  std::string split;   // "train", "test", "val", ...
  std::string source;  // the directory or files it was read from
  std::vector<std::string> class_names;
  int64_t num_classes() const { return static_cast<int64_t>(class_names.size()); }
};

class Dataset {
 public:
  explicit Dataset(DatasetInfo info) : info_(std::move(info)) {}
  virtual ~Dataset() = default;
  Dataset(const Dataset&) = delete;
  Dataset& operator=(const Dataset&) = delete;

  const DatasetInfo& info() const { return info_; }
  virtual int64_t size() const = 0;
  virtual Sample get(int64_t index) const = 0;
  // The label alone, without decoding the image.
  virtual int64_t label(int64_t index) const = 0;
  // The shape every image has, or nullopt when sizes vary (ImageFolder).
  virtual std::optional<Shape> image_shape() const = 0;
  // Where sample `index` comes from, for error messages: a file and record.
  virtual std::string describe(int64_t index) const = 0;

 protected:
  void check_index(int64_t index) const;
  void set_info(DatasetInfo info) { info_ = std::move(info); }

 private:
  DatasetInfo info_;
};

// A dataset held in memory as one u8 tensor [N, C, H, W] and i64 labels [N]
// (MNIST, CIFAR). get() returns a view: no copy.
class TensorDataset final : public Dataset {
 public:
  // `files` are the files read, in order, and `file_starts` the index of each
  // one's first sample; describe() names a sample's file and record from them.
  TensorDataset(DatasetInfo info, Tensor images, Tensor labels, std::vector<std::string> files,
                std::vector<int64_t> file_starts);

  int64_t size() const override { return images_.size(0); }
  Sample get(int64_t index) const override;
  int64_t label(int64_t index) const override;
  std::optional<Shape> image_shape() const override;
  std::string describe(int64_t index) const override;

  const Tensor& images() const { return images_; }  // u8 [N, C, H, W]
  const Tensor& labels() const { return labels_; }  // i64 [N]

 private:
  Tensor images_, labels_;
  std::vector<std::string> files_;    // the files read, in order
  std::vector<int64_t> file_starts_;  // index of each file's first sample
};

// The first `limit` samples of `base` (all of them when it holds fewer), as a
// dataset of its own; for quick runs and tests.
class FirstSamples final : public Dataset {
 public:
  FirstSamples(std::shared_ptr<const Dataset> base, int64_t limit);
  int64_t size() const override { return limit_; }
  Sample get(int64_t index) const override;
  int64_t label(int64_t index) const override;
  std::optional<Shape> image_shape() const override { return base_->image_shape(); }
  std::string describe(int64_t index) const override { return base_->describe(index); }

 private:
  std::shared_ptr<const Dataset> base_;
  int64_t limit_;
};

// Per-channel mean and standard deviation (population) of the images scaled
// to [0, 1], over the first `limit` samples (all when limit <= 0).
struct ChannelStats {
  std::vector<double> mean, std;
  int64_t samples = 0;
};
ChannelStats channel_stats(const Dataset& dataset, int64_t limit = 0);

// How many samples carry each label (index = label).
std::vector<int64_t> label_histogram(const Dataset& dataset);

}  // namespace tpp::data
