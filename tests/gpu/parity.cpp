#include "tests/gpu/parity.h"

#include <fmt/format.h>

#include <cmath>

#include "engine/autograd.h"
#include "engine/math_mode.h"
#include "engine/rng.h"

namespace tpp::parity {

namespace {
Generator& parity_generator() {
  static Generator gen(20261121);
  return gen;
}

// The CUDA copy of a case's input: same values, a leaf that requires grad iff the CPU one does.
Tensor to_gpu_leaf(const Tensor& cpu) {
  Tensor gpu = cpu.detach().to(Device::cuda(0));
  if (cpu.requires_grad()) gpu.set_requires_grad(true);
  return gpu;
}
}  // namespace

std::vector<ParityCase>& registry() {
  static std::vector<ParityCase> cases;
  return cases;
}

RegisterParity::RegisterParity(std::vector<ParityCase> cases) {
  for (ParityCase& c : cases) registry().push_back(std::move(c));
}

Tensor random_input(const Shape& shape, bool requires_grad, DType dtype) {
  Tensor t = randn(shape, {.dtype = dtype}, &parity_generator());
  if (requires_grad) t.set_requires_grad(true);
  return t;
}

Tensor random_labels(int64_t n, int64_t classes) { return randint({n}, 0, classes, &parity_generator()); }

std::string compare(const std::string& what, const Tensor& cpu, const Tensor& cuda, const Tolerance& tol) {
  if (!cpu.defined() || !cuda.defined())
    return cpu.defined() == cuda.defined() ? "" : fmt::format("{}: defined on one device only", what);
  if (cpu.sizes() != cuda.sizes() || cpu.dtype() != cuda.dtype())
    return fmt::format("{}: CPU gives {} {} but CUDA {} {}", what, dtype_name(cpu.dtype()), shape_str(cpu.sizes()),
                       dtype_name(cuda.dtype()), shape_str(cuda.sizes()));
  const std::vector<double> a = cpu.to(DType::f64).to_vector<double>();
  const std::vector<double> b = cuda.to(Device::cpu()).to(DType::f64).to_vector<double>();
  double worst_excess = 0;
  size_t worst = a.size();
  for (size_t i = 0; i < a.size(); ++i) {
    const bool both_nan = std::isnan(a[i]) && std::isnan(b[i]);
    const double excess = both_nan ? 0 : std::abs(a[i] - b[i]) - (tol.atol + tol.rtol * std::abs(a[i]));
    if (std::isnan(excess) || excess > worst_excess) {
      worst_excess = std::isnan(excess) ? INFINITY : excess;
      worst = i;
    }
  }
  if (worst == a.size()) return "";
  return fmt::format("{}: element {} of {} is {} on CPU but {} on CUDA (rtol {}, atol {})", what, worst,
                     shape_str(cpu.sizes()), a[worst], b[worst], tol.rtol, tol.atol);
}

std::vector<std::string> check_case(const ParityCase& c, const Tolerance& tol) {
  std::vector<std::string> failures;
  auto note = [&](std::string failure) {
    if (!failure.empty()) failures.push_back(c.name + ": " + failure);
  };
  const Inputs cpu_inputs = c.make_inputs();
  Inputs gpu_inputs;
  for (const Tensor& t : cpu_inputs) gpu_inputs.push_back(t.defined() ? to_gpu_leaf(t) : Tensor());

  const Tensor cpu_out = c.run(cpu_inputs);
  const Tensor gpu_out = c.run(gpu_inputs);
  if (gpu_out.defined() && !gpu_out.device().is_cuda()) note("output is on " + gpu_out.device().str());
  note(compare("output", cpu_out, gpu_out, tol));
  if (!c.differentiable || !cpu_out.requires_grad() || !failures.empty()) return failures;

  const Tensor upstream = random_input(cpu_out.sizes(), false, cpu_out.dtype());
  cpu_out.backward(upstream);
  gpu_out.backward(upstream.to(Device::cuda(0)));
  for (size_t i = 0; i < cpu_inputs.size(); ++i)
    if (cpu_inputs[i].defined() && cpu_inputs[i].requires_grad())
      note(compare(fmt::format("gradient of input {}", i), cpu_inputs[i].grad(), gpu_inputs[i].grad(), tol));
  return failures;
}

}  // namespace tpp::parity
