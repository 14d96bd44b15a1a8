// Hostile input for the data readers: the inputs the fuzzers found
// (tests/fuzz/regressions/) and absurd sizes in headers, each rejected with
// one clean line before anything of that size is allocated.
#include <doctest/doctest.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>

#include "data/cifar.h"
#include "data/image_codec.h"
#include "data/io.h"
#include "data/mnist.h"
#include "tests/data/data_test_util.h"
#include "tests/fuzz/regression_input.h"

using namespace tpp;
using namespace tpp::data;
using tpp::testing::fuzz_regression_input;
using tpp::testing::TempDir;

namespace {

Tensor small_image(int64_t size = 16) {
  Tensor image = empty({3, size, size}, {.dtype = DType::u8});
  uint8_t* p = image.data<uint8_t>();
  for (int64_t i = 0; i < image.numel(); ++i) p[i] = static_cast<uint8_t>(i * 7);
  return image;
}

void put_be32_at(std::vector<uint8_t>& bytes, size_t offset, uint32_t v) {
  for (int k = 0; k < 4; ++k) bytes[offset + k] = static_cast<uint8_t>(v >> (24 - 8 * k));
}

// A PNG whose IHDR announces width x height (stb_image ignores the CRC).
std::vector<uint8_t> png_announcing(uint32_t width, uint32_t height) {
  std::vector<uint8_t> png = encode_png(small_image());
  put_be32_at(png, 16, width);
  put_be32_at(png, 20, height);
  return png;
}

size_t find_marker(const std::vector<uint8_t>& bytes, std::initializer_list<uint8_t> marker) {
  const auto it = std::search(bytes.begin(), bytes.end(), marker.begin(), marker.end());
  REQUIRE(it != bytes.end());
  return static_cast<size_t>(it - bytes.begin());
}

std::vector<uint8_t> gzip_bytes(const std::vector<uint8_t>& plain) {
  TempDir tmp;
  tpp::testing::write_gzip(tmp / "x.gz", plain);
  std::ifstream in(tmp / "x.gz", std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_SUITE("data.hardening") {
  TEST_CASE("fuzz regression: an IDX file of zero images loads as u8 [0, 1, 28, 28]") {
    // Found by fuzz_idx: copying the empty body passed a null pointer to memcpy.
    const Tensor images = parse_idx_images(fuzz_regression_input("idx", "zero_images"), "zero");
    CHECK(images.sizes() == Shape{0, 1, 28, 28});
  }

  TEST_CASE("the buffer parsers give what the file readers give") {
    TempDir tmp;
    const std::vector<uint8_t> images = tpp::testing::idx_images(3, 2, 4), labels = tpp::testing::idx_labels({7, 0, 9});
    tpp::testing::write_bytes(tmp / "images", images);
    tpp::testing::write_gzip(tmp / "labels.gz", labels);
    CHECK(parse_idx_images(images, "m").to_vector<uint8_t>() ==
          read_idx_images(tmp / "images", "m").to_vector<uint8_t>());
    CHECK(parse_idx_labels(labels, "m", 10).to_vector<int64_t>() == std::vector<int64_t>{7, 0, 9});
    CHECK(read_idx_labels(tmp / "labels.gz", "m", 10).to_vector<int64_t>() == std::vector<int64_t>{7, 0, 9});
    CHECK(decode_file_bytes(gzip_bytes(labels), "m") == labels);
  }

  TEST_CASE("limit: an IDX header announcing 4294967295 images is refused from the file size") {
    std::vector<uint8_t> header = tpp::testing::idx_images(0, 28, 28);
    put_be32_at(header, 4, 0xffffffffu);
    CHECK_THROWS_WITH(parse_idx_images(header, "mnist: big"),
                      "mnist: big: truncated: the header announces 4294967295 images (3367254359296 bytes) but the "
                      "file holds 16 bytes (record 0 is cut off at offset 16)");
    std::vector<uint8_t> labels = tpp::testing::idx_labels({1, 2});
    put_be32_at(labels, 4, 1000000000u);
    CHECK_THROWS_WITH(parse_idx_labels(labels, "mnist: big", 10),
                      "mnist: big: truncated: the header announces 1000000000 labels (1000000008 bytes) but the file "
                      "holds 10 bytes (record 2 is cut off at offset 10)");
  }

  TEST_CASE("limit: gzip data may not inflate beyond the limit") {
    const std::vector<uint8_t> packed = gzip_bytes(std::vector<uint8_t>(1 << 20, 0));
    CHECK(packed.size() < 4096);
    CHECK_THROWS_WITH(decode_file_bytes(packed, "mnist: bomb.gz", 65536),
                      "mnist: bomb.gz: gzip data inflates beyond the limit of 65536 bytes");
    CHECK(decode_file_bytes(packed, "mnist: bomb.gz", 1 << 20).size() == size_t{1} << 20);
    CHECK(kMaxInflatedBytes == uint64_t{4} << 30);
  }

  TEST_CASE("CIFAR records parse from memory, a bad file appends nothing") {
    std::vector<uint8_t> pixels(3072, 1);
    std::vector<int64_t> labels{4};
    parse_cifar_records(tpp::testing::cifar_records({{2}, {9}}), CifarLabels::cifar10, "c", pixels, labels);
    CHECK(labels == std::vector<int64_t>{4, 2, 9});
    CHECK(pixels.size() == 3 * 3072);
    CHECK(pixels[3072 + 5] == 5);
    CHECK_THROWS_WITH(parse_cifar_records(tpp::testing::cifar_records({{3}, {10}}), CifarLabels::cifar10, "cifar10: b",
                                          pixels, labels),
                      "cifar10: b: record 1 (offset 3073) has label 10 (expected 0..9)");
    CHECK(labels.size() == 3);
    CHECK(pixels.size() == 3 * 3072);
  }

  TEST_CASE("limit: a PNG header announcing 100000x100000 pixels is refused before decoding") {
    CHECK_THROWS_WITH(decode_png(png_announcing(100000, 100000), "big.png"),
                      "big.png: the PNG header announces 100000x100000 pixels, beyond the limit of 67108864 pixels");
    CHECK_THROWS_WITH(decode_png(png_announcing(0xffffffffu, 0xffffffffu), "big.png"),
                      "big.png: the PNG header announces 4294967295x4294967295 pixels, beyond the limit of 67108864 "
                      "pixels");
    CHECK_THROWS_WITH(decode_png(png_announcing(0, 5), "empty.png"),
                      "empty.png: the PNG header announces an empty 0x5 image");
  }

  TEST_CASE("limit: a PNG announcing more pixels than its compressed data can hold is refused before decoding") {
    // Deflate expands at most 1032-fold: 4000x4000 RGB needs >= 46 KB of data.
    const std::vector<uint8_t> png = png_announcing(4000, 4000);
    const size_t idat_length = png.size() - 8 - 25 - 12 - 12;  // signature, IHDR, IDAT overhead, IEND
    CHECK_THROWS_WITH(
        decode_png(png, "lying.png"),
        fmt::format("lying.png: corrupt PNG: {} bytes of compressed image data cannot hold 4000x4000 pixels",
                    idat_length)
            .c_str());
  }

  TEST_CASE("limit: a JPEG header announcing 60000x60000 pixels is refused before decoding") {
    std::vector<uint8_t> jpeg = encode_jpeg(small_image());
    const size_t sof = find_marker(jpeg, {0xff, 0xc0});  // baseline frame: length, precision, height, width
    for (const size_t at : {sof + 5, sof + 7}) {
      jpeg[at] = 60000 >> 8;
      jpeg[at + 1] = 60000 & 0xff;
    }
    CHECK_THROWS_WITH(decode_jpeg(jpeg, "big.jpg"),
                      "big.jpg: the JPEG header announces 60000x60000 pixels, beyond the limit of 67108864 pixels");
  }

  TEST_CASE("a JPEG that fails leaves the thread's decoder fit for the next file") {
    // TurboJPEG's handle, kept per thread, used to stay mid-header after a
    // failed header read: the next good file then failed ("two SOI markers").
    const Tensor image = small_image();
    const std::vector<uint8_t> good = encode_jpeg(image);
    std::vector<uint8_t> oversized = good;
    const size_t sof = find_marker(oversized, {0xff, 0xc0});
    oversized[sof + 5] = oversized[sof + 6] = 0xff;  // height 65535: libjpeg refuses it while reading the header
    const auto cut_at = [&](size_t n) {
      return std::vector<uint8_t>(good.begin(), good.begin() + static_cast<ptrdiff_t>(n));
    };
    const std::vector<uint8_t> no_scan = cut_at(find_marker(good, {0xff, 0xda})), no_frame = cut_at(100);
    const Tensor expected = decode_jpeg(good, "good.jpg");
    CHECK_THROWS_WITH(decode_jpeg(oversized, "o.jpg"),
                      "o.jpg: corrupt JPEG: Maximum supported image dimension is 65500 pixels");
    CHECK(decode_jpeg(good, "good.jpg").to_vector<uint8_t>() == expected.to_vector<uint8_t>());
    CHECK_THROWS_WITH(decode_jpeg(no_scan, "s.jpg"),
                      "s.jpg: corrupt JPEG: Invalid JPEG file structure: missing SOS marker");
    CHECK(decode_jpeg(good, "good.jpg").to_vector<uint8_t>() == expected.to_vector<uint8_t>());
    CHECK_THROWS_WITH(decode_jpeg(no_frame, "f.jpg"),
                      "f.jpg: corrupt JPEG: no image frame in the header (is the file cut short?)");
    CHECK(decode_jpeg(good, "good.jpg").to_vector<uint8_t>() == expected.to_vector<uint8_t>());
  }

  TEST_CASE("fuzz regression: a PNG chunk announcing 2 GB is refused before stb_image allocates it") {
    const std::vector<uint8_t> png = fuzz_regression_input("image", "png_idat_claims_2gb");
    CHECK_THROWS_WITH(decode_png(png, "f.png"),
                      "f.png: corrupt PNG: chunk IDAT at offset 106 announces 1912602624 "
                      "bytes but only 9 follow");
  }

  TEST_CASE("fuzz regression: a PNG cut short after an empty IDAT chunk is corrupt") {
    // Found by fuzz_image: stb_image passed a null buffer to memcpy for the
    // empty chunk (see also the next case, which decodes through that path).
    const std::vector<uint8_t> png = fuzz_regression_input("image", "png_empty_idat");
    CHECK_THROWS_WITH(decode_png(png, "f.png"),
                      "f.png: corrupt PNG: the file ends after 41 bytes, before the IEND chunk");
  }

  TEST_CASE("an empty IDAT chunk before the image data is skipped") {
    const Tensor image = small_image();
    std::vector<uint8_t> png = encode_png(image);
    const size_t idat = find_marker(png, {'I', 'D', 'A', 'T'}) - 4;
    std::vector<uint8_t> empty_chunk = {0, 0, 0, 0, 'I', 'D', 'A', 'T', 0, 0, 0, 0};
    put_be32_at(empty_chunk, 8, static_cast<uint32_t>(crc32(0, empty_chunk.data() + 4, 4)));
    png.insert(png.begin() + static_cast<ptrdiff_t>(idat), empty_chunk.begin(), empty_chunk.end());
    CHECK(decode_png(png, "gap.png").to_vector<uint8_t>() == image.to_vector<uint8_t>());
  }
}
