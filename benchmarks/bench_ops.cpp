// Forward + backward timings of the compute-heavy CPU ops at the shapes that
// dominate ResNet-56/CIFAR and MLP training. The cases come from
// op_cases.json, which torch_ops.py reads too; compare_cpu.sh runs both.
//
// Every iteration is one training-step slice: forward, then backward from a
// fixed random output gradient, producing every input's gradient. Gradients
// are cleared before each iteration (as `param.grad = None` in PyTorch), so
// nothing accumulates across iterations.
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "engine/rng.h"
#include "ops/conv2d.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#if __has_include("ops/batch_norm.h")
#include "ops/batch_norm.h"
#define TPP_HAVE_BATCH_NORM 1
#endif

namespace {

using namespace tpp;
using nlohmann::json;

Tensor random_leaf(const Shape& shape, Generator& gen, double scale = 1.0) {
  Tensor t = randn(shape, {}, &gen);
  if (scale != 1.0) {
    NoGradGuard no_grad;
    t = ops::mul(t, scale);
  }
  t.set_requires_grad(true);
  return t;
}

void clear_grads(std::initializer_list<Tensor*> leaves) {
  for (Tensor* t : leaves)
    if (t->defined()) t->set_grad(Tensor());
}

void bench_conv2d(benchmark::State& state, const json& c) {
  Generator gen(1);
  const int64_t n = c["batch"], in = c["in"], out = c["out"], size = c["size"], k = c["kernel"];
  const int64_t stride = c["stride"], pad = c["padding"];
  const ops::Conv2dOptions opts{.stride = {stride, stride}, .padding = {pad, pad}};
  Tensor x = random_leaf({n, in, size, size}, gen);
  Tensor w = random_leaf({out, in, k, k}, gen, 0.1);
  Tensor b = c["bias"].get<bool>() ? random_leaf({out}, gen) : Tensor();
  const Tensor dy = randn(ops::conv2d(x.detach(), w.detach(), {}, opts).sizes(), {}, &gen);
  for (auto _ : state) {
    clear_grads({&x, &w, &b});
    ops::conv2d(x, w, b, opts).backward(dy);
  }
}

void bench_linear(benchmark::State& state, const json& c) {
  Generator gen(2);
  const int64_t n = c["batch"], in = c["in"], out = c["out"];
  Tensor x = random_leaf({n, in}, gen), w = random_leaf({out, in}, gen, 0.1), b = random_leaf({out}, gen);
  const Tensor dy = randn({n, out}, {}, &gen);
  for (auto _ : state) {
    clear_grads({&x, &w, &b});
    ops::linear(x, w, b).backward(dy);
  }
}

#ifdef TPP_HAVE_BATCH_NORM
void bench_batch_norm2d(benchmark::State& state, const json& c) {
  Generator gen(3);
  const int64_t n = c["batch"], ch = c["channels"], size = c["size"];
  Tensor x = random_leaf({n, ch, size, size}, gen), gamma = random_leaf({ch}, gen), beta = random_leaf({ch}, gen);
  const Tensor running_mean = zeros({ch}), running_var = ones({ch});
  const Tensor dy = randn({n, ch, size, size}, {}, &gen);
  for (auto _ : state) {
    clear_grads({&x, &gamma, &beta});
    ops::batch_norm2d(x, gamma, beta, running_mean, running_var, {.training = true}).backward(dy);
  }
}
#endif

json load_cases() {
  std::ifstream in(TPP_BENCH_CASES);
  if (!in) throw std::runtime_error(fmt::format("bench_ops: cannot open {}", TPP_BENCH_CASES));
  return json::parse(in)["cases"];
}

}  // namespace

int main(int argc, char** argv) {
  for (const json& c : load_cases()) {
    const std::string op = c["op"], name = c["name"];
    benchmark::internal::Benchmark* b = nullptr;
    if (op == "conv2d") b = benchmark::RegisterBenchmark(name.c_str(), bench_conv2d, c);
    if (op == "linear") b = benchmark::RegisterBenchmark(name.c_str(), bench_linear, c);
#ifdef TPP_HAVE_BATCH_NORM
    if (op == "batch_norm2d") b = benchmark::RegisterBenchmark(name.c_str(), bench_batch_norm2d, c);
#endif
    if (b) b->Unit(benchmark::kMillisecond)->UseRealTime();
  }
  benchmark::AddCustomContext("openblas_core", openblas_get_corename());
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
