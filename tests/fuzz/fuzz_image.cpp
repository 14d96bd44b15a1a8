// The image decode path of ImageFolder: every input goes to the JPEG
// (libjpeg-turbo) and the PNG (stb_image) decoder.
#include "data/image_codec.h"
#include "tests/fuzz/fuzz_util.h"

using namespace tpp;

namespace {

void check_image(const Tensor& image) {
  fuzz::require(image.dtype() == DType::u8 && image.dim() == 3 && image.size(0) == 3, "u8 [3, H, W]");
  fuzz::require(image.size(1) * image.size(2) <= data::kMaxImagePixels, "within the pixel limit");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  fuzz::rejects_cleanly([&] { check_image(data::decode_jpeg(bytes, "fuzz.jpg")); });
  fuzz::rejects_cleanly([&] { check_image(data::decode_png(bytes, "fuzz.png")); });
  return 0;
}
