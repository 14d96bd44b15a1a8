#include "data/cifar.h"

#include <cstring>
#include <fstream>

#include "data/io.h"
#include "engine/error.h"

namespace tpp::data {

namespace {

constexpr int64_t kImageBytes = 3 * 32 * 32;

struct RecordLayout {
  std::string_view dataset;
  int64_t label_bytes;   // bytes before the pixels
  int64_t label_offset;  // which of them is the label used
  int64_t num_classes;
};

RecordLayout layout_for(CifarLabels labels) {
  switch (labels) {
    case CifarLabels::cifar10:
      return {"cifar10", 1, 0, 10};
    case CifarLabels::cifar100_fine:
      return {"cifar100", 2, 1, 100};
    case CifarLabels::cifar100_coarse:
      return {"cifar100", 2, 0, 20};
  }
  return {};
}

std::vector<std::string> cifar100_coarse_names() {
  return {"aquatic_mammals",
          "fish",
          "flowers",
          "food_containers",
          "fruit_and_vegetables",
          "household_electrical_devices",
          "household_furniture",
          "insects",
          "large_carnivores",
          "large_man-made_outdoor_things",
          "large_natural_outdoor_scenes",
          "large_omnivores_and_herbivores",
          "medium_mammals",
          "non-insect_invertebrates",
          "people",
          "reptiles",
          "small_mammals",
          "trees",
          "vehicles_1",
          "vehicles_2"};
}

std::vector<std::string> cifar100_fine_names() {
  return {"apple",      "aquarium_fish", "baby",         "bear",       "beaver",      "bed",         "bee",
          "beetle",     "bicycle",       "bottle",       "bowl",       "boy",         "bridge",      "bus",
          "butterfly",  "camel",         "can",          "castle",     "caterpillar", "cattle",      "chair",
          "chimpanzee", "clock",         "cloud",        "cockroach",  "couch",       "crab",        "crocodile",
          "cup",        "dinosaur",      "dolphin",      "elephant",   "flatfish",    "forest",      "fox",
          "girl",       "hamster",       "house",        "kangaroo",   "keyboard",    "lamp",        "lawn_mower",
          "leopard",    "lion",          "lizard",       "lobster",    "man",         "maple_tree",  "motorcycle",
          "mountain",   "mouse",         "mushroom",     "oak_tree",   "orange",      "orchid",      "otter",
          "palm_tree",  "pear",          "pickup_truck", "pine_tree",  "plain",       "plate",       "poppy",
          "porcupine",  "possum",        "rabbit",       "raccoon",    "ray",         "road",        "rocket",
          "rose",       "sea",           "seal",         "shark",      "shrew",       "skunk",       "skyscraper",
          "snail",      "snake",         "spider",       "squirrel",   "streetcar",   "sunflower",   "sweet_pepper",
          "table",      "tank",          "telephone",    "television", "tiger",       "tractor",     "train",
          "trout",      "tulip",         "turtle",       "wardrobe",   "whale",       "willow_tree", "wolf",
          "woman",      "worm"};
}

std::vector<std::string> default_names(CifarLabels labels) {
  switch (labels) {
    case CifarLabels::cifar10:
      return cifar10_names();
    case CifarLabels::cifar100_fine:
      return cifar100_fine_names();
    case CifarLabels::cifar100_coarse:
      return cifar100_coarse_names();
  }
  return {};
}

// The class-name file shipped with the data (one name a line), when present
// and of the right length; else the built-in names.
std::vector<std::string> names_from(const fs::path& file, CifarLabels labels) {
  std::vector<std::string> names;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line != "\r") names.push_back(line.back() == '\r' ? line.substr(0, line.size() - 1) : line);
  const std::vector<std::string> builtin = default_names(labels);
  return names.size() == builtin.size() ? names : builtin;
}

std::shared_ptr<TensorDataset> load(const std::vector<fs::path>& files, CifarLabels which, const std::string& split,
                                    std::vector<std::string> class_names, std::string source) {
  const RecordLayout layout = layout_for(which);
  TPP_CHECK(!files.empty(), "{}: no files given", layout.dataset);
  std::vector<uint8_t> pixels;
  std::vector<int64_t> labels;
  std::vector<std::string> names;
  std::vector<int64_t> starts;
  for (const fs::path& file : files) {
    names.push_back(file.string());
    starts.push_back(static_cast<int64_t>(labels.size()));
    parse_cifar_records(read_file_bytes(file, layout.dataset), which,
                        fmt::format("{}: {}", layout.dataset, file.string()), pixels, labels);
  }
  const auto n = static_cast<int64_t>(labels.size());
  Tensor images = empty({n, 3, 32, 32}, {.dtype = DType::u8});
  std::memcpy(images.data<uint8_t>(), pixels.data(), pixels.size());
  DatasetInfo info{std::string(layout.dataset), split, std::move(source), std::move(class_names)};
  return std::make_shared<TensorDataset>(std::move(info), std::move(images), from_vector<int64_t>(labels, {n}),
                                         std::move(names), std::move(starts));
}

}  // namespace

std::vector<std::string> cifar10_names() {
  return {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
}

void parse_cifar_records(std::span<const uint8_t> bytes, CifarLabels which, std::string_view where,
                         std::vector<uint8_t>& pixels, std::vector<int64_t>& labels) {
  const RecordLayout layout = layout_for(which);
  const int64_t record = layout.label_bytes + kImageBytes;
  const auto size = static_cast<int64_t>(bytes.size());
  TPP_CHECK(size > 0, "{}: the file is empty", where);
  TPP_CHECK(size % record == 0,
            "{}: size {} bytes is not a whole number of {}-byte records ({} records and {} bytes over)", where, size,
            record, size / record, size % record);
  const int64_t count = size / record;
  // Every label is checked before anything is appended, so a bad file leaves
  // `pixels` and `labels` as they were.
  for (int64_t r = 0; r < count; ++r) {
    const int64_t label = bytes[r * record + layout.label_offset];
    TPP_CHECK(label < layout.num_classes, "{}: record {} (offset {}) has label {} (expected 0..{})", where, r,
              r * record + layout.label_offset, label, layout.num_classes - 1);
  }
  const size_t first = pixels.size();
  pixels.resize(first + static_cast<size_t>(count * kImageBytes));
  labels.reserve(labels.size() + static_cast<size_t>(count));
  for (int64_t r = 0; r < count; ++r) {
    const uint8_t* rec = bytes.data() + r * record;
    labels.push_back(rec[layout.label_offset]);
    std::memcpy(pixels.data() + first + r * kImageBytes, rec + layout.label_bytes, kImageBytes);
  }
}

std::shared_ptr<TensorDataset> load_cifar_files(const std::vector<fs::path>& files, CifarLabels labels,
                                                const std::string& split) {
  const std::string source = files.empty() ? "" : files.front().parent_path().string();
  return load(files, labels, split, default_names(labels), source);
}

std::shared_ptr<TensorDataset> load_cifar10(const fs::path& dir, const std::string& split) {
  TPP_CHECK(split == "train" || split == "test", "cifar10: unknown split '{}' (expected train or test)", split);
  std::vector<fs::path> files;
  if (split == "train") {
    for (int b = 1; b <= 5; ++b)
      files.push_back(require_plain_or_gz(dir / fmt::format("data_batch_{}.bin", b), "cifar10"));
  } else {
    files.push_back(require_plain_or_gz(dir / "test_batch.bin", "cifar10"));
  }
  return load(files, CifarLabels::cifar10, split, names_from(dir / "batches.meta.txt", CifarLabels::cifar10),
              dir.string());
}

std::shared_ptr<TensorDataset> load_cifar100(const fs::path& dir, const std::string& split, bool coarse) {
  TPP_CHECK(split == "train" || split == "test", "cifar100: unknown split '{}' (expected train or test)", split);
  const CifarLabels which = coarse ? CifarLabels::cifar100_coarse : CifarLabels::cifar100_fine;
  const fs::path file = require_plain_or_gz(dir / (split + ".bin"), "cifar100");
  const fs::path names = dir / (coarse ? "coarse_label_names.txt" : "fine_label_names.txt");
  return load({file}, which, split, names_from(names, which), dir.string());
}

}  // namespace tpp::data
