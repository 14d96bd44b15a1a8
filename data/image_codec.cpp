#include "data/image_codec.h"

#include <turbojpeg.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>

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

// A failed header read leaves libjpeg mid-header, and the next call on that
// handle then misreads a good file ("two SOI markers", or 0x0 pixels), so a
// handle that failed is replaced.
TjHandle& thread_decompressor() {
  thread_local TjHandle handle;
  if (!handle) handle.reset(tjInitDecompress());
  TPP_CHECK(handle != nullptr, "decode_jpeg: TurboJPEG could not start: {}", tjGetErrorStr2(nullptr));
  return handle;
}

[[noreturn]] void fail_jpeg(TjHandle& handle, const std::string& where) {
  const std::string reason = tjGetErrorStr2(handle.get());
  handle.reset();
  fail("{}: corrupt JPEG: {}", where, reason);
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
  TPP_CHECK(width > 0 && height > 0, "{}: the {} header announces an empty {}x{} image", where, format, width, height);
  TPP_CHECK(width <= kMaxImagePixels && height <= kMaxImagePixels && width * height <= kMaxImagePixels,
            "{}: the {} header announces {}x{} pixels, beyond the limit of {} pixels", where, format, width, height,
            kMaxImagePixels);
}

bool is_png(std::span<const uint8_t> bytes) {
  static constexpr uint8_t kMagic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  return bytes.size() >= 8 && std::memcmp(bytes.data(), kMagic, 8) == 0;
}

// What decode_png learns from the chunk structure before stb_image runs, so
// that nothing is allocated for sizes the file cannot back up.
struct PngScan {
  bool has_header = false;  // a well-formed IHDR came first
  bool has_end = false;     // the IEND chunk was reached
  uint32_t width = 0, height = 0;
  uint8_t bit_depth = 0, color_type = 0;
  uint64_t idat_bytes = 0;  // compressed image data, all IDAT chunks together
  // The file without its empty IDAT chunks, when it has any: stb_image hands
  // memcpy a null buffer (undefined behaviour) when the first IDAT is empty,
  // and an empty IDAT adds no data.
  std::optional<std::vector<uint8_t>> cleaned;
};

std::string chunk_name(std::span<const uint8_t> type) {
  std::string name;
  for (const uint8_t c : type) name += std::isalpha(c) ? static_cast<char>(c) : '?';
  return name;
}

// Walks the chunks up to IEND. A chunk that announces more bytes than follow
// is an error here, since stb_image would first allocate what it announces.
PngScan scan_png(std::span<const uint8_t> png, std::string_view where) {
  constexpr size_t kSignatureBytes = 8, kHeadBytes = 8, kCrcBytes = 4;  // a chunk: length, type, data, CRC
  PngScan scan;
  const auto at = [&](size_t offset) { return png.begin() + static_cast<ptrdiff_t>(offset); };
  size_t pos = kSignatureBytes;
  while (pos + kHeadBytes <= png.size()) {
    const uint32_t length = read_be32(png, pos);
    const std::span<const uint8_t> type = png.subspan(pos + 4, 4);
    TPP_CHECK(length <= png.size() - pos - kHeadBytes,
              "{}: corrupt PNG: chunk {} at offset {} announces {} bytes but only {} follow", where, chunk_name(type),
              pos, length, png.size() - pos - kHeadBytes);
    const auto is = [&](const char* name) { return std::memcmp(type.data(), name, 4) == 0; };
    const uint8_t* data = png.data() + pos + kHeadBytes;
    if (pos == kSignatureBytes && is("IHDR") && length == 13) {
      scan.has_header = true;
      scan.width = read_be32(png, pos + 8);
      scan.height = read_be32(png, pos + 12);
      scan.bit_depth = data[8];
      scan.color_type = data[9];
    }
    if (is("IDAT")) scan.idat_bytes += length;
    const size_t next = std::min(pos + kHeadBytes + length + kCrcBytes, png.size());
    const bool empty_idat = is("IDAT") && length == 0;
    if (empty_idat && !scan.cleaned) scan.cleaned.emplace(png.begin(), at(pos));
    if (!empty_idat && scan.cleaned) scan.cleaned->insert(scan.cleaned->end(), at(pos), at(next));
    pos = next;
    if (is("IEND")) {
      scan.has_end = true;
      break;
    }
  }
  TPP_CHECK(scan.has_end, "{}: corrupt PNG: the file ends after {} bytes, before the IEND chunk", where, png.size());
  if (scan.cleaned) scan.cleaned->insert(scan.cleaned->end(), at(pos), png.end());
  return scan;
}

// Deflate expands at most 1032-fold, so the compressed data must be at least
// the filtered scanlines / 1032 long; a file claiming more pixels is cut short
// or lying, and stb_image would allocate the claimed size first.
void check_png_data_size(const PngScan& scan, std::string_view where) {
  constexpr uint64_t kMaxDeflateRatio = 1032, kSlackBytes = 1024;
  const uint64_t samples = scan.color_type == 2 ? 3 : scan.color_type == 4 ? 2 : scan.color_type == 6 ? 4 : 1;
  const uint64_t row_bytes = 1 + (uint64_t{scan.width} * samples * std::max<uint64_t>(scan.bit_depth, 1) + 7) / 8;
  const uint64_t raw_bytes = uint64_t{scan.height} * row_bytes;
  TPP_CHECK(raw_bytes <= kMaxDeflateRatio * scan.idat_bytes + kSlackBytes,
            "{}: corrupt PNG: {} bytes of compressed image data cannot hold {}x{} pixels", where, scan.idat_bytes,
            scan.width, scan.height);
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
  TjHandle& tj = thread_decompressor();
  const auto size = static_cast<unsigned long>(bytes.size());
  int width = 0, height = 0, subsampling = 0, colorspace = 0;
  if (tjDecompressHeader3(tj.get(), bytes.data(), size, &width, &height, &subsampling, &colorspace) != 0)
    fail_jpeg(tj, where);
  if (width <= 0 || height <= 0) {  // TurboJPEG's answer for tables without a frame, e.g. a file cut short
    tj.reset();
    fail("{}: corrupt JPEG: no image frame in the header (is the file cut short?)", where);
  }
  check_image_size(width, height, where, "JPEG");
  const bool cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
  const int channels = cmyk ? 4 : 3;
  std::vector<uint8_t> pixels(static_cast<size_t>(width) * height * channels);
  // Stop on warnings too: libjpeg only warns about a file cut short and
  // fills the rest with grey, which must not pass as a real image.
  if (tjDecompress2(tj.get(), bytes.data(), size, pixels.data(), width, 0, height, cmyk ? TJPF_CMYK : TJPF_RGB,
                    TJFLAG_STOPONWARNING) != 0)
    fail_jpeg(tj, where);
  return cmyk ? cmyk_to_rgb(pixels, height, width) : planar_rgb(pixels.data(), height, width, 3);
}

Tensor decode_png(std::span<const uint8_t> file_bytes, const std::string& where) {
  TPP_CHECK(file_bytes.size() <= static_cast<size_t>(std::numeric_limits<int>::max()),
            "{}: PNG file of {} bytes is too large to decode", where, file_bytes.size());
  const PngScan scan = scan_png(file_bytes, where);
  if (scan.has_header) {
    check_image_size(scan.width, scan.height, where, "PNG");
    check_png_data_size(scan, where);
  }
  const std::span<const uint8_t> bytes = scan.cleaned ? std::span<const uint8_t>(*scan.cleaned) : file_bytes;
  int width = 0, height = 0, channels_in_file = 0;
  std::unique_ptr<uint8_t, void (*)(void*)> pixels(
      stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &width, &height, &channels_in_file, 3),
      stbi_image_free);
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
