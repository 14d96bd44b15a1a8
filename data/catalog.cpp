#include "data/catalog.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "data/cifar.h"
#include "data/image_folder.h"
#include "data/io.h"
#include "data/mnist.h"
#include "engine/error.h"
#include "engine/suggest.h"

namespace tpp::data {

namespace {

struct Candidate {
  fs::path dir;
  fs::path marker;  // a file whose presence (plain or .gz) says "the data is here"
};

// Debian's dataset packages (dataset-fashion-mnist, ...).
const fs::path kSystemDatasets = "/usr/share/datasets";

// The folders under a root where `name` may sit, the root itself first.
std::vector<fs::path> folders_for(const std::string& name, const fs::path& root) {
  if (name == "mnist") return {root, root / "mnist", root / "MNIST" / "raw"};
  if (name == "fashion-mnist") return {root, root / "fashion-mnist", root / "FashionMNIST" / "raw"};
  if (name == "cifar10") return {root, root / "cifar-10-batches-bin", root / "cifar10"};
  if (name == "cifar100") return {root, root / "cifar-100-binary", root / "cifar100"};
  return {root / "imagenet"};  // a root of split folders is any folder: only the named one counts
}

fs::path marker_for(const std::string& name) {
  if (name == "mnist" || name == "fashion-mnist") return "train-images-idx3-ubyte";
  if (name == "cifar10") return "data_batch_1.bin";
  if (name == "cifar100") return "train.bin";
  return "";  // imagenet: the folder itself
}

std::vector<Candidate> candidates_for(const std::string& name, const DataRoot& root) {
  std::vector<fs::path> folders = folders_for(name, root.dir);
  if (!root.given && root.dir != kSystemDatasets) {
    const std::vector<fs::path> system = folders_for(name, kSystemDatasets);
    folders.insert(folders.end(), system.begin() + (name == "imagenet" ? 0 : 1), system.end());
  }
  std::vector<Candidate> candidates;
  for (fs::path& dir : folders) candidates.push_back({std::move(dir), marker_for(name)});
  return candidates;
}

std::string lower_case(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
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

std::string canonical_dataset_name(const std::string& name) {
  if (name.starts_with("imagefolder:")) return name;
  std::string key = lower_case(name);
  std::replace(key.begin(), key.end(), '_', '-');
  if (key == "fashionmnist") key = "fashion-mnist";
  if (key == "cifar-10") key = "cifar10";
  if (key == "cifar-100") key = "cifar100";
  const std::vector<std::string>& known = known_datasets();
  TPP_CHECK(std::find(known.begin(), known.end(), key) != known.end() && key != "imagefolder:<path>",
            "data: unknown dataset '{}' (known: {}){}", name, fmt::join(known, ", "), did_you_mean(name, known));
  return key;
}

DataRoot resolve_data_root(const std::string& flag) {
  if (!flag.empty()) return {flag, true};
  if (const char* env = std::getenv("TPP_DATA"); env != nullptr && *env != '\0') return {env, false};
  return {"data", false};
}

DatasetLocation locate_dataset(const std::string& typed_name, const DataRoot& root) {
  std::error_code ec;
  if (typed_name.starts_with("imagefolder:")) {
    const fs::path dir = typed_name.substr(std::string("imagefolder:").size());
    TPP_CHECK(fs::is_directory(dir, ec), "imagefolder: missing folder {}", dir.string());
    return {"imagefolder", dir, folder_splits(dir)};
  }
  const std::string name = canonical_dataset_name(typed_name);
  std::vector<std::string> looked;
  for (const Candidate& c : candidates_for(name, root)) {
    const bool found = c.marker.empty() ? fs::is_directory(c.dir, ec) : find_plain_or_gz(c.dir / c.marker).has_value();
    if (found) {
      if (name == "imagenet") return {name, c.dir, folder_splits(c.dir)};
      return {name, c.dir, {"train", "test"}};
    }
    looked.push_back(c.dir.string());
  }
  if (root.given)
    fail("{}: no data found in `data_dir` {} (looked in {})", name, root.dir.string(), fmt::join(looked, ", "));
  fail("{}: no data found (looked in {}); pass `data_dir`, set TPP_DATA, or fetch it with scripts/get_data.sh", name,
       fmt::join(looked, ", "));
}

std::shared_ptr<Dataset> open_dataset(const DatasetLocation& where, const std::string& split,
                                      const OpenOptions& options) {
  if (where.name == "mnist" || where.name == "fashion-mnist") return load_mnist(where.dir, split, where.name);
  if (where.name == "cifar10") return load_cifar10(where.dir, split);
  if (where.name == "cifar100") return load_cifar100(where.dir, split, options.cifar100_coarse);
  return std::make_shared<ImageFolder>(where.dir / split, where.name, split);
}

}  // namespace tpp::data
