#include "tests/gpu/parity.h"

#include <fmt/format.h>

#include <cmath>

#include "engine/autograd.h"
#include "engine/math_mode.h"
#include "engine/philox.h"

namespace tpp::parity {

namespace {
Generator& parity_generator() {
  static Generator gen(20261121);
  return gen;
}

}  // namespace

std::vector<ParityCase>& registry() {
  static std::vector<ParityCase> cases;
  return cases;
}

RegisterParity::RegisterParity(std::vector<ParityCase> cases) {
  for (ParityCase& c : cases) registry().push_back(std::move(c));
}

Inputs inputs_on(const Inputs& inputs, Device device) {
  Inputs moved;
  for (const Tensor& t : inputs) {
    Tensor copy = t.defined() ? t.detach().to(device) : Tensor();
    if (t.defined() && t.requires_grad()) copy.set_requires_grad(true);
    moved.push_back(copy);
  }
  return moved;
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
  const Inputs gpu_inputs = inputs_on(cpu_inputs, Device::cuda(0));

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

std::vector<std::string> check_case_in_every_mode(const ParityCase& c) {
  std::vector<std::string> failures;
  {
    const MathModeOverride fp32(MathMode::fp32);
    failures = check_case(c, c.tolerance);
  }
  if (c.uses_tensor_cores) {
    const MathModeOverride tf32(MathMode::tf32);
    for (const std::string& f : check_case(c, c.tf32_tolerance)) failures.push_back("TF32: " + f);
  }
  return failures;
}

}  // namespace tpp::parity
