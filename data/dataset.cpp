#include "data/dataset.h"

#include <algorithm>
#include <cmath>

#include "engine/error.h"

namespace tpp::data {

void Dataset::check_index(int64_t index) const {
  TPP_CHECK(index >= 0 && index < size(), "{} {}: sample index {} is out of range for {} samples", info_.name,
            info_.split, index, size());
}

TensorDataset::TensorDataset(DatasetInfo info, Tensor images, Tensor labels, std::vector<std::string> files,
                             std::vector<int64_t> file_starts)
    : Dataset(std::move(info)),
      images_(std::move(images)),
      labels_(std::move(labels)),
      files_(std::move(files)),
      file_starts_(std::move(file_starts)) {
  TPP_CHECK(images_.dtype() == DType::u8 && images_.dim() == 4 && images_.is_contiguous(),
            "TensorDataset: images must be contiguous u8 [N, C, H, W] but got {} {}", dtype_name(images_.dtype()),
            shape_str(images_.sizes()));
  TPP_CHECK(labels_.dtype() == DType::i64 && labels_.dim() == 1 && labels_.size(0) == images_.size(0),
            "TensorDataset: labels must be i64 [{}] but got {} {}", images_.size(0), dtype_name(labels_.dtype()),
            shape_str(labels_.sizes()));
  TPP_CHECK(files_.size() == file_starts_.size(), "TensorDataset: {} files but {} start indices", files_.size(),
            file_starts_.size());
}

Sample TensorDataset::get(int64_t index) const {
  check_index(index);
  return {images_.select(0, index), labels_.data<int64_t>()[index]};
}

int64_t TensorDataset::label(int64_t index) const {
  check_index(index);
  return labels_.data<int64_t>()[index];
}

std::optional<Shape> TensorDataset::image_shape() const {
  return Shape(images_.sizes().begin() + 1, images_.sizes().end());
}

std::string TensorDataset::describe(int64_t index) const {
  if (files_.empty()) return fmt::format("{} {} sample {}", info().name, info().split, index);
  const auto after = std::upper_bound(file_starts_.begin(), file_starts_.end(), index);
  const size_t file = static_cast<size_t>(std::max<std::ptrdiff_t>(after - file_starts_.begin() - 1, 0));
  return fmt::format("{} record {}", files_[file], index - file_starts_[file]);
}

FirstSamples::FirstSamples(std::shared_ptr<const Dataset> base, int64_t limit)
    : Dataset(base->info()), base_(std::move(base)), limit_(std::min(limit, base_->size())) {
  TPP_CHECK(limit > 0, "FirstSamples: limit must be positive but got {}", limit);
}

Sample FirstSamples::get(int64_t index) const {
  check_index(index);
  return base_->get(index);
}

int64_t FirstSamples::label(int64_t index) const {
  check_index(index);
  return base_->label(index);
}

ChannelStats channel_stats(const Dataset& dataset, int64_t limit) {
  const int64_t n = limit > 0 ? std::min(limit, dataset.size()) : dataset.size();
  // Integer sums of the u8 values are exact; the division happens once.
  std::vector<uint64_t> sum, sum_sq, count;
  for (int64_t i = 0; i < n; ++i) {
    const Tensor image = dataset.get(i).image.contiguous();
    const int64_t channels = image.size(0), plane = image.numel() / channels;
    if (sum.empty()) sum.assign(channels, 0), sum_sq.assign(channels, 0), count.assign(channels, 0);
    TPP_CHECK(static_cast<size_t>(channels) == sum.size(), "channel_stats: {} has {} channels but earlier images {}",
              dataset.describe(i), channels, sum.size());
    const uint8_t* pixels = image.data<uint8_t>();
    for (int64_t c = 0; c < channels; ++c) {
      uint64_t s = 0, s2 = 0;
      for (int64_t k = 0; k < plane; ++k) {
        const uint64_t v = pixels[c * plane + k];
        s += v;
        s2 += v * v;
      }
      sum[c] += s, sum_sq[c] += s2, count[c] += static_cast<uint64_t>(plane);
    }
  }
  ChannelStats stats;
  stats.samples = n;
  for (size_t c = 0; c < sum.size(); ++c) {
    const double mean = static_cast<double>(sum[c]) / static_cast<double>(count[c]);
    const double mean_sq = static_cast<double>(sum_sq[c]) / static_cast<double>(count[c]);
    stats.mean.push_back(mean / 255.0);
    stats.std.push_back(std::sqrt(std::max(mean_sq - mean * mean, 0.0)) / 255.0);
  }
  return stats;
}

std::vector<int64_t> label_histogram(const Dataset& dataset) {
  std::vector<int64_t> counts(static_cast<size_t>(dataset.info().num_classes()), 0);
  for (int64_t i = 0; i < dataset.size(); ++i) {
    const int64_t label = dataset.label(i);
    if (label >= static_cast<int64_t>(counts.size())) counts.resize(static_cast<size_t>(label) + 1, 0);
    ++counts[static_cast<size_t>(label)];
  }
  return counts;
}

}  // namespace tpp::data
