#include "data/mnist.h"

#include <algorithm>

#include "data/io.h"
#include "engine/error.h"

namespace tpp::data {

namespace {

constexpr uint32_t kImageMagic = 0x00000803, kLabelMagic = 0x00000801;

void check_magic(std::span<const uint8_t> bytes, size_t header, uint32_t expected, std::string_view where,
                 std::string_view kind) {
  TPP_CHECK(bytes.size() >= header, "{}: truncated: {} bytes, shorter than the {}-byte IDX {} header", where,
            bytes.size(), header, kind);
  const uint32_t magic = read_be32(bytes, 0);
  TPP_CHECK(magic == expected, "{}: wrong magic number 0x{:08x} at offset 0 (expected 0x{:08x}, an IDX {} file)", where,
            magic, expected, kind);
}

// The body must hold exactly `count` records of `record_bytes` after `header`.
// count < 2^32 and record_bytes <= 2^32, so `expected` cannot overflow.
void check_body(size_t file_bytes, size_t header, uint64_t count, uint64_t record_bytes, std::string_view where,
                std::string_view records) {
  const uint64_t expected = header + count * record_bytes;
  TPP_CHECK(file_bytes >= expected,
            "{}: truncated: the header announces {} {} ({} bytes) but the file holds {} bytes (record {} is cut "
            "off at offset {})",
            where, count, records, expected, file_bytes, (file_bytes - header) / record_bytes, file_bytes);
  TPP_CHECK(file_bytes == expected, "{}: {} unexpected bytes after the last of {} {} (offset {})", where,
            file_bytes - expected, count, records, expected);
}

}  // namespace

std::vector<std::string> mnist_class_names(const std::string& name) {
  if (name == "fashion-mnist")
    return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
  return {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
}

Tensor parse_idx_images(std::span<const uint8_t> bytes, std::string_view where) {
  constexpr size_t header = 16;
  check_magic(bytes, header, kImageMagic, where, "image");
  const uint32_t count = read_be32(bytes, 4), rows = read_be32(bytes, 8), cols = read_be32(bytes, 12);
  TPP_CHECK(rows > 0 && cols > 0 && rows <= 65536 && cols <= 65536, "{}: implausible image size {}x{} at offset 8",
            where, rows, cols);
  check_body(bytes.size(), header, count, uint64_t{rows} * cols, where, "images");
  Tensor images = empty({count, 1, rows, cols}, {.dtype = DType::u8});
  std::copy(bytes.begin() + header, bytes.end(), images.data<uint8_t>());  // no memcpy: 0 images have no buffer
  return images;
}

Tensor parse_idx_labels(std::span<const uint8_t> bytes, std::string_view where, int64_t num_classes) {
  constexpr size_t header = 8;
  check_magic(bytes, header, kLabelMagic, where, "label");
  const uint32_t count = read_be32(bytes, 4);
  check_body(bytes.size(), header, count, 1, where, "labels");
  Tensor labels = empty({count}, {.dtype = DType::i64});
  int64_t* out = labels.data<int64_t>();
  for (uint32_t i = 0; i < count; ++i) {
    out[i] = bytes[header + i];
    TPP_CHECK(out[i] < num_classes, "{}: record {} (offset {}) has label {} (expected 0..{})", where, i, header + i,
              out[i], num_classes - 1);
  }
  return labels;
}

Tensor read_idx_images(const fs::path& path, std::string_view what) {
  return parse_idx_images(read_file_bytes(path, what), fmt::format("{}: {}", what, path.string()));
}

Tensor read_idx_labels(const fs::path& path, std::string_view what, int64_t num_classes) {
  return parse_idx_labels(read_file_bytes(path, what), fmt::format("{}: {}", what, path.string()), num_classes);
}

std::shared_ptr<TensorDataset> load_mnist(const fs::path& dir, const std::string& split, const std::string& name) {
  TPP_CHECK(split == "train" || split == "test", "{}: unknown split '{}' (expected train or test)", name, split);
  const std::string prefix = split == "train" ? "train" : "t10k";
  const fs::path images_path = require_plain_or_gz(dir / (prefix + "-images-idx3-ubyte"), name);
  const fs::path labels_path = require_plain_or_gz(dir / (prefix + "-labels-idx1-ubyte"), name);
  std::vector<std::string> classes = mnist_class_names(name);
  Tensor images = read_idx_images(images_path, name);
  Tensor labels = read_idx_labels(labels_path, name, static_cast<int64_t>(classes.size()));
  TPP_CHECK(images.size(0) == labels.size(0), "{}: {} holds {} labels but {} holds {} images", name,
            labels_path.string(), labels.size(0), images_path.string(), images.size(0));
  DatasetInfo info{name, split, dir.string(), std::move(classes)};
  return std::make_shared<TensorDataset>(std::move(info), std::move(images), std::move(labels),
                                         std::vector<std::string>{images_path.string()}, std::vector<int64_t>{0});
}

}  // namespace tpp::data
