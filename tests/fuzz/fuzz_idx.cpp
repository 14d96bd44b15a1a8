// IDX image and label files (MNIST, Fashion-MNIST), raw or gzip-compressed.
#include "data/io.h"
#include "data/mnist.h"
#include "tests/fuzz/fuzz_util.h"

using namespace tpp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::rejects_cleanly([&] {
    const std::vector<uint8_t> bytes = data::decode_file_bytes({data, data + size}, "fuzz");
    fuzz::rejects_cleanly([&] {
      const Tensor images = data::parse_idx_images(bytes, "fuzz");
      fuzz::require(images.dim() == 4 && images.numel() + 16 == static_cast<int64_t>(bytes.size()),
                    "IDX images hold every byte after the header");
    });
    fuzz::rejects_cleanly([&] {
      const Tensor labels = data::parse_idx_labels(bytes, "fuzz", 10);
      fuzz::require(labels.numel() + 8 == static_cast<int64_t>(bytes.size()), "one label per byte after the header");
    });
  });
  return 0;
}
