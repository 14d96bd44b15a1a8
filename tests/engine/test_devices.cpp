// Device placement as far as a machine without a GPU can see it.
#include <doctest/doctest.h>

#include "engine/cuda_info.h"
#include "engine/error.h"
#include "engine/tensor.h"
#include "models/zoo.h"

using namespace tpp;

TEST_CASE("a GPU tensor without a usable GPU is refused by name") {
#if TPP_WITH_CUDA
  if (cuda_device_count() > 0) return;  // tests/gpu covers GPUs
  CHECK_THROWS_WITH(zeros({2}, {.device = Device::cuda(0)}), "storage: cuda:0 is not available (0 usable GPU(s))");
#else
  CHECK_THROWS_WITH(zeros({2}, {.device = Device::cuda(0)}),
                    "storage: cuda:0 tensors need the CUDA backend, which this build does not have");
#endif
}

TEST_CASE("to(device) of a tensor already there is the tensor itself") {
  const Tensor t = ones({3});
  CHECK(t.to(Device::cpu()).shares_storage_with(t));
}

TEST_CASE("accumulate_ adds a strided source of another dtype in place") {
  const Tensor dst = ones({2, 3});
  const Tensor src = arange(0.0, 6.0, 1.0, {.dtype = DType::f64}).view({3, 2}).transpose(0, 1);
  accumulate_(dst, src);
  CHECK(dst.to_vector<float>() == std::vector<float>{1, 3, 5, 2, 4, 6});
}

TEST_CASE("accumulate_ refuses mismatched shapes") {
  CHECK_THROWS_WITH(accumulate_(ones({2}), ones({3})),
                    "accumulate_: source shape [3] does not match destination shape [2]");
}

TEST_CASE("a model moved to the device it is on keeps its tensors and reports that device") {
  const auto model = models::make_model("vgg_small", 10, 1);
  const Tensor first = model->parameters().front();
  model->to(Device::cpu());
  CHECK(model->parameters().front().shares_storage_with(first));
  CHECK(model->device() == Device::cpu());
}
