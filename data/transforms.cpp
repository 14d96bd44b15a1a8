#include "data/transforms.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

#include "engine/error.h"

namespace tpp::data {

// ---- SampleRandom ----

SampleRandom::SampleRandom(uint64_t seed, uint64_t stream, uint64_t epoch, uint64_t index)
    : seed_(seed), counter_lo_(stream << 48), counter_hi_((epoch << 32) | index) {
  TPP_CHECK(epoch < (uint64_t{1} << 32) && index < (uint64_t{1} << 32) && stream < (uint64_t{1} << 16),
            "SampleRandom: epoch {} and index {} must be below 2^32, stream {} below 2^16", epoch, index, stream);
}

uint32_t SampleRandom::next_u32() {
  if (lane_ == 4) {
    block_ = philox4x32(counter_lo_++, counter_hi_, seed_);
    lane_ = 0;
  }
  return block_[static_cast<size_t>(lane_++)];
}

uint64_t SampleRandom::next_u64() {
  const uint64_t hi = next_u32();
  return (hi << 32) | next_u32();
}

double SampleRandom::uniform() { return static_cast<double>(next_u64() >> 11) * (1.0 / 9007199254740992.0); }

double SampleRandom::uniform(double low, double high) { return low + (high - low) * uniform(); }

int64_t SampleRandom::integer(int64_t low, int64_t high) {
  TPP_CHECK(high > low, "SampleRandom: empty integer range [{}, {})", low, high);
  // Modulo bias is below span / 2^64: far under anything measurable.
  return low + static_cast<int64_t>(next_u64() % static_cast<uint64_t>(high - low));
}

// ---- functional forms ----

namespace {

void check_image(const Tensor& image, std::string_view op) {
  TPP_CHECK(image.defined() && image.dim() == 3 && (image.dtype() == DType::u8 || image.dtype() == DType::f32),
            "{}: expected an image [C, H, W] of dtype u8 or f32 but got {}", op,
            image.defined() ? fmt::format("{} {}", dtype_name(image.dtype()), shape_str(image.sizes()))
                            : std::string("an undefined tensor"));
}

// Calls fn(T{}) with T = uint8_t or float, the image's element type.
template <class Fn>
decltype(auto) dispatch_image(const Tensor& image, Fn&& fn) {
  return image.dtype() == DType::u8 ? fn(uint8_t{}) : fn(float{});
}

template <class T>
T from_float(float value) {
  if constexpr (std::is_same_v<T, uint8_t>) {
    return static_cast<uint8_t>(std::clamp(std::nearbyint(value), 0.0f, 255.0f));
  } else {
    return value;
  }
}

// One axis of bilinear sampling: for each output position, the two source
// positions and the weight of the second (PyTorch's half-pixel convention,
// source positions below zero clamped to zero).
struct AxisTaps {
  std::vector<int64_t> first, second;
  std::vector<float> weight;
};

AxisTaps axis_taps(int64_t in_size, int64_t out_size) {
  AxisTaps taps;
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  for (int64_t o = 0; o < out_size; ++o) {
    const float source = std::max(scale * (static_cast<float>(o) + 0.5f) - 0.5f, 0.0f);
    const int64_t lo = std::min(static_cast<int64_t>(source), in_size - 1);
    taps.first.push_back(lo);
    taps.second.push_back(lo + (lo < in_size - 1 ? 1 : 0));
    taps.weight.push_back(std::clamp(source - static_cast<float>(lo), 0.0f, 1.0f));
  }
  return taps;
}

}  // namespace

Tensor to_float(const Tensor& image) {
  check_image(image, "to_float");
  TPP_CHECK(image.dtype() == DType::u8, "to_float: expected a u8 image but got {} {} (ToFloat applied twice?)",
            dtype_name(image.dtype()), shape_str(image.sizes()));
  const Tensor in = image.contiguous();
  Tensor out = empty(in.sizes());
  const uint8_t* src = in.data<uint8_t>();
  float* dst = out.data<float>();
  for (int64_t i = 0; i < in.numel(); ++i) dst[i] = static_cast<float>(src[i]) / 255.0f;
  return out;
}

Tensor normalize(const Tensor& image, const std::vector<float>& mean, const std::vector<float>& std) {
  check_image(image, "normalize");
  TPP_CHECK(image.dtype() == DType::f32, "normalize: expected an f32 image but got {} {} (add ToFloat first)",
            dtype_name(image.dtype()), shape_str(image.sizes()));
  const int64_t channels = image.size(0);
  const auto per_channel = [&](const std::vector<float>& v) {
    return static_cast<int64_t>(v.size()) == channels || v.size() == 1;
  };
  TPP_CHECK(per_channel(mean) && per_channel(std), "normalize: {} means and {} stds for an image {}", mean.size(),
            std.size(), shape_str(image.sizes()));
  const Tensor in = image.contiguous();
  Tensor out = empty(in.sizes());
  const int64_t plane = in.size(1) * in.size(2);
  const float* src = in.data<float>();
  float* dst = out.data<float>();
  for (int64_t c = 0; c < channels; ++c) {
    const float m = mean[mean.size() == 1 ? 0 : c], s = std[std.size() == 1 ? 0 : c];
    for (int64_t k = 0; k < plane; ++k) dst[c * plane + k] = (src[c * plane + k] - m) / s;
  }
  return out;
}

Tensor resize_bilinear(const Tensor& image, int64_t height, int64_t width) {
  check_image(image, "resize");
  TPP_CHECK(height > 0 && width > 0, "resize: output size {}x{} must be positive (image {})", height, width,
            shape_str(image.sizes()));
  const Tensor in = image.contiguous();
  const int64_t channels = in.size(0), in_h = in.size(1), in_w = in.size(2);
  Tensor out = empty({channels, height, width}, {.dtype = in.dtype()});
  const AxisTaps rows = axis_taps(in_h, height), cols = axis_taps(in_w, width);
  dispatch_image(in, [&](auto tag) {
    using T = decltype(tag);
    const T* src = in.data<T>();
    T* dst = out.data<T>();
    for (int64_t c = 0; c < channels; ++c) {
      const T* plane = src + c * in_h * in_w;
      for (int64_t y = 0; y < height; ++y) {
        const T* row0 = plane + rows.first[y] * in_w;
        const T* row1 = plane + rows.second[y] * in_w;
        const float wy = rows.weight[y];
        for (int64_t x = 0; x < width; ++x) {
          const int64_t x0 = cols.first[x], x1 = cols.second[x];
          const float wx = cols.weight[x];
          const float top = (1 - wx) * static_cast<float>(row0[x0]) + wx * static_cast<float>(row0[x1]);
          const float bottom = (1 - wx) * static_cast<float>(row1[x0]) + wx * static_cast<float>(row1[x1]);
          dst[(c * height + y) * width + x] = from_float<T>((1 - wy) * top + wy * bottom);
        }
      }
    }
  });
  return out;
}

Tensor crop(const Tensor& image, int64_t top, int64_t left, int64_t height, int64_t width) {
  check_image(image, "crop");
  TPP_CHECK(height > 0 && width > 0, "crop: window {}x{} must be positive (image {})", height, width,
            shape_str(image.sizes()));
  const Tensor in = image.contiguous();
  const int64_t channels = in.size(0), in_h = in.size(1), in_w = in.size(2);
  Tensor out = zeros({channels, height, width}, {.dtype = in.dtype()});
  // The part of the window that lies inside the image.
  const int64_t y_begin = std::max<int64_t>(0, -top), y_end = std::min(height, in_h - top);
  const int64_t x_begin = std::max<int64_t>(0, -left), x_end = std::min(width, in_w - left);
  if (y_begin >= y_end || x_begin >= x_end) return out;
  dispatch_image(in, [&](auto tag) {
    using T = decltype(tag);
    const T* src = in.data<T>();
    T* dst = out.data<T>();
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t y = y_begin; y < y_end; ++y)
        std::copy_n(src + (c * in_h + top + y) * in_w + left + x_begin, x_end - x_begin,
                    dst + (c * height + y) * width + x_begin);
  });
  return out;
}

Tensor hflip(const Tensor& image) {
  check_image(image, "hflip");
  const Tensor in = image.contiguous();
  Tensor out = empty_like(in);
  const int64_t rows = in.size(0) * in.size(1), width = in.size(2);
  dispatch_image(in, [&](auto tag) {
    using T = decltype(tag);
    const T* src = in.data<T>();
    T* dst = out.data<T>();
    for (int64_t r = 0; r < rows; ++r) std::reverse_copy(src + r * width, src + (r + 1) * width, dst + r * width);
  });
  return out;
}

CropBox random_resized_crop_box(int64_t height, int64_t width, std::array<double, 2> scale, std::array<double, 2> ratio,
                                SampleRandom& rng) {
  const double area = static_cast<double>(height * width);
  const double log_lo = std::log(ratio[0]), log_hi = std::log(ratio[1]);
  // Python's round() (ties to even) is std::nearbyint in the default mode.
  const auto round_int = [](double v) { return static_cast<int64_t>(std::nearbyint(v)); };
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * rng.uniform(scale[0], scale[1]);
    const double aspect = std::exp(rng.uniform(log_lo, log_hi));
    const int64_t w = round_int(std::sqrt(target_area * aspect));
    const int64_t h = round_int(std::sqrt(target_area / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const int64_t top = rng.integer(0, height - h + 1);
      const int64_t left = rng.integer(0, width - w + 1);
      return {top, left, h, w};
    }
  }
  const double in_ratio = static_cast<double>(width) / static_cast<double>(height);
  int64_t w = width, h = height;
  if (in_ratio < std::min(ratio[0], ratio[1])) {
    h = round_int(static_cast<double>(w) / std::min(ratio[0], ratio[1]));
  } else if (in_ratio > std::max(ratio[0], ratio[1])) {
    w = round_int(static_cast<double>(h) * std::max(ratio[0], ratio[1]));
  }
  return {(height - h) / 2, (width - w) / 2, h, w};
}

// ---- transform objects ----

Tensor Compose::apply(const Tensor& image, SampleRandom& rng) const {
  Tensor out = image;
  for (const TransformPtr& step : steps_) out = step->apply(out, rng);
  return out;
}

std::string Compose::describe() const {
  std::string text = "Compose(";
  for (size_t i = 0; i < steps_.size(); ++i) text += (i ? ", " : "") + steps_[i]->describe();
  return text + ")";
}

Normalize::Normalize(std::vector<float> mean, std::vector<float> std) : mean_(std::move(mean)), std_(std::move(std)) {
  TPP_CHECK(!mean_.empty() && mean_.size() == std_.size(), "Normalize: {} means but {} stds", mean_.size(),
            std_.size());
  for (const float s : std_) TPP_CHECK(s > 0, "Normalize: std {} must be positive", s);
}

std::string Normalize::describe() const {
  return fmt::format("Normalize(mean=[{}], std=[{}])", fmt::join(mean_, ", "), fmt::join(std_, ", "));
}

Resize::Resize(int64_t shorter_side) : shorter_(shorter_side) {
  TPP_CHECK(shorter_side > 0, "Resize: size {} must be positive", shorter_side);
}

Resize::Resize(int64_t height, int64_t width) : height_(height), width_(width) {
  TPP_CHECK(height > 0 && width > 0, "Resize: size {}x{} must be positive", height, width);
}

Tensor Resize::apply(const Tensor& image, SampleRandom&) const {
  check_image(image, "Resize");
  if (shorter_ == 0) return resize_bilinear(image, height_, width_);
  const int64_t h = image.size(1), w = image.size(2);
  // The longer side scales by the same factor, truncated as torchvision does.
  const int64_t longer = shorter_ * std::max(h, w) / std::min(h, w);
  return h <= w ? resize_bilinear(image, shorter_, longer) : resize_bilinear(image, longer, shorter_);
}

std::string Resize::describe() const {
  return shorter_ ? fmt::format("Resize({})", shorter_) : fmt::format("Resize({}, {})", height_, width_);
}

CenterCrop::CenterCrop(int64_t height, int64_t width) : height_(height), width_(width) {
  TPP_CHECK(height > 0 && width > 0, "CenterCrop: size {}x{} must be positive", height, width);
}

Tensor CenterCrop::apply(const Tensor& image, SampleRandom&) const {
  check_image(image, "CenterCrop");
  const auto offset = [](int64_t have, int64_t want) {
    return static_cast<int64_t>(std::nearbyint(static_cast<double>(have - want) / 2.0));
  };
  return crop(image, offset(image.size(1), height_), offset(image.size(2), width_), height_, width_);
}

std::string CenterCrop::describe() const { return fmt::format("CenterCrop({}, {})", height_, width_); }

RandomCrop::RandomCrop(int64_t height, int64_t width, int64_t padding)
    : height_(height), width_(width), padding_(padding) {
  TPP_CHECK(height > 0 && width > 0 && padding >= 0, "RandomCrop: size {}x{} and padding {} are invalid", height, width,
            padding);
}

Tensor RandomCrop::apply(const Tensor& image, SampleRandom& rng) const {
  check_image(image, "RandomCrop");
  const int64_t padded_h = image.size(1) + 2 * padding_, padded_w = image.size(2) + 2 * padding_;
  TPP_CHECK(padded_h >= height_ && padded_w >= width_, "RandomCrop: crop {}x{} is larger than the padded image {}x{}",
            height_, width_, padded_h, padded_w);
  const int64_t top = rng.integer(0, padded_h - height_ + 1);
  const int64_t left = rng.integer(0, padded_w - width_ + 1);
  return crop(image, top - padding_, left - padding_, height_, width_);
}

std::string RandomCrop::describe() const {
  return fmt::format("RandomCrop({}, {}, padding={})", height_, width_, padding_);
}

Tensor RandomHorizontalFlip::apply(const Tensor& image, SampleRandom& rng) const {
  return rng.uniform() < p_ ? hflip(image) : image;
}

std::string RandomHorizontalFlip::describe() const { return fmt::format("RandomHorizontalFlip(p={})", p_); }

RandomResizedCrop::RandomResizedCrop(int64_t size, std::array<double, 2> scale, std::array<double, 2> ratio)
    : size_(size), scale_(scale), ratio_(ratio) {
  TPP_CHECK(size > 0 && scale[0] > 0 && scale[0] <= scale[1] && ratio[0] > 0 && ratio[0] <= ratio[1],
            "RandomResizedCrop: size {}, scale [{}, {}] and ratio [{}, {}] are invalid", size, scale[0], scale[1],
            ratio[0], ratio[1]);
}

Tensor RandomResizedCrop::apply(const Tensor& image, SampleRandom& rng) const {
  check_image(image, "RandomResizedCrop");
  const CropBox box = random_resized_crop_box(image.size(1), image.size(2), scale_, ratio_, rng);
  return resize_bilinear(crop(image, box.top, box.left, box.height, box.width), size_, size_);
}

std::string RandomResizedCrop::describe() const {
  return fmt::format("RandomResizedCrop({}, scale=[{}, {}], ratio=[{:.4f}, {:.4f}])", size_, scale_[0], scale_[1],
                     ratio_[0], ratio_[1]);
}

// ---- standard pipelines ----

namespace {

TransformPtr compose(std::vector<TransformPtr> steps) { return std::make_shared<Compose>(std::move(steps)); }

TransformPtr normalize_by(std::vector<float> mean, std::vector<float> std) {
  return std::make_shared<Normalize>(std::move(mean), std::move(std));
}

}  // namespace

TransformPtr standard_transforms(const std::string& dataset, bool train) {
  using std::make_shared;
  const TransformPtr to_float = make_shared<ToFloat>();
  if (dataset == "mnist") return compose({to_float, normalize_by({0.1307f}, {0.3081f})});
  if (dataset == "fashion-mnist") return compose({to_float, normalize_by({0.2860f}, {0.3530f})});
  if (dataset == "cifar10" || dataset == "cifar100") {
    const TransformPtr norm = dataset == "cifar10"
                                  ? normalize_by({0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f})
                                  : normalize_by({0.5071f, 0.4865f, 0.4409f}, {0.2673f, 0.2564f, 0.2762f});
    if (!train) return compose({to_float, norm});
    return compose({make_shared<RandomCrop>(32, 4), make_shared<RandomHorizontalFlip>(), to_float, norm});
  }
  const TransformPtr norm = normalize_by({0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f});
  if (train) return compose({make_shared<RandomResizedCrop>(224), make_shared<RandomHorizontalFlip>(), to_float, norm});
  return compose({make_shared<Resize>(256), make_shared<CenterCrop>(224), to_float, norm});
}

}  // namespace tpp::data
