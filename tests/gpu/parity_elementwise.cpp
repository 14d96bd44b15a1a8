// CPU-vs-CUDA parity of the element-wise ops, the reductions and the
// Frobenius norm (ops/elementwise.h, ops/reduce.h, ops/norm.h).
#include <cmath>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "ops/elementwise.h"
#include "ops/norm.h"
#include "ops/reduce.h"
#include "tests/gpu/parity.h"

using namespace tpp;
using parity::Inputs;
using parity::ParityCase;
using parity::random_input;

namespace {

// A leaf of |randn| + 0.5: inputs of log, sqrt, pow and divisors.
Tensor positive_input(const Shape& shape, DType dtype = DType::f32) {
  Tensor t;
  {
    const NoGradGuard no_grad;
    t = ops::add(ops::abs(random_input(shape, false, dtype)), 0.5);
  }
  return t.set_requires_grad(true);
}

// A u8 mask of 0s and 1s.
Tensor random_mask(const Shape& shape) {
  return parity::random_labels(numel_of(shape), 2).reshape(shape).to(DType::u8);
}

std::string dtype_tag(DType dtype) { return dtype == DType::f64 ? " f64" : ""; }

using BinaryFn = Tensor (*)(const Tensor&, const Tensor&);

struct NamedBinary {
  const char* name;
  BinaryFn fn;
};

const NamedBinary kBinaries[] = {{"add", ops::add}, {"sub", ops::sub}, {"mul", ops::mul}, {"div", ops::div}};

// The second operand of div is kept away from zero.
Tensor second_operand(const char* name, const Shape& shape, DType dtype) {
  return std::string(name) == "div" ? positive_input(shape, dtype) : random_input(shape, true, dtype);
}

// The CPU sums a broadcast operand's gradient in its own dtype (autograd's
// sum_to_shape), the GPU in double: f32 results differ by a few roundings per
// summed row.
constexpr parity::Tolerance kBroadcastTolerance{.rtol = 2e-5, .atol = 1e-5};
constexpr parity::Tolerance kLargeBroadcastTolerance{.rtol = 1e-4, .atol = 1e-4};

std::vector<ParityCase> binary_cases() {
  struct Shapes {
    const char* label;
    Shape a, b;
  };
  const Shapes shapes[] = {
      {"same shape [4, 5]", {4, 5}, {4, 5}},
      {"odd [1, 7, 33]", {1, 7, 33}, {1, 7, 33}},
      {"broadcast [3, 1, 5] with [4, 5]", {3, 1, 5}, {4, 5}},
      {"broadcast [4, 5] with [3, 1, 5]", {4, 5}, {3, 1, 5}},
      {"broadcast [2, 3, 1] with [1, 1, 6]", {2, 3, 1}, {1, 1, 6}},
      {"[6, 7] with a 0-d tensor", {6, 7}, {}},
      {"a 0-d tensor with [6, 7]", {}, {6, 7}},
      {"[5, 3] with [1]", {5, 3}, {1}},
      {"large [37, 1025] with [1025]", {37, 1025}, {1025}},
      {"empty [0, 5] with [5]", {0, 5}, {5}},
  };
  std::vector<ParityCase> cases;
  for (const NamedBinary& op : kBinaries) {
    for (const Shapes& s : shapes) {
      for (const DType dtype : {DType::f32, DType::f64}) {
        const bool large = std::string(s.label).rfind("large", 0) == 0;
        if (dtype == DType::f64 && large) continue;
        cases.push_back({.name = std::string(op.name) + " " + s.label + dtype_tag(dtype),
                         .make_inputs = [op, s, dtype] {
                           return Inputs{random_input(s.a, true, dtype), second_operand(op.name, s.b, dtype)};
                         },
                         .run = [op](const Inputs& in) { return op.fn(in[0], in[1]); },
                         .tolerance = large ? kLargeBroadcastTolerance : kBroadcastTolerance});
      }
    }
    // Views read in place: a transposed first operand, a transposed and broadcast second.
    cases.push_back({.name = std::string(op.name) + " transposed [5, 4] with [4, 5]",
                     .make_inputs = [op] {
                       return Inputs{random_input({5, 4}), second_operand(op.name, {4, 5}, DType::f32)};
                     },
                     .run = [op](const Inputs& in) { return op.fn(in[0].transpose(0, 1), in[1]); },
                     .tolerance = kBroadcastTolerance});
    cases.push_back({.name = std::string(op.name) + " [3, 4, 6] with a strided slice of [6, 8], transposed",
                     .make_inputs = [op] {
                       return Inputs{random_input({3, 4, 6}), second_operand(op.name, {6, 8}, DType::f32)};
                     },
                     .run = [op](const Inputs& in) { return op.fn(in[0], in[1].slice(1, 0, 8, 2).transpose(0, 1)); },
                     .tolerance = kBroadcastTolerance});
  }
  return cases;
}

struct NamedUnary {
  const char* name;
  Tensor (*fn)(const Tensor&);
  bool positive;  // needs inputs > 0
};

Tensor pow_2(const Tensor& x) { return ops::pow(x, 2); }
Tensor pow_3(const Tensor& x) { return ops::pow(x, 3); }
Tensor pow_half(const Tensor& x) { return ops::pow(x, 0.5); }
Tensor pow_minus_1_5(const Tensor& x) { return ops::pow(x, -1.5); }
Tensor add_scalar(const Tensor& x) { return ops::add(x, 0.75); }
Tensor mul_scalar(const Tensor& x) { return ops::mul(x, -1.25); }
Tensor rsub_scalar(const Tensor& x) { return ops::rsub(2.5, x); }
Tensor rdiv_scalar(const Tensor& x) { return ops::rdiv(1.5, x); }

const NamedUnary kUnaries[] = {
    {"neg", ops::neg, false},          {"exp", ops::exp, false},           {"log", ops::log, true},
    {"sqrt", ops::sqrt, true},         {"abs", ops::abs, false},           {"relu", ops::relu, false},
    {"add scalar", add_scalar, false}, {"mul scalar", mul_scalar, false},  {"pow 2", pow_2, false},
    {"pow 3", pow_3, false},           {"pow 0.5", pow_half, true},        {"pow -1.5", pow_minus_1_5, true},
    {"rsub scalar", rsub_scalar, false}, {"rdiv scalar", rdiv_scalar, true},
};

std::vector<ParityCase> unary_cases() {
  std::vector<ParityCase> cases;
  for (const NamedUnary& op : kUnaries) {
    const auto input = [op](const Shape& shape, DType dtype) {
      return op.positive ? positive_input(shape, dtype) : random_input(shape, true, dtype);
    };
    for (const Shape& shape : {Shape{4, 5}, Shape{1, 7, 3}, Shape{}, Shape{3, 1000}}) {
      cases.push_back({.name = std::string(op.name) + " " + shape_str(shape),
                       .make_inputs = [input, shape] { return Inputs{input(shape, DType::f32)}; },
                       .run = [op](const Inputs& in) { return op.fn(in[0]); }});
    }
    cases.push_back({.name = std::string(op.name) + " [5, 6] f64",
                     .make_inputs = [input] { return Inputs{input({5, 6}, DType::f64)}; },
                     .run = [op](const Inputs& in) { return op.fn(in[0]); }});
    cases.push_back({.name = std::string(op.name) + " transposed [6, 9]",
                     .make_inputs = [input] { return Inputs{input({6, 9}, DType::f32)}; },
                     .run = [op](const Inputs& in) { return op.fn(in[0].transpose(0, 1)); }});
  }
  return cases;
}

std::vector<ParityCase> mask_cases() {
  return {
      {.name = "mask_mul u8 mask [4, 6]",
       .make_inputs = [] { return Inputs{random_input({4, 6}), random_mask({4, 6})}; },
       .run = [](const Inputs& in) { return ops::mask_mul(in[0], in[1]); }},
      {.name = "mask_mul u8 mask [8, 1, 1, 1] on [8, 3, 3, 3]",
       .make_inputs = [] { return Inputs{random_input({8, 3, 3, 3}), random_mask({8, 1, 1, 1})}; },
       .run = [](const Inputs& in) { return ops::mask_mul(in[0], in[1]); }},
      {.name = "mask_mul f32 mask [7] on transposed [7, 5]",
       .make_inputs = [] { return Inputs{random_input({7, 5}), random_mask({7}).to(DType::f32)}; },
       .run = [](const Inputs& in) { return ops::mask_mul(in[0].transpose(0, 1), in[1]); }},
      {.name = "mask_mul f64 with a u8 mask [3, 9]",
       .make_inputs = [] { return Inputs{random_input({3, 9}, true, DType::f64), random_mask({3, 9})}; },
       .run = [](const Inputs& in) { return ops::mask_mul(in[0], in[1]); }},
  };
}

std::vector<ParityCase> sum_mean_cases() {
  struct Reduction {
    const char* label;
    Shape shape;
    std::vector<int64_t> dims;  // empty: over everything
    bool keepdim;
    bool transposed;  // reduce a transposed view of the input
  };
  const Reduction reductions[] = {
      {"all [3, 4, 5]", {3, 4, 5}, {}, false, false},
      {"all [1]", {1}, {}, false, false},
      {"all 0-d", {}, {}, false, false},
      {"all large [64, 3001]", {64, 3001}, {}, false, false},
      {"dim 1 [3, 4, 5]", {3, 4, 5}, {1}, false, false},
      {"dim 1 keepdim [3, 4, 5]", {3, 4, 5}, {1}, true, false},
      {"dims 0, 2 [3, 4, 5]", {3, 4, 5}, {0, 2}, false, false},
      {"dims 0, 2 keepdim [3, 4, 5]", {3, 4, 5}, {0, 2}, true, false},
      {"dim -1 [2, 3001]", {2, 3001}, {-1}, false, false},
      {"dim 0 [1000, 7]", {1000, 7}, {0}, false, false},
      {"dims 0, 1 of [2, 3, 1, 4]", {2, 3, 1, 4}, {0, 1}, false, false},
      {"dim 0 of transposed [6, 5]", {6, 5}, {0}, false, true},
      {"all of transposed [6, 5]", {6, 5}, {}, true, true},
      {"dims 0, 1 keepdim [1, 1, 7]", {1, 1, 7}, {0, 1}, true, false},
      {"dim 0 of empty [0, 3]", {0, 3}, {0}, false, false},
      {"all of empty [2, 0]", {2, 0}, {}, false, false},
  };
  std::vector<ParityCase> cases;
  for (const bool average : {false, true}) {
    for (const Reduction& r : reductions) {
      for (const DType dtype : {DType::f32, DType::f64}) {
        if (dtype == DType::f64 && r.shape.size() != 3) continue;
        cases.push_back({.name = std::string(average ? "mean " : "sum ") + r.label + dtype_tag(dtype),
                         .make_inputs = [r, dtype] { return Inputs{random_input(r.shape, true, dtype)}; },
                         .run = [r, average](const Inputs& in) {
                           const Tensor x = r.transposed ? in[0].transpose(0, 1) : in[0];
                           if (r.dims.empty() && !r.keepdim) return average ? ops::mean(x) : ops::sum(x);
                           return average ? ops::mean(x, r.dims, r.keepdim) : ops::sum(x, r.dims, r.keepdim);
                         },
                         .tolerance = {.rtol = 1e-5, .atol = 1e-5}});
      }
    }
  }
  return cases;
}

// Ties on purpose: the maximum 3 appears three times, and again per row.
Tensor tied_input(DType dtype) {
  Tensor t = from_vector<double>({3, 1, 3, -2, 0.5, 3, 1, 1, -4, 2, 2, 0}, {3, 4}).to(dtype);
  return t.set_requires_grad(true);
}

// NaNs at [0, 1], [0, 3] and [2, 0]; no column is all NaN.
Tensor nan_input() {
  const double nan = std::nan("");
  Tensor t = from_vector<double>({1, nan, 5, nan, 2, 3, 2, 0.5, nan, 7, 7, 1}, {3, 4}).to(DType::f32);
  return t.set_requires_grad(true);
}

std::vector<ParityCase> max_cases() {
  std::vector<ParityCase> cases;
  for (const DType dtype : {DType::f32, DType::f64}) {
    cases.push_back({.name = "max all [3, 4, 5]" + dtype_tag(dtype),
                     .make_inputs = [dtype] { return Inputs{random_input({3, 4, 5}, true, dtype)}; },
                     .run = [](const Inputs& in) { return ops::max(in[0]); }});
    cases.push_back({.name = "max all with ties [3, 4]" + dtype_tag(dtype),
                     .make_inputs = [dtype] { return Inputs{tied_input(dtype)}; },
                     .run = [](const Inputs& in) { return ops::max(in[0]); }});
  }
  cases.push_back({.name = "max all large [1000, 37]",
                   .make_inputs = [] { return Inputs{random_input({1000, 37})}; },
                   .run = [](const Inputs& in) { return ops::max(in[0]); }});
  cases.push_back({.name = "max all 0-d",
                   .make_inputs = [] { return Inputs{random_input({})}; },
                   .run = [](const Inputs& in) { return ops::max(in[0]); }});
  cases.push_back({.name = "max all of transposed [7, 5]",
                   .make_inputs = [] { return Inputs{random_input({7, 5})}; },
                   .run = [](const Inputs& in) { return ops::max(in[0].transpose(0, 1)); }});

  struct DimCase {
    const char* label;
    Shape shape;
    int64_t dim;
    bool keepdim;
  };
  const DimCase dims[] = {
      {"dim 0 [5, 7]", {5, 7}, 0, false},          {"dim 1 [5, 7]", {5, 7}, 1, false},
      {"dim -1 keepdim [3, 4, 5]", {3, 4, 5}, -1, true}, {"dim 1 keepdim [3, 4, 5]", {3, 4, 5}, 1, true},
      {"dim 1 [64, 1000]", {64, 1000}, 1, false},  {"dim 0 [1000, 3]", {1000, 3}, 0, false},
      {"dim 0 [1, 9]", {1, 9}, 0, false},          {"dim 1 [9, 1]", {9, 1}, 1, false},
  };
  for (const DimCase& d : dims) {
    for (const DType dtype : {DType::f32, DType::f64}) {
      cases.push_back({.name = std::string("max values ") + d.label + dtype_tag(dtype),
                       .make_inputs = [d, dtype] { return Inputs{random_input(d.shape, true, dtype)}; },
                       .run = [d](const Inputs& in) { return ops::max(in[0], d.dim, d.keepdim).values; }});
    }
    cases.push_back({.name = std::string("max indices ") + d.label,
                     .make_inputs = [d] { return Inputs{random_input(d.shape, false)}; },
                     .run = [d](const Inputs& in) { return ops::max(in[0], d.dim, d.keepdim).indices; },
                     .differentiable = false});
  }
  for (const int64_t dim : {0, 1}) {
    const std::string label = " with ties [3, 4] dim " + std::to_string(dim);
    cases.push_back({.name = "max values" + label,
                     .make_inputs = [] { return Inputs{tied_input(DType::f32)}; },
                     .run = [dim](const Inputs& in) { return ops::max(in[0], dim).values; }});
    cases.push_back({.name = "max indices" + label,
                     .make_inputs = [] { return Inputs{tied_input(DType::f32).detach()}; },
                     .run = [dim](const Inputs& in) { return ops::max(in[0], dim).indices; },
                     .differentiable = false});
  }
  // Ties down a column (the one-thread-per-output kernel): the transposed rows of tied_input.
  cases.push_back({.name = "max values with ties, dim 0 of transposed [4, 3]",
                   .make_inputs = [] { return Inputs{tied_input(DType::f32)}; },
                   .run = [](const Inputs& in) { return ops::max(in[0].transpose(0, 1), 0).values; }});
  cases.push_back({.name = "max indices with ties, dim 0 of transposed [4, 3]",
                   .make_inputs = [] { return Inputs{tied_input(DType::f32).detach()}; },
                   .run = [](const Inputs& in) { return ops::max(in[0].transpose(0, 1), 0).indices; },
                   .differentiable = false});
  // Rows longer than a warp, all equal: ties inside each lane's strided walk and across lanes.
  cases.push_back({.name = "max values of constant rows [3, 70] dim 1",
                   .make_inputs = [] { return Inputs{full({3, 70}, 1.5).set_requires_grad(true)}; },
                   .run = [](const Inputs& in) { return ops::max(in[0], 1).values; }});
  cases.push_back({.name = "max indices of constant rows [3, 70] dim 1",
                   .make_inputs = [] { return Inputs{full({3, 70}, 1.5)}; },
                   .run = [](const Inputs& in) { return ops::max(in[0], 1).indices; },
                   .differentiable = false});
  // NaN wins, the first NaN of a row giving the index; max over all shares dy among the NaNs.
  for (const int64_t dim : {0, 1}) {
    cases.push_back({.name = "max values with NaNs [3, 4] dim " + std::to_string(dim),
                     .make_inputs = [] { return Inputs{nan_input()}; },
                     .run = [dim](const Inputs& in) { return ops::max(in[0], dim).values; }});
    cases.push_back({.name = "max indices with NaNs [3, 4] dim " + std::to_string(dim),
                     .make_inputs = [] { return Inputs{nan_input().detach()}; },
                     .run = [dim](const Inputs& in) { return ops::max(in[0], dim).indices; },
                     .differentiable = false});
  }
  cases.push_back({.name = "max all with NaNs [3, 4]",
                   .make_inputs = [] { return Inputs{nan_input()}; },
                   .run = [](const Inputs& in) { return ops::max(in[0]); }});
  cases.push_back({.name = "max values of transposed [6, 40] dim 1",
                   .make_inputs = [] { return Inputs{random_input({40, 6})}; },
                   .run = [](const Inputs& in) { return ops::max(in[0].transpose(0, 1), 1).values; }});
  return cases;
}

std::vector<ParityCase> norm_cases() {
  std::vector<ParityCase> cases;
  for (const DType dtype : {DType::f32, DType::f64}) {
    cases.push_back({.name = "frobenius_norm [3, 4, 5]" + dtype_tag(dtype),
                     .make_inputs = [dtype] { return Inputs{random_input({3, 4, 5}, true, dtype)}; },
                     .run = [](const Inputs& in) { return ops::frobenius_norm(in[0]); }});
  }
  cases.push_back({.name = "frobenius_norm large [1000, 300]",
                   .make_inputs = [] { return Inputs{random_input({1000, 300})}; },
                   .run = [](const Inputs& in) { return ops::frobenius_norm(in[0]); }});
  cases.push_back({.name = "frobenius_norm 0-d",
                   .make_inputs = [] { return Inputs{random_input({})}; },
                   .run = [](const Inputs& in) { return ops::frobenius_norm(in[0]); }});
  cases.push_back({.name = "frobenius_norm of transposed [9, 4]",
                   .make_inputs = [] { return Inputs{random_input({9, 4})}; },
                   .run = [](const Inputs& in) { return ops::frobenius_norm(in[0].transpose(0, 1)); }});
  cases.push_back({.name = "frobenius_norm of zeros [4, 4] (gradient 0)",
                   .make_inputs = [] { return Inputs{zeros({4, 4}).set_requires_grad(true)}; },
                   .run = [](const Inputs& in) { return ops::frobenius_norm(in[0]); }});
  return cases;
}

std::vector<ParityCase> all_cases() {
  std::vector<ParityCase> cases;
  for (auto* family : {binary_cases, unary_cases, mask_cases, sum_mean_cases, max_cases, norm_cases})
    for (ParityCase& c : family()) cases.push_back(std::move(c));
  return cases;
}

const parity::RegisterParity elementwise_cases(all_cases());

}  // namespace
