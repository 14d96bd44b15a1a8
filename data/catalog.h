// Finding datasets by name. The data root is the --data-dir flag, else
// $TPP_DATA, else ../shared/data when it exists, else ./data; each dataset
// then sits in a folder of its own under the root (the names its official
// archive unpacks to, or torchvision's), e.g. <root>/mnist/ or
// <root>/cifar-10-batches-bin/. scripts/get_data.sh fills a root.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace tpp::data {

// The names open_dataset() understands ("imagefolder:<path>" is any folder
// of split/class/image files).
inline const std::vector<std::string>& known_datasets() {
  static const std::vector<std::string> names = {"mnist",    "fashion-mnist", "cifar10",
                                                 "cifar100", "imagenet",      "imagefolder:<path>"};
  return names;
}

// `flag` is the --data-dir value ("" when not given).
std::filesystem::path resolve_data_root(const std::string& flag);

struct DatasetLocation {
  std::string name;                 // canonical: "mnist", "cifar10", "imagefolder", ...
  std::filesystem::path dir;        // the folder holding its files
  std::vector<std::string> splits;  // "train" first
};

// Looks for `name` under `root` (and, for Fashion-MNIST, in
// /usr/share/datasets/fashion-mnist, where Debian's package puts it). An
// error lists the places it looked.
DatasetLocation locate_dataset(const std::string& name, const std::filesystem::path& root);

struct OpenOptions {
  bool cifar100_coarse = false;  // CIFAR-100: the 20 superclasses instead of the 100 classes
};
std::shared_ptr<Dataset> open_dataset(const DatasetLocation& where, const std::string& split,
                                      const OpenOptions& options = {});

}  // namespace tpp::data
