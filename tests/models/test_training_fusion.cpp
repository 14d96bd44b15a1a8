// Training runs batch norm and the ReLU after it as one op
// (ops::batch_norm2d_relu) unless a forward observer must see batch norm's own
// output: both ways give the same loss, gradients and running statistics, bit
// for bit, and with an observer every BatchNorm2d and ReLU module is called.
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "engine/philox.h"
#include "models/layers.h"
#include "models/zoo.h"
#include "ops/loss.h"

using namespace tpp;
using namespace tpp::models;

namespace {

// Every parameter's gradient and every buffer after one training step, and the loss.
std::vector<float> one_step(const std::string& arch, int64_t channels, int64_t size, bool observed) {
  manual_seed(51);
  const auto model = make_model(arch, 10, channels);
  model->train(true);
  const Tensor x = randn({4, channels, size, size});
  const Tensor target = from_vector<int64_t>({1, 7, 3, 0}, {4});
  Tensor loss;
  if (observed) {
    const ObserveForward observe([](Module&, const Tensor&, const Tensor&) {});
    loss = ops::cross_entropy((*model)(x), target);
  } else {
    loss = ops::cross_entropy((*model)(x), target);
  }
  loss.backward();
  std::vector<float> out = loss.to_vector<float>();
  for (const auto& [name, p] : model->named_parameters()) {
    const std::vector<float> g = p.grad().to_vector<float>();
    out.insert(out.end(), g.begin(), g.end());
  }
  for (const auto& [name, b] : model->named_buffers()) {
    if (b.dtype() != DType::f32) continue;
    const std::vector<float> v = b.to_vector<float>();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_SUITE("models") {
  TEST_CASE("a resnet20 training step gives the same bits with batch norm and ReLU fused and unfused") {
    CHECK(same_bits(one_step("resnet20", 3, 32, false), one_step("resnet20", 3, 32, true)));
  }

  TEST_CASE("a vgg_small training step (Sequential's BatchNorm2d then ReLU) gives the same bits fused and unfused") {
    CHECK(same_bits(one_step("vgg_small", 1, 28, false), one_step("vgg_small", 1, 28, true)));
  }

  TEST_CASE("with a forward observer a training forward calls every BatchNorm2d and ReLU module") {
    manual_seed(52);
    const auto model = make_model("vgg_small", 10, 1);
    model->train(true);
    int batch_norms = 0, relus = 0;
    const ObserveForward observe([&](Module& m, const Tensor&, const Tensor&) {
      batch_norms += m.type_name() == "BatchNorm2d";
      relus += m.type_name() == "ReLU";
    });
    (*model)(randn({2, 1, 28, 28}));
    CHECK(batch_norms > 0);
    CHECK(relus >= batch_norms);
  }
}
