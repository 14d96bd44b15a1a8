// The image decode path of ImageFolder: every input goes to the JPEG
// (libjpeg-turbo) and the PNG (stb_image) decoder. Afterwards a known good
// JPEG and PNG must still decode exactly: a failed input may not leave the
// thread's decoder in a bad state.
#include "data/image_codec.h"
#include "tests/fuzz/fuzz_util.h"

using namespace tpp;

namespace {

void check_image(const Tensor& image) {
  fuzz::require(image.dtype() == DType::u8 && image.dim() == 3 && image.size(0) == 3, "u8 [3, H, W]");
  fuzz::require(image.size(1) * image.size(2) <= data::kMaxImagePixels, "within the pixel limit");
}

struct KnownGood {
  std::vector<uint8_t> jpeg, png;
  std::vector<uint8_t> jpeg_pixels, png_pixels;
  KnownGood() {
    Tensor image = empty({3, 8, 8}, {.dtype = DType::u8});
    for (int64_t i = 0; i < image.numel(); ++i) image.data<uint8_t>()[i] = static_cast<uint8_t>(i * 5);
    jpeg = data::encode_jpeg(image);
    png = data::encode_png(image);
    jpeg_pixels = data::decode_jpeg(jpeg, "good.jpg").to_vector<uint8_t>();
    png_pixels = data::decode_png(png, "good.png").to_vector<uint8_t>();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const KnownGood good;
  const std::span<const uint8_t> bytes(data, size);
  fuzz::rejects_cleanly([&] { check_image(data::decode_jpeg(bytes, "fuzz.jpg")); });
  fuzz::rejects_cleanly([&] { check_image(data::decode_png(bytes, "fuzz.png")); });
  fuzz::require(data::decode_jpeg(good.jpeg, "good.jpg").to_vector<uint8_t>() == good.jpeg_pixels,
                "a good JPEG still decodes after the input");
  fuzz::require(data::decode_png(good.png, "good.png").to_vector<uint8_t>() == good.png_pixels,
                "a good PNG still decodes after the input");
  return 0;
}
