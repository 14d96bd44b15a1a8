// ImageFolder: root/<class>/**/*.{jpg,jpeg,png}, as torchvision reads it.
// Classes are the sub-folders of root sorted by name (label = position);
// files are found recursively and sorted, and decoded on each get() (JPEG by
// libjpeg-turbo, PNG by stb_image) into u8 [3, H, W] RGB.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace tpp::data {

class ImageFolder final : public Dataset {
 public:
  // `root` holds the class folders, e.g. imagenet/train. `name` and `split`
  // only label the dataset (info(), messages).
  explicit ImageFolder(const std::filesystem::path& root, std::string name = "imagefolder", std::string split = "");

  int64_t size() const override { return static_cast<int64_t>(files_.size()); }
  Sample get(int64_t index) const override;
  int64_t label(int64_t index) const override;
  std::optional<Shape> image_shape() const override { return std::nullopt; }
  std::string describe(int64_t index) const override;

  const std::filesystem::path& file(int64_t index) const { return files_[static_cast<size_t>(index)]; }

 private:
  std::vector<std::filesystem::path> files_;
  std::vector<int64_t> labels_;
};

// Whether a file name ends in .jpg, .jpeg or .png (any case), as torchvision's
// extension test does.
bool is_image_file_name(const std::filesystem::path& path);

}  // namespace tpp::data
