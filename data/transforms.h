// Image transforms on single images [C, H, W] (u8 as stored, or f32 after
// ToFloat), composable with Compose. Geometric transforms keep the dtype.
//
// Reproducibility: every random choice comes from a SampleRandom, a Philox
// stream keyed by the loader's seed and indexed by (epoch, sample index), so
// a sample gets the same augmentation in a given epoch however many workers
// load it and in whatever order.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/philox.h"
#include "engine/tensor.h"

namespace tpp::data {

// Separate Philox streams for the two uses of randomness in the pipeline.
inline constexpr uint64_t kTransformStream = 1;
inline constexpr uint64_t kShuffleStream = 2;

// Random numbers drawn from philox4x32(counter = (stream << 48 | block,
// epoch << 32 | index), key = seed), block = 0, 1, 2, ... in turn.
class SampleRandom {
 public:
  SampleRandom(uint64_t seed, uint64_t stream, uint64_t epoch, uint64_t index);

  uint32_t next_u32();
  uint64_t next_u64();
  double uniform();                            // [0, 1), 53 bits
  double uniform(double low, double high);     // [low, high)
  int64_t integer(int64_t low, int64_t high);  // [low, high), high > low

 private:
  uint64_t seed_, counter_lo_, counter_hi_;
  PhiloxBlock block_{};
  int lane_ = 4;  // next unused lane of block_; 4 = draw a new block
};

// ---- functional forms: each returns a new contiguous image ----

Tensor to_float(const Tensor& image);  // u8 -> f32 in [0, 1] (value / 255)
// (x - mean[c]) / std[c] per channel, on f32; one value applies to all channels.
Tensor normalize(const Tensor& image, const std::vector<float>& mean, const std::vector<float>& std);
// Bilinear, as PyTorch's F.interpolate(mode="bilinear", align_corners=False)
// (no antialiasing when shrinking). u8 images are computed in f32 and rounded.
Tensor resize_bilinear(const Tensor& image, int64_t height, int64_t width);
// The window [top, top + height) x [left, left + width); the parts outside
// the image are zero (so a crop can also pad).
Tensor crop(const Tensor& image, int64_t top, int64_t left, int64_t height, int64_t width);
Tensor hflip(const Tensor& image);

struct CropBox {
  int64_t top = 0, left = 0, height = 0, width = 0;
  bool operator==(const CropBox&) const = default;
};
// torchvision's RandomResizedCrop choice: up to 10 tries of an area fraction
// in `scale` and a log-uniform aspect ratio in `ratio`; if none fits, the
// central crop with the ratio clamped to `ratio`.
CropBox random_resized_crop_box(int64_t height, int64_t width, std::array<double, 2> scale, std::array<double, 2> ratio,
                                SampleRandom& rng);

// ---- transform objects ----

class Transform {
 public:
  virtual ~Transform() = default;
  virtual Tensor apply(const Tensor& image, SampleRandom& rng) const = 0;
  virtual std::string describe() const = 0;  // e.g. "RandomCrop(32, padding=4)"
};
using TransformPtr = std::shared_ptr<const Transform>;

class Compose final : public Transform {
 public:
  Compose(std::vector<TransformPtr> steps) : steps_(std::move(steps)) {}
  Tensor apply(const Tensor& image, SampleRandom& rng) const override;
  std::string describe() const override;

 private:
  std::vector<TransformPtr> steps_;
};

class ToFloat final : public Transform {
 public:
  Tensor apply(const Tensor& image, SampleRandom&) const override { return to_float(image); }
  std::string describe() const override { return "ToFloat()"; }
};

class Normalize final : public Transform {
 public:
  Normalize(std::vector<float> mean, std::vector<float> std);
  Tensor apply(const Tensor& image, SampleRandom&) const override { return normalize(image, mean_, std_); }
  std::string describe() const override;

 private:
  std::vector<float> mean_, std_;
};

class Resize final : public Transform {
 public:
  explicit Resize(int64_t shorter_side);  // keeps the aspect ratio, as torchvision's Resize(int)
  Resize(int64_t height, int64_t width);
  Tensor apply(const Tensor& image, SampleRandom&) const override;
  std::string describe() const override;

 private:
  int64_t height_ = 0, width_ = 0, shorter_ = 0;
};

class CenterCrop final : public Transform {
 public:
  explicit CenterCrop(int64_t size) : CenterCrop(size, size) {}
  CenterCrop(int64_t height, int64_t width);
  Tensor apply(const Tensor& image, SampleRandom&) const override;
  std::string describe() const override;

 private:
  int64_t height_, width_;
};

// Zero-pads by `padding` on every side, then crops a random window.
class RandomCrop final : public Transform {
 public:
  RandomCrop(int64_t size, int64_t padding = 0) : RandomCrop(size, size, padding) {}
  RandomCrop(int64_t height, int64_t width, int64_t padding);
  Tensor apply(const Tensor& image, SampleRandom& rng) const override;
  std::string describe() const override;

 private:
  int64_t height_, width_, padding_;
};

class RandomHorizontalFlip final : public Transform {
 public:
  explicit RandomHorizontalFlip(double p = 0.5) : p_(p) {}
  Tensor apply(const Tensor& image, SampleRandom& rng) const override;
  std::string describe() const override;

 private:
  double p_;
};

class RandomResizedCrop final : public Transform {
 public:
  explicit RandomResizedCrop(int64_t size, std::array<double, 2> scale = {0.08, 1.0},
                             std::array<double, 2> ratio = {3.0 / 4.0, 4.0 / 3.0});
  Tensor apply(const Tensor& image, SampleRandom& rng) const override;
  std::string describe() const override;

 private:
  int64_t size_;
  std::array<double, 2> scale_, ratio_;
};

// The usual pipelines: "mnist"/"fashion-mnist" (ToFloat, Normalize),
// "cifar10"/"cifar100" (train: RandomCrop(32, 4) and flip), "imagenet" and
// ImageFolder data (train: RandomResizedCrop(224) and flip; eval: Resize(256),
// CenterCrop(224)). Normalisation constants are each training set's
// per-channel statistics (ImageNet: torchvision's).
TransformPtr standard_transforms(const std::string& dataset, bool train);

}  // namespace tpp::data
