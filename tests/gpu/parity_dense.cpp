// Parity cases of the dense ops: conv2d (cuDNN), matmul and linear (cuBLAS).
// Every f32 case is checked in full fp32 and under TF32; f64 cases check the
// double paths tightly.
#include <algorithm>
#include <cmath>
#include <functional>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "ops/conv2d.h"
#include "ops/matmul.h"
#include "tests/gpu/parity.h"

using namespace tpp;
using parity::Inputs;
using parity::ParityCase;
using parity::random_input;
using parity::RegisterParity;
using parity::Tolerance;

namespace {

// Full fp32 GEMMs differ from the CPU's only in summation order.
constexpr Tolerance kMatmulF32{.rtol = 1e-4, .atol = 1e-5};
// cuDNN may pick a Winograd or FFT algorithm, whose f32 rounding grows with
// the magnitude of the whole sum, not of each element.
constexpr Tolerance kConvF32{.rtol = 1e-4, .atol = 1e-4};
constexpr Tolerance kF64{.rtol = 1e-9, .atol = 1e-9};

double longest(std::initializer_list<int64_t> reduction_lengths) {
  return static_cast<double>(std::max(reduction_lengths));
}

// A sum of n unit-size f32 terms rounds at the size of its partial sums
// (~sqrt(i) after i terms): ~2.5e-8 n rms in all, which even a result near 0
// carries. About 8 standard deviations, never below the op's own atol.
Tolerance fp32_for(Tolerance base, std::initializer_list<int64_t> reduction_lengths) {
  return {.rtol = base.rtol, .atol = std::max(base.atol, 2e-7 * longest(reduction_lengths))};
}

// TF32 rounds both factors of each product to 10 mantissa bits (~4e-4 rms
// relative error per product of unit-size inputs); over a sum of n products
// the error grows like sqrt(n). About 7 standard deviations.
Tolerance tf32_for(std::initializer_list<int64_t> reduction_lengths) {
  return {.rtol = 1e-2, .atol = 3e-3 * std::sqrt(longest(reduction_lengths))};
}

// ---- conv2d ----

struct ConvSpec {
  std::string name;
  Shape x, w;
  ops::Conv2dOptions opts{};
  bool bias = false;
  DType dtype = DType::f32;
  bool input_grad = true, weight_grad = true;
};

int64_t conv_out(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dilation) {
  return (in + 2 * pad - dilation * (k - 1) - 1) / stride + 1;
}

ParityCase conv_case(const ConvSpec& s) {
  const int64_t out_h = conv_out(s.x[2], s.w[2], s.opts.stride[0], s.opts.padding[0], s.opts.dilation[0]);
  const int64_t out_w = conv_out(s.x[3], s.w[3], s.opts.stride[1], s.opts.padding[1], s.opts.dilation[1]);
  const int64_t taps = s.w[2] * s.w[3];
  // Sums behind the output, the input gradient and the weight gradient.
  const std::initializer_list<int64_t> sums = {s.w[1] * taps, s.w[0] / s.opts.groups * taps, s.x[0] * out_h * out_w};
  const bool f64 = s.dtype == DType::f64;
  return {.name = s.name,
          .make_inputs =
              [s] {
                return Inputs{random_input(s.x, s.input_grad, s.dtype), random_input(s.w, s.weight_grad, s.dtype),
                              s.bias ? random_input({s.w[0]}, true, s.dtype) : Tensor()};
              },
          .run = [opts = s.opts](const Inputs& in) { return ops::conv2d(in[0], in[1], in[2], opts); },
          .tolerance = f64 ? kF64 : fp32_for(kConvF32, sums),
          .uses_tensor_cores = !f64,
          .tf32_tolerance = tf32_for(sums)};
}

std::vector<ParityCase> conv_cases() {
  const std::vector<ConvSpec> specs = {
      {.name = "conv2d 1x1 [2, 8, 7, 9] -> 6 with bias", .x = {2, 8, 7, 9}, .w = {6, 8, 1, 1}, .bias = true},
      {.name = "conv2d 1x1 stride 2 [2, 5, 7, 9] -> 3",
       .x = {2, 5, 7, 9},
       .w = {3, 5, 1, 1},
       .opts = {.stride = {2, 2}}},
      {.name = "conv2d 3x3 pad 1 [2, 3, 9, 7] -> 4", .x = {2, 3, 9, 7}, .w = {4, 3, 3, 3}, .opts = {.padding = {1, 1}}},
      {.name = "conv2d 3x3 pad 1 [2, 3, 9, 7] -> 4 with bias",
       .x = {2, 3, 9, 7},
       .w = {4, 3, 3, 3},
       .opts = {.padding = {1, 1}},
       .bias = true},
      {.name = "conv2d 3x3 stride 2 pad 1 [2, 4, 9, 7] -> 5 with bias",
       .x = {2, 4, 9, 7},
       .w = {5, 4, 3, 3},
       .opts = {.stride = {2, 2}, .padding = {1, 1}},
       .bias = true},
      {.name = "conv2d 3x3 dilation 2 pad 2 batch 1 [1, 3, 11, 9] -> 4",
       .x = {1, 3, 11, 9},
       .w = {4, 3, 3, 3},
       .opts = {.padding = {2, 2}, .dilation = {2, 2}}},
      {.name = "conv2d 3x3 groups 2 pad 1 [2, 4, 7, 9] -> 6 with bias",
       .x = {2, 4, 7, 9},
       .w = {6, 2, 3, 3},
       .opts = {.padding = {1, 1}, .groups = 2},
       .bias = true},
      {.name = "conv2d depthwise 3x3 stride 2 pad 1 [3, 4, 8, 8] -> 4",
       .x = {3, 4, 8, 8},
       .w = {4, 1, 3, 3},
       .opts = {.stride = {2, 2}, .padding = {1, 1}, .groups = 4}},
      {.name = "conv2d 5x3 stride [2, 1] padding [2, 0] [2, 3, 10, 7] -> 4 with bias",
       .x = {2, 3, 10, 7},
       .w = {4, 3, 5, 3},
       .opts = {.stride = {2, 1}, .padding = {2, 0}},
       .bias = true},
      {.name = "conv2d 3x3 no padding batch 1 [1, 16, 12, 12] -> 32 with bias",
       .x = {1, 16, 12, 12},
       .w = {32, 16, 3, 3},
       .bias = true},
      {.name = "conv2d 3x3 pad 1 [8, 16, 16, 16] -> 16 with bias",
       .x = {8, 16, 16, 16},
       .w = {16, 16, 3, 3},
       .opts = {.padding = {1, 1}},
       .bias = true},
      {.name = "conv2d 3x3 pad 1 frozen weight [2, 3, 7, 9] -> 4 with bias",
       .x = {2, 3, 7, 9},
       .w = {4, 3, 3, 3},
       .opts = {.padding = {1, 1}},
       .bias = true,
       .weight_grad = false},
      {.name = "conv2d 3x3 pad 1 input without grad [2, 3, 7, 9] -> 4 with bias",
       .x = {2, 3, 7, 9},
       .w = {4, 3, 3, 3},
       .opts = {.padding = {1, 1}},
       .bias = true,
       .input_grad = false},
      {.name = "conv2d f64 3x3 stride 2 pad 1 groups 2 [2, 4, 7, 9] -> 6 with bias",
       .x = {2, 4, 7, 9},
       .w = {6, 2, 3, 3},
       .opts = {.stride = {2, 2}, .padding = {1, 1}, .groups = 2},
       .bias = true,
       .dtype = DType::f64},
      {.name = "conv2d f64 1x1 batch 1 [1, 3, 5, 7] -> 2", .x = {1, 3, 5, 7}, .w = {2, 3, 1, 1}, .dtype = DType::f64},
      {.name = "conv2d f64 3x3 dilation 2 pad 1 [2, 2, 9, 7] -> 3 with bias",
       .x = {2, 2, 9, 7},
       .w = {3, 2, 3, 3},
       .opts = {.padding = {1, 1}, .dilation = {2, 2}},
       .bias = true,
       .dtype = DType::f64},
  };
  std::vector<ParityCase> cases;
  for (const ConvSpec& s : specs) cases.push_back(conv_case(s));
  return cases;
}

// ---- matmul ----

// `run` builds the product from the inputs (views included); m, k, n are the
// sizes of the product it computes, for the TF32 tolerance.
ParityCase matmul_case(std::string name, Shape a, Shape b, int64_t m, int64_t k, int64_t n,
                       std::function<Tensor(const Inputs&)> run, DType dtype = DType::f32, bool b_grad = true) {
  const bool f64 = dtype == DType::f64;
  return {.name = std::move(name),
          .make_inputs = [=] { return Inputs{random_input(a, true, dtype), random_input(b, b_grad, dtype)}; },
          .run = std::move(run),
          .tolerance = f64 ? kF64 : fp32_for(kMatmulF32, {k, n, m}),
          .uses_tensor_cores = !f64,
          .tf32_tolerance = tf32_for({k, n, m})};
}

Tensor plain_matmul(const Inputs& in) { return ops::matmul(in[0], in[1]); }

std::vector<ParityCase> matmul_cases() {
  const auto left_t = [](const Inputs& in) { return ops::matmul(in[0].transpose(0, 1), in[1]); };
  const auto right_t = [](const Inputs& in) { return ops::matmul(in[0], in[1].transpose(0, 1)); };
  const auto both_t = [](const Inputs& in) { return ops::matmul(in[0].transpose(0, 1), in[1].transpose(0, 1)); };
  const auto column_slice = [](const Inputs& in) { return ops::matmul(in[0].slice(1, 0, 5), in[1]); };
  return {
      matmul_case("matmul [7, 5] x [5, 9]", {7, 5}, {5, 9}, 7, 5, 9, plain_matmul),
      matmul_case("matmul one row [1, 5] x [5, 9]", {1, 5}, {5, 9}, 1, 5, 9, plain_matmul),
      matmul_case("matmul [64, 96] x [96, 48]", {64, 96}, {96, 48}, 64, 96, 48, plain_matmul),
      matmul_case("matmul 1-d left [5] x [5, 9]", {5}, {5, 9}, 1, 5, 9, plain_matmul),
      matmul_case("matmul 1-d right [7, 5] x [5]", {7, 5}, {5}, 7, 5, 1, plain_matmul),
      matmul_case("matmul dot [33] . [33]", {33}, {33}, 1, 33, 1, plain_matmul),
      matmul_case("matmul transposed left [5, 7]^T x [5, 9]", {5, 7}, {5, 9}, 7, 5, 9, left_t),
      matmul_case("matmul transposed right [7, 5] x [9, 5]^T", {7, 5}, {9, 5}, 7, 5, 9, right_t),
      matmul_case("matmul both transposed [5, 7]^T x [9, 5]^T", {5, 7}, {9, 5}, 7, 5, 9, both_t),
      matmul_case("matmul column slice [7, 8][:, :5] x [5, 9]", {7, 8}, {5, 9}, 7, 5, 9, column_slice),
      matmul_case("matmul right operand without grad [7, 5] x [5, 9]", {7, 5}, {5, 9}, 7, 5, 9, plain_matmul,
                  DType::f32, false),
      matmul_case("matmul f64 [7, 5] x [5, 9]", {7, 5}, {5, 9}, 7, 5, 9, plain_matmul, DType::f64),
      matmul_case("matmul f64 transposed left [5, 7]^T x [5, 9]", {5, 7}, {5, 9}, 7, 5, 9, left_t, DType::f64),
      matmul_case("matmul f64 dot [33] . [33]", {33}, {33}, 1, 33, 1, plain_matmul, DType::f64),
      // An empty inner dim: the product is all zeros (BLAS's beta path, not a GEMM call).
      matmul_case("matmul empty inner dim [3, 0] x [0, 4]", {3, 0}, {0, 4}, 3, 0, 4, plain_matmul),
  };
}

// ---- linear ----

ParityCase linear_case(std::string name, Shape x, int64_t out, bool bias, DType dtype = DType::f32,
                       bool weight_grad = true) {
  const int64_t in = x.back();
  int64_t rows = 1;
  for (size_t d = 0; d + 1 < x.size(); ++d) rows *= x[d];
  const bool f64 = dtype == DType::f64;
  return {.name = std::move(name),
          .make_inputs =
              [=] {
                return Inputs{random_input(x, true, dtype), random_input({out, in}, weight_grad, dtype),
                              bias ? random_input({out}, true, dtype) : Tensor()};
              },
          .run = [](const Inputs& in) { return ops::linear(in[0], in[1], in[2]); },
          .tolerance = f64 ? kF64 : fp32_for(kMatmulF32, {in, out, rows}),
          .uses_tensor_cores = !f64,
          .tf32_tolerance = tf32_for({in, out, rows})};
}

std::vector<ParityCase> linear_cases() {
  return {
      linear_case("linear [4, 10] -> 6 with bias", {4, 10}, 6, true),
      linear_case("linear [4, 10] -> 6 without bias", {4, 10}, 6, false),
      linear_case("linear 3-d [2, 3, 10] -> 6 with bias", {2, 3, 10}, 6, true),
      linear_case("linear 1-d [10] -> 6 with bias", {10}, 6, true),
      linear_case("linear batch 1 [1, 70] -> 40 with bias", {1, 70}, 40, true),
      linear_case("linear [33, 70] -> 40 with bias", {33, 70}, 40, true),
      linear_case("linear [300, 20] -> 10 with bias", {300, 20}, 10, true),
      linear_case("linear frozen weight [4, 10] -> 6 with bias", {4, 10}, 6, true, DType::f32, false),
      linear_case("linear f64 3-d [2, 3, 10] -> 6 with bias", {2, 3, 10}, 6, true, DType::f64),
      linear_case("linear f64 [5, 7] -> 3 without bias", {5, 7}, 3, false, DType::f64),
      // No rows: the weight and bias gradients are sums over nothing, zeros.
      linear_case("linear empty batch [0, 10] -> 6 with bias", {0, 10}, 6, true),
  };
}

std::vector<ParityCase> dense_cases() {
  std::vector<ParityCase> cases = conv_cases();
  for (std::vector<ParityCase> more : {matmul_cases(), linear_cases()})
    for (ParityCase& c : more) cases.push_back(std::move(c));
  return cases;
}

const RegisterParity dense_parity(dense_cases());

}  // namespace
