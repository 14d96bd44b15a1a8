// Parity cases of the network ops: batch norm, pooling, padding, softmax and
// cross-entropy (CPU vs CUDA, output and every input gradient). Running
// statistics after a training step: tests/gpu/test_batch_norm_cuda.cpp.
#include <fmt/format.h>

#include "ops/batch_norm.h"
#include "ops/elementwise.h"
#include "ops/loss.h"
#include "ops/pad.h"
#include "ops/pool.h"
#include "ops/softmax.h"
#include "tests/gpu/parity.h"

using namespace tpp;
using parity::Inputs;
using parity::ParityCase;
using parity::random_input;
using parity::random_labels;
using parity::RegisterParity;
using parity::Tolerance;

namespace {

constexpr Tolerance kF32{.rtol = 1e-4, .atol = 1e-5};
constexpr Tolerance kF64{.rtol = 1e-9, .atol = 1e-11};
// Batch norm's dx subtracts two per-channel terms from a * dy: absolute error.
constexpr Tolerance kBatchNormF32{.rtol = 1e-4, .atol = 1e-4};

Tolerance for_dtype(DType dtype) { return dtype == DType::f64 ? kF64 : kF32; }

std::string dtype_tag(DType dtype) { return dtype == DType::f64 ? " f64" : ""; }

// ---- batch norm ----

// x [N, C, H, W], weight and bias [C] (undefined without affine).
Inputs batch_norm_inputs(const Shape& x_shape, bool affine, DType dtype) {
  const int64_t c = x_shape[1];
  return {random_input(x_shape, true, dtype), affine ? random_input({c}, true, dtype) : Tensor(),
          affine ? random_input({c}, true, dtype) : Tensor()};
}

// Training with fresh running statistics on the inputs' device (updated in
// place; compared in tests/gpu/test_batch_norm_cuda.cpp).
Tensor batch_norm_train(const Inputs& in) {
  const Tensor& x = in[0];
  const TensorOptions on_x{.dtype = x.dtype(), .device = x.device()};
  return ops::batch_norm2d(x, in[1], in[2], zeros({x.size(1)}, on_x), ones({x.size(1)}, on_x));
}

ParityCase batch_norm_train_case(const Shape& shape, bool affine, DType dtype = DType::f32) {
  return {.name = "batch_norm2d training " + std::string(affine ? "" : "without affine ") + shape_str(shape) +
                  dtype_tag(dtype),
          .make_inputs = [=] { return batch_norm_inputs(shape, affine, dtype); },
          .run = batch_norm_train,
          .tolerance = dtype == DType::f64 ? kF64 : kBatchNormF32};
}

// Eval with running statistics given as (non-differentiable) inputs 3 and 4.
ParityCase batch_norm_eval_case(const Shape& shape) {
  return {.name = "batch_norm2d eval with running stats " + shape_str(shape),
          .make_inputs =
              [=] {
                Inputs in = batch_norm_inputs(shape, true, DType::f32);
                in.push_back(random_input({shape[1]}, false));
                in.push_back(ops::abs(random_input({shape[1]}, false)) + 0.5);
                return in;
              },
          .run =
              [](const Inputs& in) {
                return ops::batch_norm2d(in[0], in[1], in[2], in[3], in[4], {.training = false});
              },
          .tolerance = kBatchNormF32};
}

const RegisterParity batch_norm_cases({
    batch_norm_train_case({4, 3, 5, 5}, true),
    batch_norm_train_case({1, 2, 3, 3}, true),
    batch_norm_train_case({3, 4, 2, 3}, false),
    batch_norm_train_case({2, 17, 1, 1}, true),
    batch_norm_train_case({8, 5, 16, 16}, true),
    batch_norm_train_case({3, 5, 4, 3}, true, DType::f64),
    batch_norm_train_case({1, 3, 7, 5}, false, DType::f64),
    {.name = "batch_norm2d training, weight but no bias [2, 3, 3, 3]",
     .make_inputs =
         [] {
           return Inputs{random_input({2, 3, 3, 3}), random_input({3}), Tensor()};
         },
     .run = batch_norm_train,
     .tolerance = kBatchNormF32},
    {.name = "batch_norm2d training, mean far from zero [4, 3, 6, 5]",
     .make_inputs =
         [] {
           Tensor x = random_input({4, 3, 6, 5}, false) * 3.0 + 50.0;
           x.set_requires_grad(true);
           return Inputs{x, random_input({3}), random_input({3})};
         },
     .run = batch_norm_train,
     .tolerance = {.rtol = 1e-4, .atol = 1e-3}},
    batch_norm_eval_case({2, 3, 4, 4}),
    batch_norm_eval_case({1, 6, 3, 5}),
    {.name = "batch_norm2d eval with strided (non-contiguous) running stats [2, 3, 4, 4]",
     .make_inputs =
         [] {
           Inputs in = batch_norm_inputs({2, 3, 4, 4}, true, DType::f32);
           in.push_back(random_input({6}, false));
           in.push_back(ops::abs(random_input({6}, false)) + 0.5);
           return in;
         },
     .run =
         [](const Inputs& in) {
           return ops::batch_norm2d(in[0], in[1], in[2], in[3].slice(0, 0, 6, 2), in[4].slice(0, 1, 6, 2),
                                    {.training = false});
         },
     .tolerance = kBatchNormF32},
    {.name = "batch_norm2d eval without running stats uses the batch [2, 3, 4, 4]",
     .make_inputs = [] { return batch_norm_inputs({2, 3, 4, 4}, true, DType::f32); },
     .run = [](const Inputs& in) { return ops::batch_norm2d(in[0], in[1], in[2], {}, {}, {.training = false}); },
     .tolerance = kBatchNormF32},
});

// ---- pooling ----

ParityCase pool_case(bool max, const Shape& shape, const ops::Pool2dOptions& opts, const std::string& what,
                     DType dtype = DType::f32) {
  return {.name = std::string(max ? "max_pool2d " : "avg_pool2d ") + what + " " + shape_str(shape) + dtype_tag(dtype),
          .make_inputs = [=] { return Inputs{random_input(shape, true, dtype)}; },
          .run = [=](const Inputs& in) { return max ? ops::max_pool2d(in[0], opts) : ops::avg_pool2d(in[0], opts); },
          .tolerance = for_dtype(dtype)};
}

const ops::Pool2dOptions k2{.kernel = {2, 2}};
const ops::Pool2dOptions k3s2p1{.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}};
const ops::Pool2dOptions k3s1p1{.kernel = {3, 3}, .stride = {1, 1}, .padding = {1, 1}};
const ops::Pool2dOptions k3s2ceil{.kernel = {3, 3}, .stride = {2, 2}, .ceil_mode = true};
const ops::Pool2dOptions k3s2p1ceil{.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}, .ceil_mode = true};
const ops::Pool2dOptions k23s12{.kernel = {2, 3}, .stride = {1, 2}};
const ops::Pool2dOptions k3s2p1_no_pad_count{
    .kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}, .count_include_pad = false};
const ops::Pool2dOptions k3s2p1ceil_no_pad_count{
    .kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}, .ceil_mode = true, .count_include_pad = false};

const RegisterParity pool_cases({
    pool_case(true, {2, 3, 8, 8}, k2, "2x2"),
    pool_case(true, {2, 4, 9, 7}, k3s2p1, "3x3 stride 2 pad 1 (overlapping)"),
    pool_case(true, {1, 2, 5, 5}, k3s1p1, "3x3 stride 1 pad 1 (overlapping)"),
    pool_case(true, {1, 3, 10, 11}, k3s2ceil, "3x3 stride 2 ceil_mode"),
    pool_case(true, {1, 2, 10, 10}, k3s2p1ceil, "3x3 stride 2 pad 1 ceil_mode"),
    pool_case(true, {3, 2, 7, 9}, k23s12, "2x3 stride 1x2", DType::f64),
    pool_case(true, {2, 16, 17, 17}, k3s2p1, "3x3 stride 2 pad 1 (overlapping)"),
    pool_case(false, {2, 3, 8, 8}, k2, "2x2"),
    pool_case(false, {2, 4, 9, 7}, k3s2p1, "3x3 stride 2 pad 1, padding counted"),
    pool_case(false, {2, 4, 9, 7}, k3s2p1_no_pad_count, "3x3 stride 2 pad 1, padding not counted"),
    pool_case(false, {1, 2, 10, 10}, k3s2p1ceil, "3x3 stride 2 pad 1 ceil_mode"),
    pool_case(false, {1, 2, 10, 10}, k3s2p1ceil_no_pad_count, "3x3 stride 2 pad 1 ceil_mode, padding not counted"),
    pool_case(false, {1, 1, 6, 5}, k3s1p1, "3x3 stride 1 pad 1", DType::f64),
    pool_case(false, {3, 2, 7, 9}, k23s12, "2x3 stride 1x2"),
    // global_avg_pool2d is ops::mean over H and W (models/surgery.cpp traces
    // it by that name), so these cases check the CUDA mean of ops/reduce.
    {.name = "global_avg_pool2d [2, 5, 7, 3]",
     .make_inputs = [] { return Inputs{random_input({2, 5, 7, 3})}; },
     .run = [](const Inputs& in) { return ops::global_avg_pool2d(in[0]); },
     .tolerance = kF32},
    {.name = "global_avg_pool2d [1, 3, 1, 1] f64",
     .make_inputs = [] { return Inputs{random_input({1, 3, 1, 1}, true, DType::f64)}; },
     .run = [](const Inputs& in) { return ops::global_avg_pool2d(in[0]); },
     .tolerance = kF64},
});

// ---- padding ----

ParityCase pad_case(const Shape& shape, const std::vector<int64_t>& pad, double value, DType dtype = DType::f32) {
  return {.name = fmt::format("constant_pad {} value {} of {}{}", shape_str(pad), value, shape_str(shape),
                              dtype_tag(dtype)),
          .make_inputs = [=] { return Inputs{random_input(shape, true, dtype)}; },
          .run = [=](const Inputs& in) { return ops::constant_pad(in[0], pad, value); },
          .tolerance = for_dtype(dtype)};
}

const RegisterParity pad_cases({
    pad_case({3, 5}, {1, 2}, 0),
    pad_case({2, 3, 4, 5}, {1, 0, 2, 3}, 0.5),
    pad_case({2, 3, 4, 4}, {0, 0, 0, 0, 2, 2}, 0),  // ResNet option-A shortcut: channels
    pad_case({2, 3, 4}, {1, 1, 1, 1, 1, 1}, -1, DType::f64),
    pad_case({1, 1, 1, 7}, {3, 0, 0, 2, 1, 1, 0, 1}, 2),
    pad_case({4, 3}, {}, 0),
});

// ---- softmax ----

ParityCase softmax_case(bool log, const Shape& shape, int64_t dim, DType dtype = DType::f32) {
  return {.name = fmt::format("{} dim {} of {}{}", log ? "log_softmax" : "softmax", dim, shape_str(shape),
                              dtype_tag(dtype)),
          .make_inputs = [=] { return Inputs{random_input(shape, true, dtype)}; },
          .run = [=](const Inputs& in) { return log ? ops::log_softmax(in[0], dim) : ops::softmax(in[0], dim); },
          .tolerance = for_dtype(dtype)};
}

const RegisterParity softmax_cases({
    softmax_case(false, {7, 10}, -1),    // a thread per row
    softmax_case(false, {5, 1000}, 1),   // a block per row
    softmax_case(false, {3, 37, 5}, 1),  // a thread per column
    softmax_case(false, {33, 4}, 0),
    softmax_case(false, {4, 65}, 1, DType::f64),
    softmax_case(false, {1, 1}, 1),
    softmax_case(true, {1, 100}, 1),
    softmax_case(true, {9, 10}, 1, DType::f64),
    softmax_case(true, {2, 3, 4, 5}, 1),
    softmax_case(true, {6, 300}, -1),
    softmax_case(true, {2, 70, 3}, 1, DType::f64),
});

// ---- cross-entropy ----

ParityCase cross_entropy_case(int64_t n, int64_t classes, double smoothing, DType dtype = DType::f32) {
  return {.name = fmt::format("cross_entropy {} smoothing {}{}", shape_str({n, classes}), smoothing, dtype_tag(dtype)),
          .make_inputs = [=] { return Inputs{random_input({n, classes}, true, dtype), random_labels(n, classes)}; },
          .run = [=](const Inputs& in) { return ops::cross_entropy(in[0], in[1], {.label_smoothing = smoothing}); },
          .tolerance = for_dtype(dtype)};
}

const RegisterParity cross_entropy_cases({
    cross_entropy_case(8, 10, 0),
    cross_entropy_case(1, 5, 0),
    cross_entropy_case(33, 1000, 0.1),
    cross_entropy_case(16, 3, 0.2, DType::f64),
    cross_entropy_case(300, 7, 0),
    cross_entropy_case(5, 1, 0.5),
    cross_entropy_case(2, 513, 1, DType::f64),
});

}  // namespace
