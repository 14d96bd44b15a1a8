// File reading for the dataset readers: whole files into memory, gzip
// inflated transparently (recognised by its magic bytes, not the name), and
// every failure reported as one tpp::Error naming the dataset and the file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string_view>
#include <vector>

namespace tpp::data {

namespace fs = std::filesystem;

// The bytes of `path`, inflated when it is gzip data. `what` (e.g. "mnist")
// starts every error message.
std::vector<uint8_t> read_file_bytes(const fs::path& path, std::string_view what);

// `path` itself when it exists, else `path` + ".gz" when that exists.
std::optional<fs::path> find_plain_or_gz(const fs::path& path);
// Like find_plain_or_gz, but a missing file is an error naming both names.
fs::path require_plain_or_gz(const fs::path& path, std::string_view what);

// Big-endian 32-bit integer at `offset` (IDX headers).
inline uint32_t read_be32(const std::vector<uint8_t>& bytes, size_t offset) {
  return (uint32_t{bytes[offset]} << 24) | (uint32_t{bytes[offset + 1]} << 16) | (uint32_t{bytes[offset + 2]} << 8) |
         uint32_t{bytes[offset + 3]};
}

}  // namespace tpp::data
