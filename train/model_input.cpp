#include "train/model_input.h"

#include "models/layers.h"
#include "models/zoo.h"

namespace tpp::train {

ModelInput model_input(models::Module& model, const std::string& arch) {
  // model_input_shape() gives the resolution a model insists on; CNNs take
  // the one asked for (here 0).
  const Shape one_channel = models::model_input_shape(arch, 1, 0);
  ModelInput input{.arch = arch, .fixed_resolution = one_channel[1] > 0, .height = one_channel[1],
                   .width = one_channel[2]};
  for (auto& [name, module] : model.named_modules()) {
    if (const auto* conv = dynamic_cast<const models::Conv2d*>(module)) {
      input.channels = conv->spec.in_channels;
      break;
    }
    if (const auto* linear = dynamic_cast<const models::Linear*>(module)) {
      const int64_t pixels = input.fixed_resolution ? input.height * input.width : 1;
      input.channels = linear->weight.size(1) / pixels;
      break;
    }
  }
  return input;
}

}  // namespace tpp::train
