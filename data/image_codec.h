// Image files: JPEG through libjpeg-turbo (TurboJPEG), PNG through stb_image.
// Decoded images are u8 [3, H, W] RGB, whatever the file held (grey, alpha
// and CMYK are converted), as torchvision's default loader gives RGB.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/tensor.h"

namespace tpp::data {

// Decoders refuse images of more pixels than this (64 Mi, e.g. 8192 x 8192),
// judged from the header before any pixel memory is allocated: a tiny file
// can claim 65535 x 65535 pixels.
inline constexpr int64_t kMaxImagePixels = int64_t{1} << 26;

// `where` (the file name) starts every error message.
Tensor decode_jpeg(std::span<const uint8_t> bytes, const std::string& where);
Tensor decode_png(std::span<const uint8_t> bytes, const std::string& where);
// Reads and decodes a .jpg/.jpeg/.png file; the content (magic bytes)
// decides the decoder, so a PNG named .jpg still loads. Errors read
// "<what>: <path>: ...".
Tensor load_image(const std::filesystem::path& path, std::string_view what = "image");

// Encoders for u8 [C, H, W] images with C = 1 or 3 (tests, exports).
std::vector<uint8_t> encode_jpeg(const Tensor& image, int quality = 95);
std::vector<uint8_t> encode_png(const Tensor& image);

}  // namespace tpp::data
