// MNIST and Fashion-MNIST: IDX files (Y. LeCun's format), raw or gzip.
// Split "train" reads train-{images-idx3,labels-idx1}-ubyte[.gz], split
// "test" the t10k-* files. Images become u8 [N, 1, 28, 28].
#pragma once

#include <filesystem>
#include <memory>
#include <span>
#include <string>

#include "data/dataset.h"

namespace tpp::data {

// An IDX file of u8 images (magic 0x00000803) as u8 [N, 1, rows, cols].
Tensor read_idx_images(const std::filesystem::path& path, std::string_view what);
// An IDX file of u8 labels (magic 0x00000801) as i64 [N]; each must be below num_classes.
Tensor read_idx_labels(const std::filesystem::path& path, std::string_view what, int64_t num_classes);

// The same from the (inflated) bytes of such a file; `where` ("<what>: <path>")
// starts every error message. The header is checked against the byte count
// before anything is allocated.
Tensor parse_idx_images(std::span<const uint8_t> bytes, std::string_view where);
Tensor parse_idx_labels(std::span<const uint8_t> bytes, std::string_view where, int64_t num_classes);

// The class names of "mnist" (the digits) or "fashion-mnist".
std::vector<std::string> mnist_class_names(const std::string& name);

// `name` is "mnist" or "fashion-mnist" (it picks the class names).
std::shared_ptr<TensorDataset> load_mnist(const std::filesystem::path& dir, const std::string& split,
                                          const std::string& name = "mnist");

}  // namespace tpp::data
