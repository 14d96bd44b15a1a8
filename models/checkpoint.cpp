#include "models/checkpoint.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>
#include <set>

#include "engine/build_info.h"
#include "engine/safetensors.h"
#include "models/layers.h"
#include "models/surgery.h"
#include "models/zoo.h"

namespace tpp::models {

namespace {

using nlohmann::json;

constexpr const char* kArch = "arch";
constexpr const char* kDataset = "dataset";
constexpr const char* kNumClasses = "num_classes";
constexpr const char* kInChannels = "in_channels";
constexpr const char* kWidths = "widths";
constexpr const char* kExtraTensors = "extra_tensors";
constexpr const char* kEngineVersion = "engine_version";

bool is_reserved(const std::string& key) {
  static const std::set<std::string> keys{kArch, kDataset, kNumClasses, kInChannels, kWidths, kExtraTensors};
  return keys.count(key) > 0;
}

bool is_known_arch(const std::string& arch) {
  const auto& archs = known_archs();
  return std::find(archs.begin(), archs.end(), arch) != archs.end();
}

// The out width of every conv/linear layer, read off the weights: a weight of
// two or more dimensions ("<layer>.weight") is a conv or linear weight whose
// first dimension is the layer's width (BN weights are one-dimensional).
template <class Tensors>
std::map<std::string, int64_t> widths_of(const Tensors& tensors) {
  static const std::string suffix = ".weight";
  std::map<std::string, int64_t> widths;
  for (const auto& [key, t] : tensors)
    if (key.ends_with(suffix) && t.dim() >= 2) widths[key.substr(0, key.size() - suffix.size())] = t.size(0);
  return widths;
}

std::map<std::string, Tensor> as_map(const NamedTensors& tensors) { return {tensors.begin(), tensors.end()}; }

std::shared_ptr<Module> make_uninitialised(const std::string& arch, int64_t num_classes, int64_t in_channels) {
  const SkipInit values_come_from_the_file;
  return make_model(arch, num_classes, in_channels);
}

// ---- reading metadata ----

class MetadataReader {
 public:
  MetadataReader(std::string file, const std::map<std::string, std::string>& metadata)
      : file_(std::move(file)), metadata_(metadata) {}

  const std::string* find(const std::string& key) const {
    const auto it = metadata_.find(key);
    return it == metadata_.end() ? nullptr : &it->second;
  }

  // 0 when absent (the value is then inferred from the tensors).
  int64_t positive_integer(const std::string& key) const {
    const std::string* text = find(key);
    if (text == nullptr) return 0;
    int64_t value = 0;
    const auto [end, error] = std::from_chars(text->data(), text->data() + text->size(), value);
    TPP_CHECK(error == std::errc() && end == text->data() + text->size() && value > 0,
              "read_checkpoint: {}: metadata '{}' is '{}', not a positive integer", file_, key, *text);
    return value;
  }

  json parsed(const std::string& key, const std::string& expected) const {
    json j;
    try {
      j = json::parse(*find(key));
    } catch (const json::parse_error&) {
      fail("read_checkpoint: {}: metadata '{}' is not valid JSON (expected {})", file_, key, expected);
    }
    return j;
  }

  std::map<std::string, int64_t> widths() const {
    const std::string expected = "an object of positive integers";
    const json j = parsed(kWidths, expected);
    TPP_CHECK(j.is_object(), "read_checkpoint: {}: metadata 'widths' must be {}", file_, expected);
    std::map<std::string, int64_t> widths;
    for (const auto& [layer, width] : j.items()) {
      TPP_CHECK(width.is_number_integer() && width.get<int64_t>() > 0,
                "read_checkpoint: {}: metadata 'widths' gives layer '{}' the width {}, not a positive integer", file_,
                layer, width.dump());
      widths[layer] = width.get<int64_t>();
    }
    return widths;
  }

  std::vector<std::string> names(const std::string& key) const {
    const std::string expected = "a list of tensor names";
    const json j = parsed(key, expected);
    const bool strings = j.is_array() && std::all_of(j.begin(), j.end(), [](const json& n) { return n.is_string(); });
    TPP_CHECK(strings, "read_checkpoint: {}: metadata '{}' must be {}", file_, key, expected);
    return j.get<std::vector<std::string>>();
  }

 private:
  std::string file_;
  const std::map<std::string, std::string>& metadata_;
};

// ---- building ----

std::string resolve_arch(const Checkpoint& ckpt, const std::string& arch_override) {
  const std::string file = ckpt.file.string();
  if (arch_override.empty()) {
    TPP_CHECK(!ckpt.info.arch.empty(), "build_model: {} has no metadata naming its architecture; give the arch (`arch`)",
              file);
    return ckpt.info.arch;
  }
  TPP_CHECK(is_known_arch(arch_override), "{}", unknown_arch_text(arch_override));
  TPP_CHECK(ckpt.info.arch.empty() || ckpt.info.arch == arch_override,
            "build_model: {} holds a {} checkpoint, but {} was asked for", file, ckpt.info.arch, arch_override);
  return arch_override;
}

// What a bare state_dict does not say, read off its tensors with a probe
// model of one input channel and one class: the first layer's input width
// scales with the channels, the classifier's output width is the classes.
struct InferredSizes {
  int64_t num_classes = 0, in_channels = 0;
};

InferredSizes infer_sizes(const Checkpoint& ckpt, const std::string& arch) {
  const NamedTensors probe = make_uninitialised(arch, 1, 1)->state_dict();
  const auto& tensors = ckpt.model_tensors;
  auto file_tensor = [&](const std::string& key, int64_t dim) -> const Tensor* {
    const auto it = tensors.find(key);
    return it != tensors.end() && it->second.dim() == dim ? &it->second : nullptr;
  };
  InferredSizes sizes{.num_classes = 1, .in_channels = 3};
  const auto first = std::find_if(probe.begin(), probe.end(), [](const auto& kv) { return kv.second.dim() >= 2; });
  if (first != probe.end())
    if (const Tensor* t = file_tensor(first->first, first->second.dim()); t && t->size(1) % first->second.size(1) == 0)
      sizes.in_channels = std::max<int64_t>(1, t->size(1) / first->second.size(1));
  const auto classifier = std::find_if(probe.rbegin(), probe.rend(), [](const auto& kv) { return kv.second.dim() == 2; });
  if (classifier != probe.rend())
    if (const Tensor* t = file_tensor(classifier->first, 2)) sizes.num_classes = t->size(0);
  return sizes;
}

// The architecture (other than `asked`) whose state_dict keys are exactly the
// file's, or "" when none is.
std::string arch_with_keys(const std::map<std::string, Tensor>& tensors, const std::string& asked) {
  std::set<std::string> keys;
  for (const auto& [key, t] : tensors) keys.insert(key);
  for (const std::string& arch : known_archs()) {
    if (arch == asked) continue;
    std::set<std::string> arch_keys;
    for (const auto& [key, t] : make_uninitialised(arch, 1, 1)->state_dict()) arch_keys.insert(key);
    if (arch_keys == keys) return arch;
  }
  return "";
}

// A pruned checkpoint: narrow the fresh model to the file's widths (the
// first k filters of each layer; the values come from the file next).
void apply_checkpoint_widths(Module& model, const Checkpoint& ckpt, const std::string& arch) {
  const std::string file = ckpt.file.string();
  const std::map<std::string, int64_t> fresh = widths_of(model.state_dict());
  std::map<std::string, int64_t> narrowed;
  for (const auto& [layer, width] : ckpt.info.widths) {
    // A bare state_dict of another architecture is reported by the key check.
    if (!fresh.count(layer) && !ckpt.has_metadata) continue;
    TPP_CHECK(fresh.count(layer), "build_model: {}: its widths name layer '{}', which {} does not have", file, layer,
              arch);
    TPP_CHECK(width <= fresh.at(layer), "build_model: {}: layer '{}' has width {} but {} has only {}", file, layer,
              width, arch, fresh.at(layer));
    if (width < fresh.at(layer)) narrowed[layer] = width;
  }
  if (narrowed.empty()) return;
  try {
    apply_widths(model, narrowed);
  } catch (const Error& e) {
    fail("build_model: {}: {}", file, e.what());
  }
}

// Strict: the file's model tensors are exactly the model's keys, with its
// shapes and dtypes. Each complaint names the file, the key and both sides.
void check_tensors(const Module& model, const Checkpoint& ckpt, const std::string& arch) {
  const std::string file = ckpt.file.string();
  const NamedTensors own = model.state_dict();
  const auto& tensors = ckpt.model_tensors;
  const auto other_arch_hint = [&] {
    const std::string other = arch_with_keys(tensors, arch);
    return other.empty() ? std::string() : fmt::format("; its keys are those of {}", other);
  };
  for (const auto& [key, target] : own)
    TPP_CHECK(tensors.count(key), "build_model: {}: no tensor '{}', which {} needs{}", file, key, arch,
              other_arch_hint());
  const std::set<std::string> own_keys = [&] {
    std::set<std::string> keys;
    for (const auto& [key, t] : own) keys.insert(key);
    return keys;
  }();
  for (const auto& [key, t] : tensors)
    TPP_CHECK(own_keys.count(key), "build_model: {}: unexpected tensor '{}' (shape {}), which {} does not have{}", file,
              key, shape_str(t.sizes()), arch, other_arch_hint());
  for (const auto& [key, target] : own) {
    const Tensor& t = tensors.at(key);
    TPP_CHECK(t.sizes() == target.sizes(), "build_model: {}: '{}' has shape {} but {} expects {}", file, key,
              shape_str(t.sizes()), arch, shape_str(target.sizes()));
    TPP_CHECK(t.dtype() == target.dtype(), "build_model: {}: '{}' is {} but {} expects {}", file, key,
              dtype_name(t.dtype()), arch, dtype_name(target.dtype()));
  }
}

}  // namespace

void save_checkpoint(const std::filesystem::path& file, const Module& model, const CheckpointInfo& info,
                     const std::map<std::string, Tensor>& extra_tensors) {
  const std::string name = file.string();
  TPP_CHECK(is_known_arch(info.arch), "save_checkpoint: {}: unknown arch '{}'; known archs: {}", name, info.arch,
            fmt::join(known_archs(), ", "));
  TPP_CHECK(info.num_classes > 0 && info.in_channels > 0,
            "save_checkpoint: {}: num_classes and in_channels must be positive, got {} and {}", name, info.num_classes,
            info.in_channels);
  std::map<std::string, Tensor> tensors = as_map(model.state_dict());
  const std::map<std::string, int64_t> widths = widths_of(tensors);
  std::vector<std::string> extra_names;
  for (const auto& [key, t] : extra_tensors) {
    TPP_CHECK(!tensors.count(key), "save_checkpoint: {}: extra tensor '{}' clashes with a model tensor", name, key);
    tensors.emplace(key, t);
    extra_names.push_back(key);
  }

  std::map<std::string, std::string> metadata;
  for (const auto& [key, value] : info.extra) {
    TPP_CHECK(!is_reserved(key), "save_checkpoint: {}: extra metadata '{}' is a reserved key", name, key);
    metadata[key] = value;
  }
  metadata[kArch] = info.arch;
  metadata[kDataset] = info.dataset;
  metadata[kNumClasses] = std::to_string(info.num_classes);
  metadata[kInChannels] = std::to_string(info.in_channels);
  metadata[kWidths] = json(widths).dump();
  metadata[kExtraTensors] = json(extra_names).dump();
  metadata[kEngineVersion] = TPP_VERSION;
  save_safetensors(file, tensors, metadata);
}

Checkpoint read_checkpoint(const std::filesystem::path& file) {
  SafetensorsFile contents = load_safetensors(file);
  Checkpoint ckpt;
  ckpt.file = file;
  ckpt.has_metadata = contents.metadata.count(kArch) > 0;
  if (!ckpt.has_metadata) {  // a bare state_dict: every tensor is the model's
    ckpt.model_tensors = std::move(contents.tensors);
    ckpt.info = {.num_classes = 0, .in_channels = 0, .widths = widths_of(ckpt.model_tensors), .extra = contents.metadata};
    return ckpt;
  }

  const MetadataReader meta(file.string(), contents.metadata);
  CheckpointInfo& info = ckpt.info;
  info.arch = *meta.find(kArch);
  TPP_CHECK(!info.arch.empty(), "read_checkpoint: {}: metadata 'arch' is empty", file.string());
  if (const std::string* dataset = meta.find(kDataset)) info.dataset = *dataset;
  info.num_classes = meta.positive_integer(kNumClasses);
  info.in_channels = meta.positive_integer(kInChannels);
  const std::vector<std::string> extra_names =
      meta.find(kExtraTensors) ? meta.names(kExtraTensors) : std::vector<std::string>{};
  for (const auto& [key, value] : contents.metadata)
    if (!is_reserved(key)) info.extra[key] = value;

  for (const std::string& key : extra_names) {
    const auto it = contents.tensors.find(key);
    TPP_CHECK(it != contents.tensors.end(), "read_checkpoint: {}: metadata lists extra tensor '{}', which is missing",
              file.string(), key);
    ckpt.extra_tensors.insert(contents.tensors.extract(it));
  }
  ckpt.model_tensors = std::move(contents.tensors);
  info.widths = meta.find(kWidths) ? meta.widths() : widths_of(ckpt.model_tensors);
  return ckpt;
}

std::shared_ptr<Module> build_model(const Checkpoint& ckpt, const std::string& arch_override, int64_t num_classes,
                                    int64_t in_channels) {
  const std::string arch = resolve_arch(ckpt, arch_override);
  if (num_classes <= 0) num_classes = ckpt.info.num_classes;
  if (in_channels <= 0) in_channels = ckpt.info.in_channels;
  if (num_classes <= 0 || in_channels <= 0) {
    const InferredSizes inferred = infer_sizes(ckpt, arch);
    if (num_classes <= 0) num_classes = inferred.num_classes;
    if (in_channels <= 0) in_channels = inferred.in_channels;
  }
  std::shared_ptr<Module> model = make_uninitialised(arch, num_classes, in_channels);
  apply_checkpoint_widths(*model, ckpt, arch);
  check_tensors(*model, ckpt, arch);
  model->load_state_dict(ckpt.model_tensors);
  return model;
}

}  // namespace tpp::models
