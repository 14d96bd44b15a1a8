#include "data/image_folder.h"

#include <algorithm>
#include <cctype>

#include "data/image_codec.h"
#include "data/io.h"
#include "engine/error.h"

namespace tpp::data {

namespace {

std::vector<fs::path> sorted_class_dirs(const fs::path& root, std::string_view what) {
  std::error_code ec;
  TPP_CHECK(fs::is_directory(root, ec), "{}: missing folder {}", what, root.string());
  std::vector<fs::path> dirs;
  for (const fs::directory_entry& entry : fs::directory_iterator(root))
    if (entry.is_directory()) dirs.push_back(entry.path());
  TPP_CHECK(!dirs.empty(), "{}: {} holds no class folders", what, root.string());
  std::sort(dirs.begin(), dirs.end(),
            [](const fs::path& a, const fs::path& b) { return a.filename().string() < b.filename().string(); });
  return dirs;
}

// Image files below `dir` (recursively, following links), sorted by folder
// then name as torchvision's walk gives them.
std::vector<fs::path> sorted_images_in(const fs::path& dir) {
  std::vector<fs::path> files;
  const auto options = fs::directory_options::follow_directory_symlink;
  for (const fs::directory_entry& entry : fs::recursive_directory_iterator(dir, options))
    if (entry.is_regular_file() && is_image_file_name(entry.path())) files.push_back(entry.path());
  std::sort(files.begin(), files.end(), [](const fs::path& a, const fs::path& b) {
    const std::string pa = a.parent_path().string(), pb = b.parent_path().string();
    return pa != pb ? pa < pb : a.filename().string() < b.filename().string();
  });
  return files;
}

}  // namespace

bool is_image_file_name(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

ImageFolder::ImageFolder(const fs::path& root, std::string name, std::string split)
    : Dataset(DatasetInfo{name, std::move(split), root.string(), {}}) {
  std::vector<std::string> classes;
  for (const fs::path& dir : sorted_class_dirs(root, name)) {
    const std::vector<fs::path> images = sorted_images_in(dir);
    TPP_CHECK(!images.empty(), "{}: class folder {} holds no .jpg, .jpeg or .png files", name, dir.string());
    for (const fs::path& image : images) {
      files_.push_back(image);
      labels_.push_back(static_cast<int64_t>(classes.size()));
    }
    classes.push_back(dir.filename().string());
  }
  DatasetInfo full = info();
  full.class_names = std::move(classes);
  set_info(std::move(full));
}

Sample ImageFolder::get(int64_t index) const {
  check_index(index);
  return {load_image(files_[static_cast<size_t>(index)], info().name), labels_[static_cast<size_t>(index)]};
}

int64_t ImageFolder::label(int64_t index) const {
  check_index(index);
  return labels_[static_cast<size_t>(index)];
}

std::string ImageFolder::describe(int64_t index) const { return files_.at(static_cast<size_t>(index)).string(); }

}  // namespace tpp::data
