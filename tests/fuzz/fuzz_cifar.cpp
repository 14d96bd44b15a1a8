// CIFAR-10 / CIFAR-100 binary record files, raw or gzip-compressed, read in
// each of the three label layouts.
#include "data/cifar.h"
#include "data/io.h"
#include "tests/fuzz/fuzz_util.h"

using namespace tpp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::rejects_cleanly([&] {
    const std::vector<uint8_t> bytes = data::decode_file_bytes({data, data + size}, "fuzz");
    for (const auto which :
         {data::CifarLabels::cifar10, data::CifarLabels::cifar100_fine, data::CifarLabels::cifar100_coarse}) {
      std::vector<uint8_t> pixels(3072, 7);  // one record already read from an earlier file
      std::vector<int64_t> labels{1};
      bool accepted = false;
      fuzz::rejects_cleanly([&] {
        data::parse_cifar_records(bytes, which, "fuzz", pixels, labels);
        accepted = true;
      });
      fuzz::require(pixels.size() == 3072 * labels.size(), "3072 pixels per label");
      fuzz::require(accepted || labels.size() == 1, "a rejected file appends nothing");
    }
  });
  return 0;
}
