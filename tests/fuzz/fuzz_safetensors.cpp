// Safetensors files (checkpoints, fixtures) parsed from memory.
#include "engine/safetensors.h"
#include "tests/fuzz/fuzz_util.h"

using namespace tpp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::rejects_cleanly([&] {
    const SafetensorsFile file = parse_safetensors({data, size}, "fuzz.safetensors");
    uint64_t total = 0;
    for (const auto& [name, t] : file.tensors) total += static_cast<uint64_t>(t.numel()) * element_size(t.dtype());
    fuzz::require(total <= size, "tensors hold no more bytes than the file");
  });
  return 0;
}
