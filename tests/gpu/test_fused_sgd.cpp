// The fused multi-tensor SGD step on CUDA (engine/cuda/fused_sgd.h) against
// the CPU step, over several steps with momentum, weight decay, nesterov,
// masks, a parameter that gets its first gradient late, a non-contiguous
// gradient and a learning-rate change.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "engine/optim.h"
#include "engine/philox.h"
#include "tests/gpu/gpu_available.h"

using namespace tpp;

namespace {

// One element, odd sizes, more than one 4096-element chunk, a conv weight.
const std::vector<Shape> kShapes = {{1}, {7}, {3, 5}, {4099}, {3, 3000}, {16, 3, 3, 3}};
constexpr size_t kLateParam = 2;           // its first gradient comes at step 1
constexpr size_t kTransposedGradParam = 4; // its gradient is a transposed view

struct Twins {
  std::vector<Tensor> cpu, gpu;
};

Twins make_params(DType dtype, Generator& gen) {
  Twins t;
  for (const Shape& shape : kShapes) {
    const Tensor value = randn(shape, {.dtype = dtype}, &gen);
    t.cpu.push_back(value.clone().set_requires_grad(true));
    t.gpu.push_back(value.to(Device::cuda(0)).set_requires_grad(true));
  }
  return t;
}

void set_gradients(Twins& t, int step, Generator& gen) {
  for (size_t i = 0; i < kShapes.size(); ++i) {
    if (i == kLateParam && step == 0) continue;
    const DType dtype = t.cpu[i].dtype();
    if (i == kTransposedGradParam) {
      const Tensor base = randn({kShapes[i][1], kShapes[i][0]}, {.dtype = dtype}, &gen);
      t.cpu[i].set_grad(base.transpose(0, 1));
      t.gpu[i].set_grad(base.to(Device::cuda(0)).transpose(0, 1));
      continue;
    }
    const Tensor g = randn(kShapes[i], {.dtype = dtype}, &gen);
    t.cpu[i].set_grad(g);
    t.gpu[i].set_grad(g.to(Device::cuda(0)));
  }
}

void set_masks(Sgd& cpu_sgd, Sgd& gpu_sgd, Generator& gen) {
  const Tensor u8_mask = randint({7}, 0, 2, &gen).to(DType::u8);
  const Tensor row_mask = from_vector<float>({1, 0, 0.5}, {3, 1});
  const Tensor filter_mask = randint({16, 1, 1, 1}, 0, 2, &gen).to(DType::u8);
  cpu_sgd.set_mask(1, u8_mask);
  gpu_sgd.set_mask(1, u8_mask);  // moved to the parameter's device
  cpu_sgd.set_mask(4, row_mask);
  gpu_sgd.set_mask(4, row_mask.to(Device::cuda(0)));
  cpu_sgd.set_mask(5, filter_mask);
  gpu_sgd.set_mask(5, filter_mask.to(Device::cuda(0)));
}

// |gpu - cpu| <= tol * (1 + |cpu|) everywhere; zeros of the CPU (masked) exactly zero.
void check_close(const std::string& what, const Tensor& cpu, const Tensor& gpu, double tol) {
  CAPTURE(what);
  REQUIRE(gpu.device().is_cuda());
  const std::vector<double> a = cpu.to(DType::f64).to_vector<double>();
  const std::vector<double> b = gpu.to(Device::cpu()).to(DType::f64).to_vector<double>();
  REQUIRE(a.size() == b.size());
  double worst = 0;
  size_t zeros_differ = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, std::abs(a[i] - b[i]) / (1 + std::abs(a[i])));
    zeros_differ += (a[i] == 0) != (b[i] == 0);
  }
  CHECK(worst <= tol);
  CHECK(zeros_differ == 0);
}

void run_twin_steps(DType dtype, bool nesterov) {
  CAPTURE(dtype_name(dtype));
  CAPTURE(nesterov);
  Generator gen(nesterov ? 11 : 7);
  Twins t = make_params(dtype, gen);
  const SgdOptions opts{.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-3, .nesterov = nesterov};
  Sgd cpu_sgd(t.cpu, opts), gpu_sgd(t.gpu, opts);
  set_masks(cpu_sgd, gpu_sgd, gen);
  const double tol = dtype == DType::f32 ? 2e-5 : 1e-12;
  for (int step = 0; step < 4; ++step) {
    CAPTURE(step);
    if (step == 2) {
      cpu_sgd.set_lr(0.02);
      gpu_sgd.set_lr(0.02);
    }
    set_gradients(t, step, gen);
    cpu_sgd.step();
    gpu_sgd.step();
    for (size_t i = 0; i < kShapes.size(); ++i) {
      check_close("parameter " + std::to_string(i), t.cpu[i], t.gpu[i], tol);
      const Tensor& cpu_buffer = cpu_sgd.momentum_buffers()[i];
      REQUIRE(cpu_buffer.defined() == gpu_sgd.momentum_buffers()[i].defined());
      if (cpu_buffer.defined())
        check_close("momentum buffer " + std::to_string(i), cpu_buffer, gpu_sgd.momentum_buffers()[i], tol);
    }
  }
}

}  // namespace

TEST_SUITE("gpu") {
  TEST_CASE("the fused CUDA SGD step matches the CPU step: momentum, weight decay, masks, f32") {
    if (skip_without_gpu()) return;
    run_twin_steps(DType::f32, false);
  }

  TEST_CASE("the fused CUDA SGD step matches the CPU step: nesterov, f32") {
    if (skip_without_gpu()) return;
    run_twin_steps(DType::f32, true);
  }

  TEST_CASE("the fused CUDA SGD step matches the CPU step in f64") {
    if (skip_without_gpu()) return;
    run_twin_steps(DType::f64, true);
  }

  TEST_CASE("the fused CUDA SGD step without momentum and with parameters of two dtypes") {
    if (skip_without_gpu()) return;
    Generator gen(5);
    std::vector<Tensor> cpu, gpu;
    for (const DType dtype : {DType::f32, DType::f64, DType::f32}) {
      const Tensor value = randn({5000}, {.dtype = dtype}, &gen);
      cpu.push_back(value.clone().set_requires_grad(true));
      gpu.push_back(value.to(Device::cuda(0)).set_requires_grad(true));
    }
    Sgd cpu_sgd(cpu, {.lr = 0.1, .weight_decay = 0.01}), gpu_sgd(gpu, {.lr = 0.1, .weight_decay = 0.01});
    for (int step = 0; step < 2; ++step) {
      for (size_t i = 0; i < cpu.size(); ++i) {
        const Tensor g = randn({5000}, {.dtype = cpu[i].dtype()}, &gen);
        cpu[i].set_grad(g);
        gpu[i].set_grad(g.to(Device::cuda(0)));
      }
      cpu_sgd.step();
      gpu_sgd.step();
    }
    for (size_t i = 0; i < cpu.size(); ++i) {
      CHECK_FALSE(gpu_sgd.momentum_buffers()[i].defined());
      check_close("parameter " + std::to_string(i), cpu[i], gpu[i], cpu[i].dtype() == DType::f32 ? 2e-6 : 1e-14);
    }
  }
}
