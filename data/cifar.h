// CIFAR-10 and CIFAR-100, binary version. A CIFAR-10 record is 1 label byte
// then 3072 pixel bytes (1024 red, 1024 green, 1024 blue, rows of 32); a
// CIFAR-100 record is a coarse label byte, a fine label byte, then the same
// 3072 pixel bytes. Files may be gzip-compressed (data_batch_1.bin.gz).
#pragma once

#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace tpp::data {

enum class CifarLabels { cifar10, cifar100_fine, cifar100_coarse };

// Reads the given record files, in order, into one dataset (u8 [N, 3, 32, 32]).
// This takes any file names, e.g. a sample such as data_batch_1.first258.bin.
std::shared_ptr<TensorDataset> load_cifar_files(const std::vector<std::filesystem::path>& files, CifarLabels labels,
                                                const std::string& split);

// Appends the records held in `bytes` (one file's inflated content) to
// `pixels` (3072 bytes per image) and `labels`. `where` ("<dataset>: <path>")
// starts every error message.
void parse_cifar_records(std::span<const uint8_t> bytes, CifarLabels which, std::string_view where,
                         std::vector<uint8_t>& pixels, std::vector<int64_t>& labels);

// cifar-10-batches-bin/: train = data_batch_1..5.bin, test = test_batch.bin.
std::shared_ptr<TensorDataset> load_cifar10(const std::filesystem::path& dir, const std::string& split);
// cifar-100-binary/: train.bin, test.bin; fine labels unless `coarse`.
std::shared_ptr<TensorDataset> load_cifar100(const std::filesystem::path& dir, const std::string& split,
                                             bool coarse = false);

// The ten CIFAR-10 class names, in label order.
std::vector<std::string> cifar10_names();

}  // namespace tpp::data
