// Finding datasets by name. A data root is the --data-dir flag, else
// $TPP_DATA, else ./data. A dataset sits either in the root itself (the
// folder holding its files: .../mnist with the four .gz files) or in a
// folder of its own under the root (the names its official archive unpacks
// to, or torchvision's), e.g. <root>/mnist/ or <root>/cifar-10-batches-bin/.
// Without --data-dir, Debian's dataset packages (/usr/share/datasets) are
// looked at too. scripts/get_data.sh fills a root.
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

// The lower-case name open_dataset() knows `name` by ("MNIST" and
// "Fashion_MNIST" are "mnist" and "fashion-mnist"); an unknown name throws
// tpp::Error listing the known ones and the nearest.
std::string canonical_dataset_name(const std::string& name);

struct DataRoot {
  DataRoot(std::filesystem::path root, bool given_by_user = true) : dir(std::move(root)), given(given_by_user) {}
  DataRoot(const char* root) : DataRoot(std::filesystem::path(root)) {}
  DataRoot(const std::string& root) : DataRoot(std::filesystem::path(root)) {}

  std::filesystem::path dir;
  // Named by the user (--data-dir): the data must be there; no other
  // place is looked at.
  bool given = true;
};

// `flag` is the --data-dir value ("" when not given).
DataRoot resolve_data_root(const std::string& flag);

struct DatasetLocation {
  std::string name;                 // canonical: "mnist", "cifar10", "imagefolder", ...
  std::filesystem::path dir;        // the folder holding its files
  std::vector<std::string> splits;  // "train" first
};

// Looks for `name` in and under `root` (and, for a root the user did not
// name, in /usr/share/datasets, where Debian's packages put datasets). An
// error lists every place it looked.
DatasetLocation locate_dataset(const std::string& name, const DataRoot& root);

struct OpenOptions {
  bool cifar100_coarse = false;  // CIFAR-100: the 20 superclasses instead of the 100 classes
};
std::shared_ptr<Dataset> open_dataset(const DatasetLocation& where, const std::string& split,
                                      const OpenOptions& options = {});

}  // namespace tpp::data
