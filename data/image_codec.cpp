#include "data/image_codec.h"

#include <turbojpeg.h>

#include <cstring>
#include <limits>
#include <memory>

#include "data/io.h"
#include "engine/error.h"

// stb's functions stay private to this file, so no other part of the program
// (or libstb) can clash with them.
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_FAILURE_USERMSG
#include <stb_image.h>
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

namespace tpp::data {

namespace {

// One TurboJPEG handle per thread (handles are not thread-safe).
struct TjHandleDeleter {
  void operator()(void* handle) const { tjDestroy(handle); }
};
using TjHandle = std::unique_ptr<void, TjHandleDeleter>;

tjhandle thread_decompressor() {
  thread_local TjHandle handle(tjInitDecompress());
  TPP_CHECK(handle != nullptr, "decode_jpeg: TurboJPEG could not start: {}", tjGetErrorStr2(nullptr));
  return handle.get();
}

// Interleaved HWC pixels with `channels` per pixel to u8 [3, H, W].
Tensor planar_rgb(const uint8_t* hwc, int64_t height, int64_t width, int64_t channels) {
  Tensor image = empty({3, height, width}, {.dtype = DType::u8});
  uint8_t* out = image.data<uint8_t>();
  const int64_t plane = height * width;
  for (int64_t p = 0; p < plane; ++p)
    for (int64_t c = 0; c < 3; ++c) out[c * plane + p] = hwc[p * channels + (channels == 1 ? 0 : c)];
  return image;
}

// Adobe-style CMYK JPEGs store inverted values, so the ink-free colour of a
// channel is its value scaled by (inverted) K.
Tensor cmyk_to_rgb(const std::vector<uint8_t>& cmyk, int64_t height, int64_t width) {
  Tensor image = empty({3, height, width}, {.dtype = DType::u8});
  uint8_t* out = image.data<uint8_t>();
  const int64_t plane = height * width;
  for (int64_t p = 0; p < plane; ++p) {
    const unsigned k = cmyk[p * 4 + 3];
    for (int64_t c = 0; c < 3; ++c) out[c * plane + p] = static_cast<uint8_t>((cmyk[p * 4 + c] * k + 127) / 255);
  }
  return image;
}

void check_image_size(int64_t width, int64_t height, std::string_view where, std::string_view format) {
  TPP_CHECK(width > 0 && height > 0 && width * height <= kMaxImagePixels,
            "{}: the {} header announces {}x{} pixels, beyond the limit of {} pixels", where, format, width, height,
            kMaxImagePixels);
}

bool is_png(std::span<const uint8_t> bytes) {
  static constexpr uint8_t kMagic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  return bytes.size() >= 8 && std::memcmp(bytes.data(), kMagic, 8) == 0;
}

std::vector<uint8_t> interleave(const Tensor& image, std::string_view op) {
  TPP_CHECK(image.dtype() == DType::u8 && image.dim() == 3 && (image.size(0) == 1 || image.size(0) == 3),
            "{}: expected a u8 image [1 or 3, H, W] but got {} {}", op, dtype_name(image.dtype()),
            shape_str(image.sizes()));
  const Tensor chw = image.contiguous();
  const int64_t channels = chw.size(0), plane = chw.size(1) * chw.size(2);
  std::vector<uint8_t> hwc(static_cast<size_t>(chw.numel()));
  const uint8_t* in = chw.data<uint8_t>();
  for (int64_t p = 0; p < plane; ++p)
    for (int64_t c = 0; c < channels; ++c) hwc[p * channels + c] = in[c * plane + p];
  return hwc;
}

}  // namespace

Tensor decode_jpeg(std::span<const uint8_t> bytes, const std::string& where) {
  tjhandle tj = thread_decompressor();
  int width = 0, height = 0, subsampling = 0, colorspace = 0;
  if (tjDecompressHeader3(tj, bytes.data(), static_cast<unsigned long>(bytes.size()), &width, &height, &subsampling,
                          &colorspace) != 0)
    fail("{}: corrupt JPEG: {}", where, tjGetErrorStr2(tj));
  check_image_size(width, height, where, "JPEG");
  const bool cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
  const int channels = cmyk ? 4 : 3;
  std::vector<uint8_t> pixels(static_cast<size_t>(width) * height * channels);
  // Stop on warnings too: libjpeg only warns about a file cut short and
  // fills the rest with grey, which must not pass as a real image.
  if (tjDecompress2(tj, bytes.data(), static_cast<unsigned long>(bytes.size()), pixels.data(), width, 0, height,
                    cmyk ? TJPF_CMYK : TJPF_RGB, TJFLAG_STOPONWARNING) != 0)
    fail("{}: corrupt JPEG: {}", where, tjGetErrorStr2(tj));
  return cmyk ? cmyk_to_rgb(pixels, height, width) : planar_rgb(pixels.data(), height, width, 3);
}

Tensor decode_png(std::span<const uint8_t> bytes, const std::string& where) {
  TPP_CHECK(bytes.size() <= static_cast<size_t>(std::numeric_limits<int>::max()),
            "{}: PNG file of {} bytes is too large to decode", where, bytes.size());
  const int size = static_cast<int>(bytes.size());
  int width = 0, height = 0, channels_in_file = 0;
  if (!stbi_info_from_memory(bytes.data(), size, &width, &height, &channels_in_file))
    fail("{}: corrupt PNG: {}", where, stbi_failure_reason());
  check_image_size(width, height, where, "PNG");
  std::unique_ptr<uint8_t, void (*)(void*)> pixels(
      stbi_load_from_memory(bytes.data(), size, &width, &height, &channels_in_file, 3), stbi_image_free);
  if (!pixels) fail("{}: corrupt PNG: {}", where, stbi_failure_reason());
  return planar_rgb(pixels.get(), height, width, 3);
}

Tensor load_image(const fs::path& path, std::string_view what) {
  const std::vector<uint8_t> bytes = read_file_bytes(path, what);
  const std::string ext = path.extension().string();
  const bool png = is_png(bytes) || ext == ".png" || ext == ".PNG";
  const std::string where = fmt::format("{}: {}", what, path.string());
  return png ? decode_png(bytes, where) : decode_jpeg(bytes, where);
}

std::vector<uint8_t> encode_jpeg(const Tensor& image, int quality) {
  const std::vector<uint8_t> hwc = interleave(image, "encode_jpeg");
  const int channels = static_cast<int>(image.size(0));
  const int height = static_cast<int>(image.size(1)), width = static_cast<int>(image.size(2));
  TjHandle tj(tjInitCompress());
  TPP_CHECK(tj != nullptr, "encode_jpeg: TurboJPEG could not start: {}", tjGetErrorStr2(nullptr));
  unsigned char* jpeg = nullptr;
  unsigned long size = 0;
  const int rc = tjCompress2(tj.get(), hwc.data(), width, 0, height, channels == 1 ? TJPF_GRAY : TJPF_RGB, &jpeg, &size,
                             channels == 1 ? TJSAMP_GRAY : TJSAMP_444, quality, 0);
  std::unique_ptr<unsigned char, void (*)(unsigned char*)> owned(jpeg, tjFree);
  TPP_CHECK(rc == 0, "encode_jpeg: {}", tjGetErrorStr2(tj.get()));
  return std::vector<uint8_t>(jpeg, jpeg + size);
}

std::vector<uint8_t> encode_png(const Tensor& image) {
  const std::vector<uint8_t> hwc = interleave(image, "encode_png");
  const int channels = static_cast<int>(image.size(0));
  const int height = static_cast<int>(image.size(1)), width = static_cast<int>(image.size(2));
  std::vector<uint8_t> png;
  const auto append = [](void* context, void* data, int size) {
    auto* out = static_cast<std::vector<uint8_t>*>(context);
    out->insert(out->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
  };
  TPP_CHECK(stbi_write_png_to_func(append, &png, width, height, channels, hwc.data(), width * channels) != 0,
            "encode_png: stb_image_write failed for a {} image", shape_str(image.sizes()));
  return png;
}

}  // namespace tpp::data
