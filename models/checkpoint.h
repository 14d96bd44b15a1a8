// Checkpoints: a model's state_dict as a safetensors file (engine/safetensors.h)
// whose tensor names are PyTorch's state_dict keys, so that our checkpoints load
// in PyTorch and a torchvision state_dict saved with the safetensors library
// loads here as is. The "__metadata__" map makes a file self-describing:
//
//   arch, dataset, num_classes, in_channels   what make_model() needs
//   widths          JSON {"layer": out width} of every conv/linear layer, so a
//                   pruned model reloads without its pruning plan
//   engine_version  the tpp version that wrote it
//   extra_tensors   JSON list of the tensors that are not the model's
//                   (optimizer state, training counters)
//   anything else   CheckpointInfo::extra (phase, epoch, ...)
//
// Every problem with a file (missing, truncated, corrupt, another
// architecture, a missing, unexpected or misshapen tensor, a wrong dtype)
// throws tpp::Error with one line naming the file and what is wrong.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "engine/tensor.h"
#include "models/module.h"

namespace tpp::models {

struct CheckpointInfo {
  std::string arch{}, dataset{};
  int64_t num_classes = 0, in_channels = 3;
  std::map<std::string, int64_t> widths{};     // out width of every conv/linear layer
  std::map<std::string, std::string> extra{};  // free-form metadata (phase, epoch, ...)
};

// Writes model.state_dict() plus `extra_tensors` (whose names must not clash
// with the model's keys; by convention "optimizer.*", "train.*") atomically.
// The widths written are the model's own: info.widths is not consulted.
// `info.extra` may not use the reserved keys above, except engine_version,
// which is always set to this build's version.
void save_checkpoint(const std::filesystem::path& file, const Module& model, const CheckpointInfo& info,
                     const std::map<std::string, Tensor>& extra_tensors = {});

struct Checkpoint {
  std::filesystem::path file;  // where it was read from, for error messages
  CheckpointInfo info;         // arch empty and widths inferred from the tensors when !has_metadata
  std::map<std::string, Tensor> model_tensors, extra_tensors;
  bool has_metadata = false;  // false for a bare state_dict (e.g. torchvision's)
};

// Reads and validates the file and its metadata; the model is not built yet.
Checkpoint read_checkpoint(const std::filesystem::path& file);

// make_model(arch) -> apply_widths(widths) -> strict load of the tensors.
// `arch_override` is needed when the file has no metadata, and must agree
// with the metadata when it has some. num_classes / in_channels (0: from the
// metadata, else inferred from the classifier's and the first layer's
// weights) override the metadata for bare state_dicts. The model comes back
// in training mode, as make_model() gives it.
std::shared_ptr<Module> build_model(const Checkpoint& ckpt, const std::string& arch_override = "",
                                    int64_t num_classes = 0, int64_t in_channels = 0);

}  // namespace tpp::models
