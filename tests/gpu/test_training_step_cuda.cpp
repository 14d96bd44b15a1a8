// One full training step on CUDA against the same step on the CPU: forward,
// cross-entropy, backward and SGD (momentum, weight decay) of small CNNs with
// batch norm from the zoo, in full fp32. Skipped, saying so, without a GPU.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "engine/math_mode.h"
#include "engine/optim.h"
#include "engine/philox.h"
#include "models/zoo.h"
#include "ops/loss.h"
#include "tests/gpu/gpu_available.h"

using namespace tpp;

namespace {

struct StepResult {
  double loss = 0;
  models::NamedTensors state;  // parameters and buffers after the step, on the CPU
};

// Two steps (so that the momentum buffers matter) on `device`, from the weights of `seed`.
StepResult train_two_steps(const std::string& arch, Device device, const Tensor& images, const Tensor& labels) {
  manual_seed(11);
  const auto model = models::make_model(arch, 10, images.size(1));
  model->to(device);
  model->train();
  Sgd sgd(model->parameters(), {.lr = 0.05, .momentum = 0.9, .weight_decay = 5e-4});
  StepResult result;
  for (int step = 0; step < 2; ++step) {
    sgd.zero_grad();
    const Tensor loss = ops::cross_entropy((*model)(images.to(device)), labels.to(device));
    loss.backward();
    sgd.step();
    result.loss = loss.item();
  }
  for (const auto& [name, t] : model->state_dict()) result.state.emplace_back(name, t.detach().to(Device::cpu()));
  return result;
}

// The largest |gpu - cpu| / (1 + |cpu|) over the elements of two tensors.
double worst_difference(const Tensor& cpu, const Tensor& gpu) {
  const std::vector<double> a = cpu.to(DType::f64).to_vector<double>(), b = gpu.to(DType::f64).to_vector<double>();
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]) / (1 + std::abs(a[i])));
  return worst;
}

void check_step_matches(const std::string& arch, const Shape& input) {
  const MathModeOverride fp32(MathMode::fp32);
  manual_seed(3);
  const Tensor images = randn(input);
  const Tensor labels = randint({input[0]}, 0, 10);
  const StepResult cpu = train_two_steps(arch, Device::cpu(), images, labels);
  const StepResult gpu = train_two_steps(arch, Device::cuda(0), images, labels);
  CHECK(gpu.loss == doctest::Approx(cpu.loss).epsilon(1e-4));
  REQUIRE(cpu.state.size() == gpu.state.size());
  for (size_t i = 0; i < cpu.state.size(); ++i) {
    CAPTURE(cpu.state[i].first);
    CHECK(worst_difference(cpu.state[i].second, gpu.state[i].second) < 1e-4);
  }
}

}  // namespace

TEST_SUITE("gpu") {
  TEST_CASE("two SGD steps of vgg_small with batch norm on CUDA match the CPU's") {
    if (skip_without_gpu()) return;
    check_step_matches("vgg_small", {4, 1, 28, 28});
  }

  TEST_CASE("two SGD steps of resnet20 (option-A shortcuts, batch norm) on CUDA match the CPU's") {
    if (skip_without_gpu()) return;
    check_step_matches("resnet20", {2, 3, 32, 32});
  }
}
