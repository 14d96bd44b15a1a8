// Transforms against hand-computed values and PyTorch's F.interpolate.
#include <doctest/doctest.h>

#include <cmath>
#include <set>

#include "data/transforms.h"

using namespace tpp;
using namespace tpp::data;

namespace {

Tensor u8_image(std::vector<uint8_t> values, const Shape& shape) { return from_vector<uint8_t>(values, shape); }

// ((i * 37) % 101) / 10 for i < 40, shaped [2, 4, 5]: the input of the PyTorch reference below.
Tensor reference_input() {
  std::vector<float> values;
  for (int i = 0; i < 40; ++i) values.push_back(static_cast<float>((i * 37) % 101) / 10.0f);
  return from_vector<float>(values, {2, 4, 5});
}

void check_close(const Tensor& actual, const std::vector<float>& expected, double tolerance) {
  const std::vector<float> got = actual.to_vector<float>();
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    CHECK(got[i] == doctest::Approx(expected[i]).epsilon(tolerance));
  }
}

}  // namespace

TEST_SUITE("data.transforms") {
  TEST_CASE("to_float divides by 255") {
    const Tensor out = to_float(u8_image({0, 51, 255}, {1, 1, 3}));
    CHECK(out.dtype() == DType::f32);
    CHECK(out.to_vector<float>() == std::vector<float>{0.0f, 0.2f, 1.0f});
  }

  TEST_CASE("normalize subtracts the channel mean and divides by its std") {
    const Tensor image = from_vector<float>({0.5f, 1.0f, 0.0f, 0.25f}, {2, 1, 2});
    const Tensor out = normalize(image, {0.5f, 0.25f}, {0.5f, 0.25f});
    CHECK(out.to_vector<float>() == std::vector<float>{0.0f, 1.0f, -1.0f, 0.0f});
  }

  // Reference values from /usr/bin/python3 (torch 1.13):
  //   x = ((torch.arange(40) * 37) % 101).float().reshape(1, 2, 4, 5) / 10
  //   F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
  TEST_CASE("bilinear resize matches F.interpolate: upsampling 4x5 -> 7x9") {
    const Tensor out = resize_bilinear(reference_input(), 7, 9);
    CHECK(out.sizes() == Shape{2, 7, 9});
    const std::vector<float> values = out.to_vector<float>();
    // First row of channel 0, then the last three values of channel 1.
    const std::vector<float> first_row = {0.0f,      1.233333f, 3.288889f, 5.344445f, 7.399999f,
                                          3.844444f, 1.411112f, 3.466667f, 4.7f};
    check_close(out.select(0, 0).select(0, 0).contiguous(), first_row, 1e-5);
    CHECK(values[63 + 60] == doctest::Approx(8.588888f).epsilon(1e-5));
    CHECK(values[63 + 61] == doctest::Approx(5.033332f).epsilon(1e-5));
    CHECK(values[63 + 62] == doctest::Approx(2.9f).epsilon(1e-5));
    CHECK(values[9 * 3 + 4] == doctest::Approx(4.85f).epsilon(1e-5));  // channel 0, row 3, column 4
  }

  TEST_CASE("bilinear resize matches F.interpolate: downsampling 4x5 -> 3x2 and 4x5 -> 5x3") {
    check_close(resize_bilinear(reference_input(), 3, 2),
                {2.9125f, 2.904167f, 2.75f, 6.95f, 6.795834f, 6.7875f, 5.791667f, 4.941667f, 4.7875f, 2.675f, 3.783333f,
                 6.720834f},
                1e-5);
    check_close(
        resize_bilinear(reference_input(), 5, 3),
        {1.233333f, 7.4f,      3.466666f, 4.756667f, 6.209999f, 4.633333f, 5.416667f, 4.849999f, 4.283334f, 5.066667f,
         3.49f,     4.943334f, 6.233333f, 2.3f,      8.466666f, 4.533333f, 0.6f,      6.766666f, 3.343333f, 6.48f,
         5.576666f, 5.35f,     8.15f,     4.216666f, 7.356667f, 6.789999f, 3.866667f, 6.166667f, 5.599999f, 5.033334f},
        1e-5);
  }

  TEST_CASE("bilinear resize to the same size is the identity, u8 images are rounded") {
    const Tensor x = reference_input();
    CHECK(resize_bilinear(x, 4, 5).to_vector<float>() == x.to_vector<float>());
    // Doubling [0, 255]: source positions -0.25 -> 0, 0.25, 0.75, 1.25 -> 1 with weights 0, .25, .75, 1.
    const Tensor out = resize_bilinear(u8_image({0, 255}, {1, 1, 2}), 1, 4);
    CHECK(out.dtype() == DType::u8);
    CHECK(out.to_vector<uint8_t>() == std::vector<uint8_t>{0, 64, 191, 255});
  }

  TEST_CASE("crop takes a window, the parts outside the image are zero") {
    const Tensor image = u8_image({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 3, 3});
    CHECK(crop(image, 1, 1, 2, 2).to_vector<uint8_t>() == std::vector<uint8_t>{5, 6, 8, 9});
    CHECK(crop(image, -1, -1, 3, 3).to_vector<uint8_t>() == std::vector<uint8_t>{0, 0, 0, 0, 1, 2, 0, 4, 5});
    CHECK(crop(image, 2, 2, 2, 2).to_vector<uint8_t>() == std::vector<uint8_t>{9, 0, 0, 0});
    CHECK(crop(image, 5, 5, 1, 2).to_vector<uint8_t>() == std::vector<uint8_t>{0, 0});
  }

  TEST_CASE("hflip mirrors every row of every channel") {
    const Tensor image = from_vector<float>({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 2});
    CHECK(hflip(image).to_vector<float>() == std::vector<float>{2, 1, 4, 3, 6, 5, 8, 7});
  }

  TEST_CASE("CenterCrop rounds the offset half to even, as torchvision") {
    SampleRandom rng(0, kTransformStream, 0, 0);
    std::vector<uint8_t> values(25);
    for (int i = 0; i < 25; ++i) values[static_cast<size_t>(i)] = static_cast<uint8_t>(i);
    CHECK(CenterCrop(3).apply(u8_image(values, {1, 5, 5}), rng).to_vector<uint8_t>() ==
          std::vector<uint8_t>{6, 7, 8, 11, 12, 13, 16, 17, 18});
    // 4 -> 3: offset round(0.5) = 0.
    std::vector<uint8_t> sixteen(values.begin(), values.begin() + 16);
    CHECK(CenterCrop(3).apply(u8_image(sixteen, {1, 4, 4}), rng).to_vector<uint8_t>() ==
          std::vector<uint8_t>{0, 1, 2, 4, 5, 6, 8, 9, 10});
  }

  TEST_CASE("Resize(n) scales the shorter side to n, the longer truncated") {
    SampleRandom rng(0, kTransformStream, 0, 0);
    CHECK(Resize(2).apply(zeros({3, 4, 9}), rng).sizes() == Shape{3, 2, 4});
    CHECK(Resize(2).apply(zeros({3, 9, 4}), rng).sizes() == Shape{3, 4, 2});
    CHECK(Resize(5, 7).apply(zeros({1, 9, 4}), rng).sizes() == Shape{1, 5, 7});
  }

  TEST_CASE("RandomCrop with padding 4 picks offsets in [-4, 4] and is a crop of the padded image") {
    std::vector<uint8_t> values(3 * 32 * 32);
    for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<uint8_t>(i % 251 + 1);
    const Tensor image = u8_image(values, {3, 32, 32});
    const RandomCrop transform(32, 4);
    std::set<std::pair<int64_t, int64_t>> offsets;
    for (uint64_t index = 0; index < 400; ++index) {
      SampleRandom rng(7, kTransformStream, 0, index), replay(7, kTransformStream, 0, index);
      const Tensor out = transform.apply(image, rng);
      const int64_t top = replay.integer(0, 9) - 4, left = replay.integer(0, 9) - 4;
      offsets.insert({top, left});
      CHECK(out.to_vector<uint8_t>() == crop(image, top, left, 32, 32).to_vector<uint8_t>());
    }
    CHECK(offsets.size() == 81);  // every offset pair occurs
  }

  TEST_CASE("RandomHorizontalFlip flips about half the samples, the same ones every time") {
    const Tensor image = u8_image({1, 2}, {1, 1, 2});
    const RandomHorizontalFlip flip;
    int flipped = 0;
    for (uint64_t index = 0; index < 1000; ++index) {
      SampleRandom a(3, kTransformStream, 2, index), b(3, kTransformStream, 2, index);
      const auto first = flip.apply(image, a).to_vector<uint8_t>();
      CHECK(first == flip.apply(image, b).to_vector<uint8_t>());
      flipped += first[0] == 2;
    }
    CHECK(flipped > 450);
    CHECK(flipped < 550);
  }

  TEST_CASE("random_resized_crop_box stays inside the image, within the scale and ratio ranges") {
    for (uint64_t index = 0; index < 300; ++index) {
      SampleRandom rng(11, kTransformStream, 0, index);
      const CropBox box = random_resized_crop_box(120, 200, {0.08, 1.0}, {3.0 / 4.0, 4.0 / 3.0}, rng);
      CHECK(box.top >= 0);
      CHECK(box.left >= 0);
      CHECK(box.top + box.height <= 120);
      CHECK(box.left + box.width <= 200);
      const double area = static_cast<double>(box.height * box.width) / (120.0 * 200.0);
      CHECK(area > 0.07);  // 0.08 less the rounding of both sides
      const double ratio = static_cast<double>(box.width) / static_cast<double>(box.height);
      CHECK(ratio > 0.70);
      CHECK(ratio < 1.42);
    }
  }

  TEST_CASE("random_resized_crop_box falls back to the central crop with the ratio clamped") {
    SampleRandom rng(0, kTransformStream, 0, 0);
    // A scale above 1 never fits, so all ten tries fail.
    CHECK(random_resized_crop_box(100, 100, {2.0, 3.0}, {0.75, 4.0 / 3.0}, rng) == CropBox{0, 0, 100, 100});
    // Too wide (ratio 3 > 4/3): full height, width round(100 * 4/3) = 133, centred.
    CHECK(random_resized_crop_box(100, 300, {2.0, 3.0}, {0.75, 4.0 / 3.0}, rng) == CropBox{0, 83, 100, 133});
    // Too tall (ratio 1/3 < 3/4): full width, height round(100 / 0.75) = 133.
    CHECK(random_resized_crop_box(300, 100, {2.0, 3.0}, {0.75, 4.0 / 3.0}, rng) == CropBox{83, 0, 133, 100});
  }

  TEST_CASE("RandomResizedCrop gives the requested size") {
    SampleRandom rng(5, kTransformStream, 1, 2);
    const Tensor out = RandomResizedCrop(16).apply(zeros({3, 40, 30}, {.dtype = DType::u8}), rng);
    CHECK(out.sizes() == Shape{3, 16, 16});
    CHECK(out.dtype() == DType::u8);
  }

  TEST_CASE("Compose applies its steps in order") {
    const Compose pipeline({std::make_shared<CenterCrop>(1, 2), std::make_shared<ToFloat>(),
                            std::make_shared<Normalize>(std::vector<float>{0.5f}, std::vector<float>{0.5f})});
    SampleRandom rng(0, kTransformStream, 0, 0);
    const Tensor out = pipeline.apply(u8_image({0, 255, 51, 0, 0, 0}, {1, 3, 2}), rng);
    CHECK(out.sizes() == Shape{1, 1, 2});
    const std::vector<float> values = out.to_vector<float>();
    CHECK(values[0] == doctest::Approx(-0.6));
    CHECK(values[1] == doctest::Approx(-1.0));
    CHECK(pipeline.describe() == "Compose(CenterCrop(1, 2), ToFloat(), Normalize(mean=[0.5], std=[0.5]))");
  }

  TEST_CASE("SampleRandom depends only on (seed, stream, epoch, index)") {
    SampleRandom a(1, kTransformStream, 2, 3), b(1, kTransformStream, 2, 3);
    for (int i = 0; i < 10; ++i) CHECK(a.next_u32() == b.next_u32());
    const auto first = [](uint64_t seed, uint64_t stream, uint64_t epoch, uint64_t index) {
      return SampleRandom(seed, stream, epoch, index).next_u64();
    };
    const uint64_t base = first(1, kTransformStream, 2, 3);
    CHECK(first(2, kTransformStream, 2, 3) != base);
    CHECK(first(1, kShuffleStream, 2, 3) != base);
    CHECK(first(1, kTransformStream, 3, 3) != base);
    CHECK(first(1, kTransformStream, 2, 4) != base);
    SampleRandom c(9, kTransformStream, 0, 0);
    for (int i = 0; i < 1000; ++i) {
      const double u = c.uniform(2.0, 3.0);
      CHECK((u >= 2.0 && u < 3.0));
    }
  }

  TEST_CASE("transforms refuse images of the wrong kind, naming the op and the image") {
    SampleRandom rng(0, kTransformStream, 0, 0);
    CHECK_THROWS_WITH(to_float(zeros({1, 2, 2})),
                      "to_float: expected a u8 image but got f32 [1, 2, 2] (ToFloat applied twice?)");
    CHECK_THROWS_WITH(normalize(zeros({1, 2, 2}, {.dtype = DType::u8}), {0.5f}, {0.5f}),
                      "normalize: expected an f32 image but got u8 [1, 2, 2] (add ToFloat first)");
    CHECK_THROWS_WITH(normalize(zeros({3, 2, 2}), {0.5f, 0.5f}, {1.0f, 1.0f}),
                      "normalize: 2 means and 2 stds for an image [3, 2, 2]");
    CHECK_THROWS_WITH(resize_bilinear(zeros({2, 2}), 4, 4),
                      "resize: expected an image [C, H, W] of dtype u8 or f32 but got f32 [2, 2]");
    CHECK_THROWS_WITH(RandomCrop(40, 2).apply(zeros({1, 32, 32}), rng),
                      "RandomCrop: crop 40x40 is larger than the padded image 36x36");
  }

  TEST_CASE("standard pipelines: CIFAR training augments, evaluation does not") {
    const TransformPtr train = standard_transforms("cifar10", true);
    const TransformPtr eval = standard_transforms("cifar10", false);
    CHECK(
        train->describe().starts_with("Compose(RandomCrop(32, 32, padding=4), RandomHorizontalFlip(p=0.5), ToFloat()"));
    CHECK(eval->describe().starts_with("Compose(ToFloat(), Normalize("));
    CHECK(standard_transforms("imagenet", false)->describe().starts_with("Compose(Resize(256), CenterCrop(224, 224)"));
  }
}
