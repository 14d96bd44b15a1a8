#include "data/catalog.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <cstdlib>

#include "data/cifar.h"
#include "data/image_folder.h"
#include "data/io.h"
#include "data/mnist.h"
#include "engine/error.h"

namespace tpp::data {

namespace {

struct Candidate {
  fs::path dir;
  fs::path marker;  // a file whose presence (plain or .gz) says "the data is here"
};

std::vector<Candidate> candidates_for(const std::string& name, const fs::path& root) {
  if (name == "mnist")
    return {{root / "mnist", "train-images-idx3-ubyte"}, {root / "MNIST" / "raw", "train-images-idx3-ubyte"}};
  if (name == "fashion-mnist")
    return {{root / "fashion-mnist", "train-images-idx3-ubyte"},
            {root / "FashionMNIST" / "raw", "train-images-idx3-ubyte"},
            {"/usr/share/datasets/fashion-mnist", "train-images-idx3-ubyte"}};
  if (name == "cifar10")
    return {{root / "cifar-10-batches-bin", "data_batch_1.bin"}, {root / "cifar10", "data_batch_1.bin"}};
  if (name == "cifar100") return {{root / "cifar-100-binary", "train.bin"}, {root / "cifar100", "train.bin"}};
  if (name == "imagenet") return {{root / "imagenet", ""}};
  return {};
}

std::vector<std::string> folder_splits(const fs::path& dir) {
  std::vector<std::string> splits;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir))
    if (entry.is_directory()) splits.push_back(entry.path().filename().string());
  std::sort(splits.begin(), splits.end(), [](const std::string& a, const std::string& b) {
    return (a == "train") != (b == "train") ? a == "train" : a < b;
  });
  TPP_CHECK(!splits.empty(), "imagefolder: {} holds no split folders (expected e.g. train/ and val/)", dir.string());
  return splits;
}

}  // namespace

fs::path resolve_data_root(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("TPP_DATA"); env != nullptr && *env != '\0') return env;
  std::error_code ec;
  if (fs::is_directory("../shared/data", ec)) return "../shared/data";
  return "data";
}

DatasetLocation locate_dataset(const std::string& name, const fs::path& root) {
  std::error_code ec;
  if (name.starts_with("imagefolder:")) {
    const fs::path dir = name.substr(std::string("imagefolder:").size());
    TPP_CHECK(fs::is_directory(dir, ec), "imagefolder: missing folder {}", dir.string());
    return {"imagefolder", dir, folder_splits(dir)};
  }
  const std::vector<Candidate> candidates = candidates_for(name, root);
  TPP_CHECK(!candidates.empty(), "data: unknown dataset '{}' (known: {})", name, fmt::join(known_datasets(), ", "));
  std::vector<std::string> looked;
  for (const Candidate& c : candidates) {
    const bool found = c.marker.empty() ? fs::is_directory(c.dir, ec) : find_plain_or_gz(c.dir / c.marker).has_value();
    if (found) {
      if (name == "imagenet") return {name, c.dir, folder_splits(c.dir)};
      return {name, c.dir, {"train", "test"}};
    }
    looked.push_back(c.dir.string());
  }
  fail("{}: no data found in {} (set `data_dir`, set TPP_DATA, or fetch it with scripts/get_data.sh)", name,
       fmt::join(looked, " or "));
}

std::shared_ptr<Dataset> open_dataset(const DatasetLocation& where, const std::string& split,
                                      const OpenOptions& options) {
  if (where.name == "mnist" || where.name == "fashion-mnist") return load_mnist(where.dir, split, where.name);
  if (where.name == "cifar10") return load_cifar10(where.dir, split);
  if (where.name == "cifar100") return load_cifar100(where.dir, split, options.cifar100_coarse);
  return std::make_shared<ImageFolder>(where.dir / split, where.name, split);
}

}  // namespace tpp::data
