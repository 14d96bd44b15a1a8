// Forward + backward timings of the compute-heavy ops at the shapes that
// dominate ResNet-56/CIFAR and MLP training, and whole training steps and
// eval-mode forwards of the zoo models the paper trains. The cases come from
// op_cases.json, which torch_ops.py reads too; compare_cpu.sh and
// compare_gpu.sh run both.
//
// Every op iteration is one training-step slice: forward, then backward from
// a fixed random output gradient, producing every input's gradient. Whole
// models: one SGD training step, and one eval-mode forward without autograd. Gradients
// are cleared before each iteration (as `param.grad = None` in PyTorch), so
// nothing accumulates across iterations.
//
//   bench_ops [--device cpu|cuda[:N]] [--math tf32|fp32] [benchmark flags]
//   (or env TPP_BENCH_DEVICE; default cpu). On a GPU every tensor lives on the
//   device, each iteration ends with synchronize(device) so that the wall time
//   covers the queued GPU work, and one untimed iteration runs first (cuDNN
//   algorithm search, allocator warm-up). Cases whose "devices" list in
//   op_cases.json leaves out the chosen device are not registered.
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <fmt/format.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <vector>

#include "engine/autograd.h"
#include "engine/cpu_allocator.h"
#include "engine/cuda_info.h"
#include "engine/error.h"
#include "engine/math_mode.h"
#include "engine/optim.h"
#include "engine/philox.h"
#include "models/zoo.h"
#include "ops/conv2d.h"
#include "ops/elementwise.h"
#include "ops/loss.h"
#include "ops/matmul.h"
#include "prune/oneshot.h"
#if __has_include("ops/batch_norm.h")
#include "ops/batch_norm.h"
#define TPP_HAVE_BATCH_NORM 1
#endif

namespace {

using namespace tpp;
using nlohmann::json;

// Where the tensors of every case live; set once in main() before any case runs.
Device bench_device = Device::cpu();

Tensor random_leaf(const Shape& shape, Generator& gen, double scale = 1.0) {
  Tensor t = randn(shape, {.device = bench_device}, &gen);
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

// Runs `step` twice untimed (on a GPU: cuDNN's algorithm search, the caching
// allocators' first blocks), then once per iteration, each iteration waiting
// for the device so that the wall time covers the GPU's work and not only
// the queueing of it.
//
// The counter allocs_per_step is the number of host memory allocations the
// CPU caching allocator (engine/cpu_allocator.h) took from the system per
// timed iteration: 0 once the warm-up has filled the cache.
template <class Step>
void time_steps(benchmark::State& state, Step&& step) {
  // Two untimed steps: the first makes the optimizer's state, whose blocks
  // the second then finds taken; from the third on every block is reused.
  for (int warm_up = 0; warm_up < 2; ++warm_up) {
    step();
    synchronize(bench_device);
  }
  const size_t allocations_before = cpu_allocator_stats().driver_allocations;
  for (auto _ : state) {
    step();
    synchronize(bench_device);
  }
  const auto allocations = static_cast<double>(cpu_allocator_stats().driver_allocations - allocations_before);
  state.counters["allocs_per_step"] = benchmark::Counter(allocations / static_cast<double>(state.iterations()));
}

void bench_conv2d(benchmark::State& state, const json& c) {
  Generator gen(1);
  const int64_t n = c["batch"], in = c["in"], out = c["out"], size = c["size"], k = c["kernel"];
  const int64_t stride = c["stride"], pad = c["padding"];
  const ops::Conv2dOptions opts{.stride = {stride, stride}, .padding = {pad, pad}};
  Tensor x = random_leaf({n, in, size, size}, gen);
  Tensor w = random_leaf({out, in, k, k}, gen, 0.1);
  Tensor b = c["bias"].get<bool>() ? random_leaf({out}, gen) : Tensor();
  const Shape out_shape = [&] {
    NoGradGuard no_grad;
    return ops::conv2d(x.detach(), w.detach(), {}, opts).sizes();
  }();
  const Tensor dy = randn(out_shape, {.device = bench_device}, &gen);
  time_steps(state, [&] {
    clear_grads({&x, &w, &b});
    ops::conv2d(x, w, b, opts).backward(dy);
  });
}

void bench_linear(benchmark::State& state, const json& c) {
  Generator gen(2);
  const int64_t n = c["batch"], in = c["in"], out = c["out"];
  Tensor x = random_leaf({n, in}, gen), w = random_leaf({out, in}, gen, 0.1), b = random_leaf({out}, gen);
  const Tensor dy = randn({n, out}, {.device = bench_device}, &gen);
  time_steps(state, [&] {
    clear_grads({&x, &w, &b});
    ops::linear(x, w, b).backward(dy);
  });
}

#ifdef TPP_HAVE_BATCH_NORM
void bench_batch_norm2d(benchmark::State& state, const json& c) {
  Generator gen(3);
  const int64_t n = c["batch"], ch = c["channels"], size = c["size"];
  Tensor x = random_leaf({n, ch, size, size}, gen), gamma = random_leaf({ch}, gen), beta = random_leaf({ch}, gen);
  const Tensor running_mean = zeros({ch}, {.device = bench_device}), running_var = ones({ch}, {.device = bench_device});
  const Tensor dy = randn({n, ch, size, size}, {.device = bench_device}, &gen);
  time_steps(state, [&] {
    clear_grads({&x, &gamma, &beta});
    ops::batch_norm2d(x, gamma, beta, running_mean, running_var, {.training = true}).backward(dy);
  });
}
#endif

// A zoo model case: the model on the bench device and a fixed random batch
// of images (with class labels for training).
struct ZooCase {
  std::shared_ptr<models::Module> model;
  Tensor images, labels;
};

ZooCase zoo_case(const json& c, uint64_t seed) {
  Generator gen(seed);
  const int64_t n = c["batch"], classes = c["classes"], channels = c["channels"], size = c["size"];
  ZooCase z{models::make_model(c["arch"], classes, channels), {}, {}};
  // A pruned network: its smallest-L1 filters removed at the case's ratios
  // (which filters go does not change the speed, only the widths do).
  if (c.contains("stage_pr")) prune::prune_l1(*z.model, {.stage_pr = c["stage_pr"]}, {channels, size, size});
  z.model->to(bench_device);
  z.images = randn({n, channels, size, size}, {.device = bench_device}, &gen);
  z.labels = randint({n}, 0, classes, &gen).to(bench_device);
  return z;
}

// One SGD training step of a zoo model on a fixed random batch: forward in
// train mode, cross-entropy, backward, momentum step; gradients zeroed first
// as our Trainer does (Sgd::zero_grad fills them with 0).
void bench_train_step(benchmark::State& state, const json& c) {
  const ZooCase z = zoo_case(c, 4);
  z.model->train();
  Sgd sgd(z.model->parameters(), {.lr = 0.01, .momentum = 0.9, .weight_decay = 5e-4});
  time_steps(state, [&] {
    sgd.zero_grad();
    ops::cross_entropy((*z.model)(z.images), z.labels).backward();
    sgd.step();
  });
}

// One inference forward of a zoo model in eval mode (running BN statistics),
// without autograd, as `tpp eval` runs it.
void bench_eval_forward(benchmark::State& state, const json& c) {
  const ZooCase z = zoo_case(c, 5);
  z.model->eval();
  NoGradGuard no_grad;
  time_steps(state, [&] { benchmark::DoNotOptimize((*z.model)(z.images)); });
}

json load_cases() {
  std::ifstream in(TPP_BENCH_CASES);
  if (!in) throw std::runtime_error(fmt::format("bench_ops: cannot open {}", TPP_BENCH_CASES));
  return json::parse(in)["cases"];
}

// A case runs on every device unless it lists the kinds it runs on ("cpu", "cuda").
bool runs_on(const json& c, Device device) {
  if (!c.contains("devices")) return true;
  const std::string kind = device.is_cuda() ? "cuda" : "cpu";
  for (const json& d : c["devices"])
    if (d.get<std::string>() == kind) return true;
  return false;
}

// Takes `--name value` or `--name=value` out of argv (Google Benchmark
// rejects flags it does not know); nullopt when absent.
std::optional<std::string> take_flag(int& argc, char** argv, std::string_view name) {
  std::optional<std::string> value;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == name && i + 1 < argc) {
      value = argv[++i];
    } else if (arg.size() > name.size() && arg.starts_with(name) && arg[name.size()] == '=') {
      value = std::string(arg.substr(name.size() + 1));
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  argv[argc] = nullptr;
  return value;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const char* env_device = std::getenv("TPP_BENCH_DEVICE");
    const std::string device_text =
        take_flag(argc, argv, "--device").value_or(env_device && *env_device ? env_device : "cpu");
    bench_device = Device::parse(device_text);
    if (const auto math = take_flag(argc, argv, "--math")) set_math_mode(parse_math_mode(*math));
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
  if (bench_device.is_cuda() && bench_device.index >= cuda_device_count()) {
    std::cerr << "bench_ops: " << bench_device.str() << " is not usable ("
              << (cuda_device_count() == 0 ? "no GPU, or a CPU-only build" : "no such GPU") << ")\n";
    return 2;
  }

  for (const json& c : load_cases()) {
    if (!runs_on(c, bench_device)) continue;
    const std::string op = c["op"], name = c["name"];
    benchmark::internal::Benchmark* b = nullptr;
    if (op == "conv2d") b = benchmark::RegisterBenchmark(name.c_str(), bench_conv2d, c);
    if (op == "linear") b = benchmark::RegisterBenchmark(name.c_str(), bench_linear, c);
#ifdef TPP_HAVE_BATCH_NORM
    if (op == "batch_norm2d") b = benchmark::RegisterBenchmark(name.c_str(), bench_batch_norm2d, c);
#endif
    if (op == "train_step") b = benchmark::RegisterBenchmark(name.c_str(), bench_train_step, c);
    if (op == "eval_forward") b = benchmark::RegisterBenchmark(name.c_str(), bench_eval_forward, c);
    if (b) b->Unit(benchmark::kMillisecond)->UseRealTime();
  }
  benchmark::AddCustomContext("openblas_core", openblas_get_corename());
  benchmark::AddCustomContext("device", bench_device.str());
  benchmark::AddCustomContext("math", math_mode() == MathMode::fp32 ? "fp32" : "tf32");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
