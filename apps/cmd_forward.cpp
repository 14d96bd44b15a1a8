// `tpp forward --checkpoint F --input X.safetensors --output Y.safetensors
// [--arch A] [--device D]`: one forward pass in eval mode over the tensor
// `input` of X (f32 [N, C, H, W]), written to Y as the tensor `output`. For
// inference and for checking our numbers against another framework's (or the
// CPU's against the GPU's: --device, default cpu, whatever GPUs there are).
// --arch is needed only for a checkpoint without metadata (a torchvision
// state_dict). Nothing is written unless everything succeeds.
//
// `tpp forward --checkpoint F IMAGE...`: PNG or JPEG files, each prepared as
// the checkpoint's dataset prepares its test images (grey for one-channel
// models, resized to the model's input, normalised), and the five most
// likely classes of each printed with their probabilities.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "apps/commands.h"
#include "train/model_input.h"
#include "train/run_data.h"
#include "apps/usage.h"
#include "data/cifar.h"
#include "data/image_codec.h"
#include "data/mnist.h"
#include "data/transforms.h"
#include "engine/autograd.h"
#include "engine/safetensors.h"
#include "models/checkpoint.h"
#include "ops/elementwise.h"
#include "train/dataset_shapes.h"
#include "train/model_input.h"

namespace tpp::apps {

using namespace tpp::train;  // the training floor (train/): run data, run directories, reports

namespace {

struct ForwardOptions {
  std::string checkpoint, input, output, arch;
  std::string device = "cpu";
  std::vector<std::string> images;
};

std::vector<std::string> tensor_names(const SafetensorsFile& file) {
  std::vector<std::string> names;
  for (const auto& [name, t] : file.tensors) names.push_back(name);
  return names;
}

Tensor read_input(const std::string& path, const ModelInput& expected) {
  const SafetensorsFile file = load_safetensors(path);
  const auto it = file.tensors.find("input");
  TPP_CHECK(it != file.tensors.end(), "forward: {} holds no tensor named 'input' (it has: {})", path,
            fmt::join(tensor_names(file), ", "));
  const Tensor& x = it->second;
  TPP_CHECK(x.dtype() == DType::f32, "forward: {}: 'input' is {}, not f32", path, dtype_name(x.dtype()));
  TPP_CHECK(x.dim() == 4 && x.size(0) > 0, "forward: {}: 'input' has shape {}, not [N, C, H, W]", path,
            shape_str(x.sizes()));
  TPP_CHECK(x.size(1) == expected.channels, "forward: {}: 'input' has shape {} but {} takes {} input channels", path,
            shape_str(x.sizes()), expected.arch, expected.channels);
  TPP_CHECK(!expected.fixed_resolution || (x.size(2) == expected.height && x.size(3) == expected.width),
            "forward: {}: 'input' has shape {} but {} takes {}x{} images", path, shape_str(x.sizes()), expected.arch,
            expected.height, expected.width);
  return x;
}

// The class names of the datasets whose labels are known by heart; empty otherwise.
std::vector<std::string> class_names(const std::string& dataset) {
  if (dataset == "mnist" || dataset == "fashion-mnist") return data::mnist_class_names(dataset);
  if (dataset == "cifar10") return data::cifar10_names();
  return {};
}

// u8 [3, H, W] RGB -> u8 [1, H, W] luminance (ITU-R 601, as PIL's "L").
Tensor to_grey(const Tensor& rgb) {
  const Tensor f = rgb.to(DType::f32);
  const Tensor grey = f.slice(0, 0, 1) * 0.299 + f.slice(0, 1, 2) * 0.587 + f.slice(0, 2, 3) * 0.114;
  return (grey + 0.5).to(DType::u8);
}

// One image file as the dataset's test transforms give it to the model: f32 [C, H, W].
Tensor prepared_image(const std::string& path, const ModelInput& input, const std::string& dataset) {
  Tensor image = data::load_image(path, "forward");
  if (input.channels == 1) image = to_grey(image);
  TPP_CHECK(image.size(0) == input.channels, "forward: {}: the model takes {} input channels, the image has {}", path,
            input.channels, image.size(0));
  data::SampleRandom unused(0, 0, 0, 0);  // test transforms draw nothing
  // The model's own input size, else its dataset's (ImageNet-style data: the transforms resize and crop).
  const int64_t resolution = class_names(dataset).empty() ? 0 : find_dataset_shape(dataset).resolution;
  if (input.fixed_resolution || resolution > 0) {
    const int64_t h = input.fixed_resolution ? input.height : resolution;
    const int64_t w = input.fixed_resolution ? input.width : resolution;
    if (image.size(1) != h || image.size(2) != w) image = data::Resize(h, w).apply(image, unused);
  }
  return data::standard_transforms(dataset, false)->apply(image, unused);
}

int print_top_classes(const ForwardOptions& o, const models::Checkpoint& ckpt, models::Module& model,
                      const std::string& arch, Device device) {
  const ModelInput input = model_input(model, arch);
  const std::string& dataset = ckpt.info.dataset;
  const std::vector<std::string> names = class_names(dataset);
  Tensor batch;
  for (size_t i = 0; i < o.images.size(); ++i) {
    const Tensor image = prepared_image(o.images[i], input, dataset);
    if (i == 0) {
      Shape shape = image.sizes();
      shape.insert(shape.begin(), static_cast<int64_t>(o.images.size()));
      batch = zeros(shape);
    }
    batch.slice(0, static_cast<int64_t>(i), static_cast<int64_t>(i) + 1).copy_(image.unsqueeze(0));
  }
  model.eval();
  const NoGradGuard no_grad;
  const Tensor logits = model(batch.to(device)).to(Device::cpu()).to(DType::f64).contiguous();
  const int64_t classes = logits.size(1);
  const double* rows = logits.data<double>();
  for (size_t i = 0; i < o.images.size(); ++i) {
    const double* row = rows + static_cast<int64_t>(i) * classes;
    const double top = *std::max_element(row, row + classes);
    double sum = 0;
    for (int64_t c = 0; c < classes; ++c) sum += std::exp(row[c] - top);
    std::vector<int64_t> order(static_cast<size_t>(classes));
    std::iota(order.begin(), order.end(), 0);
    const auto shown = std::min<int64_t>(5, classes);
    std::partial_sort(order.begin(), order.begin() + shown, order.end(),
                      [&](int64_t a, int64_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
    fmt::print("{}:", o.images[i]);
    for (int64_t k = 0; k < shown; ++k) {
      const int64_t c = order[static_cast<size_t>(k)];
      const bool named = c < static_cast<int64_t>(names.size());
      fmt::print("{}{} {:.1f}%", k == 0 ? "  " : ", ", named ? fmt::format("{} ({})", names[static_cast<size_t>(c)], c)
                                                              : fmt::format("class {}", c),
                 100 * std::exp(row[c] - top) / sum);
    }
    fmt::print("\n");
  }
  return 0;
}

int run_forward(const ForwardOptions& o) {
  if (o.images.empty() == (o.input.empty() && o.output.empty()))
    usage_fail("forward: give image files, or --input and --output (a tensor in, a tensor out), not both");
  if (o.images.empty() && (o.input.empty() || o.output.empty()))
    usage_fail("forward: --input and --output go together");
  const Device device = Device::parse(o.device);
  check_training_device(device, "forward");
  if (!o.images.empty()) {
    const models::Checkpoint ckpt = models::read_checkpoint(o.checkpoint);
    const std::shared_ptr<models::Module> model = models::build_model(ckpt, o.arch);
    model->to(device);
    return print_top_classes(o, ckpt, *model, o.arch.empty() ? ckpt.info.arch : o.arch, device);
  }
  const models::Checkpoint ckpt = models::read_checkpoint(o.checkpoint);
  const std::shared_ptr<models::Module> model = models::build_model(ckpt, o.arch);
  const std::string arch = o.arch.empty() ? ckpt.info.arch : o.arch;
  const Tensor x = read_input(o.input, model_input(*model, arch));

  model->to(device);
  model->eval();
  const NoGradGuard no_grad;
  const Tensor y = (*model)(x.to(device)).to(Device::cpu());
  save_safetensors(o.output, {{"output", y}}, {{"arch", arch}, {"checkpoint", o.checkpoint}, {"input", o.input}});
  fmt::print("forward: {} {} -> {} {} ({})\n", o.input, shape_str(x.sizes()), o.output, shape_str(y.sizes()), arch);
  return 0;
}

}  // namespace

CLI::App* add_forward_command(CLI::App& app) {
  auto opts = std::make_shared<ForwardOptions>();
  CLI::App* sub = app.add_subcommand(
      "forward", "Classify image files (top-5 classes), or one forward pass in eval mode on an input tensor");
  sub->footer("Examples:\n  tpp forward --checkpoint runs/vgg_small/best.safetensors shoe.png bag.jpg\n  tpp forward --checkpoint runs/vgg_small/best.safetensors --input x.safetensors --output y.safetensors");
  sub->add_option("--checkpoint", opts->checkpoint, "Checkpoint (.safetensors)")->required();
  sub->add_option("images", opts->images, "PNG or JPEG files: print each one's five most likely classes")
      ->type_name("IMAGE...");
  sub->add_option("--input", opts->input, "Safetensors file holding 'input', f32 [N, C, H, W]");
  sub->add_option("--output", opts->output, "Safetensors file to write 'output' to");
  sub->add_option("--arch", opts->arch, "Architecture, for a checkpoint without metadata (a torchvision state_dict)");
  sub->add_option("--device", opts->device, "cpu, cuda or cuda:N")->capture_default_str();
  register_command(sub, [opts] { return run_forward(*opts); });
  return sub;
}

}  // namespace tpp::apps
