// Helpers for the data tests: a temporary folder removed at the end, writers
// for IDX/CIFAR files, and the location of the shared real data.
#pragma once

#include <doctest/doctest.h>
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

namespace tpp::testing {

namespace fs = std::filesystem;

// A fresh folder under the system temp dir, deleted with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "tpp-data-test-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

inline void write_bytes(const fs::path& path, const std::vector<uint8_t>& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

inline void write_gzip(const fs::path& path, const std::vector<uint8_t>& bytes) {
  fs::create_directories(path.parent_path());
  gzFile out = gzopen(path.c_str(), "wb");
  REQUIRE(out != nullptr);
  REQUIRE(gzwrite(out, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
  REQUIRE(gzclose(out) == Z_OK);
}

inline void put_be32(std::vector<uint8_t>& bytes, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<uint8_t>(v >> shift));
}

// An IDX image file of n images rows x cols; pixel (i, k) = (i * 31 + k) % 256.
inline std::vector<uint8_t> idx_images(uint32_t n, uint32_t rows, uint32_t cols) {
  std::vector<uint8_t> bytes;
  put_be32(bytes, 0x00000803);
  put_be32(bytes, n);
  put_be32(bytes, rows);
  put_be32(bytes, cols);
  for (uint32_t i = 0; i < n; ++i)
    for (uint32_t k = 0; k < rows * cols; ++k) bytes.push_back(static_cast<uint8_t>((i * 31 + k) % 256));
  return bytes;
}

inline std::vector<uint8_t> idx_labels(const std::vector<uint8_t>& labels) {
  std::vector<uint8_t> bytes;
  put_be32(bytes, 0x00000801);
  put_be32(bytes, static_cast<uint32_t>(labels.size()));
  bytes.insert(bytes.end(), labels.begin(), labels.end());
  return bytes;
}

// CIFAR records: `label_bytes` label bytes then 3072 pixels, pixel k of
// record r = (r + k) % 256.
inline std::vector<uint8_t> cifar_records(const std::vector<std::vector<uint8_t>>& labels) {
  std::vector<uint8_t> bytes;
  for (size_t r = 0; r < labels.size(); ++r) {
    bytes.insert(bytes.end(), labels[r].begin(), labels[r].end());
    for (int k = 0; k < 3072; ++k) bytes.push_back(static_cast<uint8_t>((r + static_cast<size_t>(k)) % 256));
  }
  return bytes;
}

// The shared real data (mnist/, cifar10-sample/): beside the source tree as
// ../shared/data, else $TPP_DATA. Tests that need it skip, saying so, without.
inline std::optional<fs::path> shared_data_dir() {
  std::vector<fs::path> places = {fs::path(TPP_SOURCE_DIR) / ".." / "shared" / "data"};
  if (const char* env = std::getenv("TPP_DATA")) places.emplace_back(env);
  for (const fs::path& place : places) {
    std::error_code ec;
    if (fs::is_directory(place / "mnist", ec)) return place;
  }
  return std::nullopt;
}

inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

}  // namespace tpp::testing
