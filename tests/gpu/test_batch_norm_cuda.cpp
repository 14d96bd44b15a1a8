// Batch norm on CUDA against the CPU: what the parity harness cannot see,
// the running statistics updated in place by training steps, and sync batch
// norm with its statistics brought to a CPU communicator and back.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "engine/distributed.h"
#include "engine/philox.h"
#include "ops/batch_norm.h"
#include "ops/elementwise.h"
#include "tests/gpu/gpu_available.h"

using namespace tpp;

namespace {

double max_abs_diff(const Tensor& cpu, const Tensor& gpu) {
  const auto a = cpu.to(DType::f64).to_vector<double>();
  const auto b = gpu.to(Device::cpu()).to(DType::f64).to_vector<double>();
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

struct RunningStats {
  Tensor mean, var;
};

RunningStats fresh_running_stats(int64_t channels, DType dtype, Device device) {
  return {zeros({channels}, {.dtype = dtype, .device = device}), ones({channels}, {.dtype = dtype, .device = device})};
}

}  // namespace

TEST_SUITE("gpu") {
  TEST_CASE("batch_norm2d training steps on CUDA update the running statistics as on the CPU") {
    if (skip_without_gpu()) return;
    for (const DType dtype : {DType::f32, DType::f64}) {
      CAPTURE(dtype_name(dtype));
      Generator gen(11);
      RunningStats cpu = fresh_running_stats(5, dtype, Device::cpu());
      RunningStats gpu = fresh_running_stats(5, dtype, Device::cuda(0));
      const ops::BatchNormOptions opts{.training = true, .momentum = 0.3};
      for (int step = 0; step < 3; ++step) {
        const Tensor x = randn({3, 5, 4, 7}, {.dtype = dtype}, &gen) * 2.0 + 1.0;  // far from the initial stats
        const Tensor w = randn({5}, {.dtype = dtype}, &gen), b = randn({5}, {.dtype = dtype}, &gen);
        const Tensor y_cpu = ops::batch_norm2d(x, w, b, cpu.mean, cpu.var, opts);
        const Tensor y_gpu = ops::batch_norm2d(x.to(Device::cuda(0)), w.to(Device::cuda(0)), b.to(Device::cuda(0)),
                                               gpu.mean, gpu.var, opts);
        CHECK(y_gpu.device().is_cuda());
        CHECK(max_abs_diff(y_cpu, y_gpu) <= 1e-5);
      }
      CHECK(gpu.mean.device().is_cuda());
      CHECK(max_abs_diff(cpu.mean, gpu.mean) <= 1e-6);
      CHECK(max_abs_diff(cpu.var, gpu.var) <= 1e-5);
      const RunningStats initial = fresh_running_stats(5, dtype, Device::cpu());
      CHECK(max_abs_diff(initial.mean, gpu.mean) > 0.1);  // the steps did move them
      CHECK(max_abs_diff(initial.var, gpu.var) > 0.1);
    }
  }

  TEST_CASE("batch_norm2d eval on CUDA normalises with the running statistics and leaves them alone") {
    if (skip_without_gpu()) return;
    Generator gen(12);
    const Tensor x = randn({2, 3, 5, 5}, {}, &gen);
    const Tensor mean = randn({3}, {}, &gen), var = rand({3}, {}, &gen) + 0.5;
    const Tensor gpu_mean = mean.to(Device::cuda(0)), gpu_var = var.to(Device::cuda(0));
    const ops::BatchNormOptions eval{.training = false};
    const Tensor y_cpu = ops::batch_norm2d(x, {}, {}, mean, var, eval);
    const Tensor y_gpu = ops::batch_norm2d(x.to(Device::cuda(0)), {}, {}, gpu_mean, gpu_var, eval);
    CHECK(max_abs_diff(y_cpu, y_gpu) <= 1e-5);
    CHECK(max_abs_diff(mean, gpu_mean) == 0);
    CHECK(max_abs_diff(var, gpu_var) == 0);
  }

  TEST_CASE("sync_batch_norm2d on CUDA over one CPU rank gives batch_norm2d's output, statistics and gradients") {
    if (skip_without_gpu()) return;
    Generator gen(13);
    const Tensor x_values = randn({4, 3, 5, 5}, {}, &gen) * 4.0 + 10.0;  // a mean far from 0
    const Tensor w_values = randn({3}, {}, &gen), b_values = randn({3}, {}, &gen), dy = randn({4, 3, 5, 5}, {}, &gen);
    struct Result {
      Tensor y, dx, dw, db, mean, var;
    };
    const auto run = [&](Device device, bool sync) {
      Tensor x = x_values.to(device).detach(), w = w_values.to(device).detach(), b = b_values.to(device).detach();
      for (Tensor* t : {&x, &w, &b}) t->set_requires_grad(true);
      const RunningStats stats = fresh_running_stats(3, DType::f32, device);
      const Tensor y = sync ? ops::sync_batch_norm2d(x, w, b, stats.mean, stats.var,
                                                     dist::make_single_process_communicator(Device::cpu()))
                            : ops::batch_norm2d(x, w, b, stats.mean, stats.var);
      y.backward(dy.to(device));
      return Result{y, x.grad(), w.grad(), b.grad(), stats.mean, stats.var};
    };
    const Result want = run(Device::cpu(), false), got = run(Device::cuda(0), true);
    CHECK(got.y.device().is_cuda());
    CHECK(max_abs_diff(want.y, got.y) <= 1e-5);
    CHECK(max_abs_diff(want.mean, got.mean) <= 1e-5);
    CHECK(max_abs_diff(want.var, got.var) <= 1e-4);
    CHECK(max_abs_diff(want.dx, got.dx) <= 1e-5);
    CHECK(max_abs_diff(want.dw, got.dw) <= 1e-4);
    CHECK(max_abs_diff(want.db, got.db) <= 1e-4);
  }
}
