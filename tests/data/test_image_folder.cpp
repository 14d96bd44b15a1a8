// ImageFolder on small JPEG and PNG files the tests write.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>

#include "data/catalog.h"
#include "data/image_codec.h"
#include "data/image_folder.h"
#include "data/loader.h"
#include "tests/data/data_test_util.h"

using namespace tpp;
using namespace tpp::data;
using tpp::testing::TempDir;
using tpp::testing::write_bytes;

namespace {

// A smooth RGB image (JPEG keeps smooth images nearly exact): u8 [3, h, w].
Tensor gradient_image(int64_t height, int64_t width, int seed) {
  Tensor image = empty({3, height, width}, {.dtype = DType::u8});
  uint8_t* p = image.data<uint8_t>();
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t y = 0; y < height; ++y)
      for (int64_t x = 0; x < width; ++x)
        p[(c * height + y) * width + x] = static_cast<uint8_t>(40 + seed * 10 + c * 50 + y * 3 + x * 2);
  return image;
}

int max_abs_difference(const Tensor& a, const Tensor& b) {
  const auto va = a.contiguous().to_vector<uint8_t>(), vb = b.contiguous().to_vector<uint8_t>();
  REQUIRE(va.size() == vb.size());
  int worst = 0;
  for (size_t i = 0; i < va.size(); ++i) worst = std::max(worst, std::abs(int{va[i]} - int{vb[i]}));
  return worst;
}

}  // namespace

TEST_SUITE("data.imagefolder") {
  TEST_CASE("PNG round trip is exact, JPEG is close, grey becomes RGB") {
    const Tensor image = gradient_image(6, 10, 1);
    const Tensor png = decode_png(encode_png(image), "test.png");
    CHECK(png.sizes() == Shape{3, 6, 10});
    CHECK(max_abs_difference(png, image) == 0);
    const Tensor jpeg = decode_jpeg(encode_jpeg(image, 100), "test.jpg");
    CHECK(jpeg.sizes() == Shape{3, 6, 10});
    CHECK(max_abs_difference(jpeg, image) <= 3);
    const Tensor grey = image.slice(0, 0, 1);
    const Tensor grey_png = decode_png(encode_png(grey), "grey.png");
    CHECK(max_abs_difference(grey_png.slice(0, 2, 3), grey) == 0);
    const Tensor grey_jpeg = decode_jpeg(encode_jpeg(grey, 100), "grey.jpg");
    CHECK(max_abs_difference(grey_jpeg.slice(0, 1, 2), grey) <= 2);
  }

  TEST_CASE("classes are the sub-folders sorted by name, files are found recursively and sorted") {
    TempDir tmp;
    const fs::path train = tmp / "train";
    // Written out of order, with a non-image file and an upper-case extension.
    write_bytes(train / "zebra" / "b.png", encode_png(gradient_image(5, 4, 3)));
    write_bytes(train / "zebra" / "a.JPG", encode_jpeg(gradient_image(8, 8, 2)));
    write_bytes(train / "cat" / "notes.txt", {'h', 'i'});
    write_bytes(train / "cat" / "2.jpeg", encode_jpeg(gradient_image(7, 9, 1)));
    write_bytes(train / "cat" / "nested" / "1.png", encode_png(gradient_image(3, 3, 0)));
    write_bytes(train / "cat" / "1.png", encode_png(gradient_image(4, 6, 0)));

    const ImageFolder folder(train, "imagefolder", "train");
    CHECK(folder.info().class_names == std::vector<std::string>{"cat", "zebra"});
    REQUIRE(folder.size() == 5);
    CHECK(folder.file(0) == train / "cat" / "1.png");
    CHECK(folder.file(1) == train / "cat" / "2.jpeg");
    CHECK(folder.file(2) == train / "cat" / "nested" / "1.png");
    CHECK(folder.file(3) == train / "zebra" / "a.JPG");
    CHECK(folder.file(4) == train / "zebra" / "b.png");
    CHECK(folder.label(1) == 0);
    CHECK(folder.label(3) == 1);
    CHECK(!folder.image_shape().has_value());

    const Sample png = folder.get(0);
    CHECK(png.label == 0);
    CHECK(max_abs_difference(png.image, gradient_image(4, 6, 0)) == 0);
    const Sample jpeg = folder.get(3);
    CHECK(jpeg.label == 1);
    CHECK(jpeg.image.sizes() == Shape{3, 8, 8});
    CHECK(max_abs_difference(jpeg.image, gradient_image(8, 8, 2)) <= 4);
    CHECK(label_histogram(folder) == std::vector<int64_t>{3, 2});
  }

  TEST_CASE("imagefolder:<path> lists the splits, train first, and opens each") {
    TempDir tmp;
    write_bytes(tmp / "val" / "a" / "0.png", encode_png(gradient_image(4, 4, 0)));
    write_bytes(tmp / "train" / "a" / "0.png", encode_png(gradient_image(4, 4, 0)));
    write_bytes(tmp / "train" / "b" / "0.png", encode_png(gradient_image(4, 4, 1)));
    const DatasetLocation where = locate_dataset("imagefolder:" + tmp.path().string(), "/unused");
    CHECK(where.splits == std::vector<std::string>{"train", "val"});
    CHECK(open_dataset(where, "train")->size() == 2);
    CHECK(open_dataset(where, "val")->info().split == "val");
  }

  TEST_CASE("a loader over an ImageFolder resizes varied images into one batch") {
    TempDir tmp;
    write_bytes(tmp / "train" / "a" / "0.jpg", encode_jpeg(gradient_image(20, 30, 0)));
    write_bytes(tmp / "train" / "b" / "0.png", encode_png(gradient_image(12, 9, 1)));
    write_bytes(tmp / "train" / "b" / "1.jpg", encode_jpeg(gradient_image(9, 12, 2)));
    auto folder = std::make_shared<ImageFolder>(tmp / "train");
    const auto transform = std::make_shared<Compose>(std::vector<TransformPtr>{
        std::make_shared<RandomResizedCrop>(8), std::make_shared<RandomHorizontalFlip>(), std::make_shared<ToFloat>()});
    DataLoader loader(folder, transform, {.batch_size = 3, .shuffle = true, .num_workers = 2, .seed = 4});
    loader.start_epoch(0);
    const auto batch = loader.next();
    REQUIRE(batch.has_value());
    CHECK(batch->images.sizes() == Shape{3, 3, 8, 8});
    auto labels = batch->labels.to_vector<int64_t>();
    std::sort(labels.begin(), labels.end());
    CHECK(labels == std::vector<int64_t>{0, 1, 1});
    CHECK(!loader.next().has_value());
  }
}
