// `tpp forward --checkpoint F --input X.safetensors --output Y.safetensors
// [--arch A] [--device D]`: one forward pass in eval mode over the tensor
// `input` of X (f32 [N, C, H, W]), written to Y as the tensor `output`. For
// inference and for checking our numbers against another framework's (or the
// CPU's against the GPU's: --device, default cpu, whatever GPUs there are).
// --arch is needed only for a checkpoint without metadata (a torchvision
// state_dict). Nothing is written unless everything succeeds.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "apps/commands.h"
#include "train/model_input.h"
#include "train/run_data.h"
#include "engine/autograd.h"
#include "engine/safetensors.h"
#include "models/checkpoint.h"

namespace tpp::apps {

using namespace tpp::train;  // the training floor (train/): run data, run directories, reports

namespace {

struct ForwardOptions {
  std::string checkpoint, input, output, arch;
  std::string device = "cpu";
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

int run_forward(const ForwardOptions& o) {
  const Device device = Device::parse(o.device);
  check_training_device(device, "forward");
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
  CLI::App* sub = app.add_subcommand("forward", "One forward pass in eval mode of a checkpoint on a given input tensor");
  sub->footer("Examples:\n  tpp forward --checkpoint runs/vgg_small/best.safetensors --input x.safetensors --output y.safetensors");
  sub->add_option("--checkpoint", opts->checkpoint, "Checkpoint (.safetensors)")->required();
  sub->add_option("--input", opts->input, "Safetensors file holding 'input', f32 [N, C, H, W]")->required();
  sub->add_option("--output", opts->output, "Safetensors file to write 'output' to")->required();
  sub->add_option("--arch", opts->arch, "Architecture, for a checkpoint without metadata (a torchvision state_dict)");
  sub->add_option("--device", opts->device, "cpu, cuda or cuda:N")->capture_default_str();
  register_command(sub, [opts] { return run_forward(*opts); });
  return sub;
}

}  // namespace tpp::apps
