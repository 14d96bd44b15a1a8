// The CPU-vs-CUDA parity harness. Each op family registers cases in its own
// tests/gpu/parity_<family>.cpp:
//
//   static const RegisterParity conv_cases({
//       {.name = "conv2d 3x3 pad 1 [2, 3, 9, 7]",
//        .make_inputs = [] { return Inputs{random_input({2, 3, 9, 7}), random_input({4, 3, 3, 3})}; },
//        .run = [](const Inputs& in) { return ops::conv2d(in[0], in[1], {}, {.padding = {1, 1}}); },
//        .tolerance = {.rtol = 1e-4, .atol = 1e-5},
//        .uses_tensor_cores = true},
//   });
//
// A case makes fresh CPU inputs (those that require grad get their gradients
// compared), runs the op on them and on CUDA copies, backpropagates the same
// random upstream gradient through both, and compares the output and every
// input gradient elementwise: |cuda - cpu| <= atol + rtol * |cpu|. Cases that
// use tensor cores run once with MathMode::fp32 at `tolerance` and once with
// TF32 at `tf32_tolerance`. tests/gpu/test_op_parity.cpp runs every case;
// `tpp_parity --perf` (tests/gpu/parity_main.cpp) times each on both devices.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace tpp::parity {

using Inputs = std::vector<Tensor>;

struct Tolerance {
  double rtol = 1e-5;
  double atol = 1e-6;
};

struct ParityCase {
  std::string name;
  std::function<Inputs()> make_inputs;              // on the CPU
  std::function<Tensor(const Inputs&)> run;         // the op under test
  Tolerance tolerance{};                            // full fp32 (or f64)
  bool uses_tensor_cores = false;                   // conv / matmul: also checked under TF32
  Tolerance tf32_tolerance{.rtol = 5e-3, .atol = 5e-3};
  bool differentiable = true;                       // false: the output alone is compared
};

// Every registered case, in registration order.
std::vector<ParityCase>& registry();

struct RegisterParity {
  explicit RegisterParity(std::vector<ParityCase> cases);
};

// A fresh random f32 CPU tensor (normal), different for each call; grad on
// unless told otherwise.
Tensor random_input(const Shape& shape, bool requires_grad = true, DType dtype = DType::f32);
// A random i64 CPU tensor of labels in [0, classes).
Tensor random_labels(int64_t n, int64_t classes);

// Copies of a case's inputs on `device`: the same values, each a leaf that
// requires grad iff the original does (undefined inputs stay undefined).
Inputs inputs_on(const Inputs& inputs, Device device);

// What one comparison found: empty when within tolerance, else one line
// naming the case, the tensor and the worst element.
std::string compare(const std::string& what, const Tensor& cpu, const Tensor& cuda, const Tolerance& tol);

// Runs one case on both devices; returns the failures (empty when it passes).
std::vector<std::string> check_case(const ParityCase& c, const Tolerance& tol);
// check_case in full fp32 at c.tolerance and, for tensor-core cases, again
// under TF32 at c.tf32_tolerance (those failures start with "TF32: ").
std::vector<std::string> check_case_in_every_mode(const ParityCase& c);

}  // namespace tpp::parity
