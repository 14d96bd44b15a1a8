// File reading for the dataset readers: whole files into memory, gzip
// inflated transparently (recognised by its magic bytes, not the name), and
// every failure reported as one tpp::Error naming the dataset and the file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace tpp::data {

namespace fs = std::filesystem;

// Inflated gzip data never exceeds this: every dataset file we read is far
// smaller, so a bigger one is a decompression bomb or the wrong file.
inline constexpr uint64_t kMaxInflatedBytes = uint64_t{4} << 30;

// The bytes of `path`, inflated when it is gzip data. `what` (e.g. "mnist")
// starts every error message.
std::vector<uint8_t> read_file_bytes(const fs::path& path, std::string_view what);
// The content of a file from its raw bytes: inflated when they are gzip data
// (recognised by the magic bytes), else unchanged. `where` ("<what>: <path>")
// starts every error message; inflating beyond `max_inflated` is an error.
std::vector<uint8_t> decode_file_bytes(std::vector<uint8_t> raw, std::string_view where,
                                       uint64_t max_inflated = kMaxInflatedBytes);

// `path` itself when it exists, else `path` + ".gz" when that exists.
std::optional<fs::path> find_plain_or_gz(const fs::path& path);
// Like find_plain_or_gz, but a missing file is an error naming both names.
fs::path require_plain_or_gz(const fs::path& path, std::string_view what);

// Big-endian 32-bit integer at `offset` (IDX headers).
inline uint32_t read_be32(std::span<const uint8_t> bytes, size_t offset) {
  return (uint32_t{bytes[offset]} << 24) | (uint32_t{bytes[offset + 1]} << 16) | (uint32_t{bytes[offset + 2]} << 8) |
         uint32_t{bytes[offset + 3]};
}

}  // namespace tpp::data
