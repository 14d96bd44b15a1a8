// Safetensors files (https://github.com/huggingface/safetensors): an 8-byte
// little-endian header length, a JSON header mapping each tensor name to
// {dtype, shape, data_offsets} (plus an optional "__metadata__" string map),
// then the raw little-endian data. Checkpoints and PyTorch fixtures use it.
#pragma once

#include <filesystem>
#include <map>
#include <span>
#include <string>

#include "engine/tensor.h"

namespace tpp {

struct SafetensorsFile {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;
};

// Headers longer than this are refused before they are read (the reference
// implementation has the same limit).
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;

// Reads every tensor into fresh contiguous CPU tensors. Bad input (missing,
// truncated or inconsistent file) throws tpp::Error with one line naming the
// file, the problem and, where there is one, the tensor. Sizes in the header
// are checked against the file size before anything is allocated.
SafetensorsFile load_safetensors(const std::filesystem::path& path);
// The same from a whole file held in memory; `name` stands for the file in
// error messages.
SafetensorsFile parse_safetensors(std::span<const uint8_t> bytes, const std::string& name);

// Writes atomically: a temporary file in the same directory is written,
// flushed and fsync'ed, then renamed over `path` and the directory fsync'ed,
// so `path` holds either its old content or the complete new file. Tensors
// may be strided views; dtypes are stored as F32, F64, I64 and U8.
void save_safetensors(const std::filesystem::path& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace tpp
