// Synchronised batch norm in one process: a world of one rank is plain batch
// norm (values, running statistics, gradients). Several ranks against one
// process on the concatenated batch: the mpirun test `mpi:sync-batch-norm`.
#include <doctest/doctest.h>

#include "engine/distributed.h"
#include "ops/batch_norm.h"
#include "ops/elementwise.h"
#include "tests/gradcheck.h"

using namespace tpp;
using tpp::testing::gradcheck;
using tpp::testing::random_input;

namespace {

std::shared_ptr<dist::Communicator> one_rank() { return dist::make_single_process_communicator(); }

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const auto x = a.to(DType::f64).to_vector<double>(), y = b.to(DType::f64).to_vector<double>();
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::abs(x[i] - y[i]));
  return worst;
}

}  // namespace

TEST_SUITE("ops") {

TEST_CASE("sync_batch_norm2d over one rank: output, running statistics and gradients of batch_norm2d") {
  Generator gen(3);
  const Tensor x_values = randn({4, 3, 5, 5}, {}, &gen) * 4.0 + 10.0;  // a mean far from 0
  const Tensor w_values = randn({3}, {}, &gen), b_values = randn({3}, {}, &gen), dy = randn({4, 3, 5, 5}, {}, &gen);
  struct Result {
    Tensor y, dx, dw, db, mean, var;
  };
  const auto run = [&](bool sync) {
    Tensor x = x_values.clone(), w = w_values.clone(), b = b_values.clone();
    for (Tensor* t : {&x, &w, &b}) t->set_requires_grad(true);
    Tensor mean = zeros({3}), var = ones({3});
    const Tensor y = sync ? ops::sync_batch_norm2d(x, w, b, mean, var, one_rank())
                          : ops::batch_norm2d(x, w, b, mean, var);
    y.backward(dy);
    return Result{y, x.grad(), w.grad(), b.grad(), mean, var};
  };
  const Result got = run(true), want = run(false);
  CHECK(max_abs_diff(got.y, want.y) <= 1e-5);
  CHECK(max_abs_diff(got.mean, want.mean) <= 1e-5);
  CHECK(max_abs_diff(got.var, want.var) <= 1e-4);
  CHECK(max_abs_diff(got.dx, want.dx) <= 1e-5);
  CHECK(max_abs_diff(got.dw, want.dw) <= 1e-4);
  CHECK(max_abs_diff(got.db, want.db) <= 1e-4);
}

TEST_CASE("gradcheck: sync_batch_norm2d, dx dweight dbias") {
  const Tensor x = random_input({3, 2, 3, 2}, 31), w = random_input({2}, 32), b = random_input({2}, 33);
  const Tensor running_mean = zeros({2}, {.dtype = DType::f64}), running_var = ones({2}, {.dtype = DType::f64});
  gradcheck(
      [&](const auto& in) { return ops::sync_batch_norm2d(in[0], in[1], in[2], running_mean, running_var, one_rank()); },
      {x, w, b});
}

TEST_CASE("sync_batch_norm2d in eval mode is batch_norm2d with the running statistics") {
  const Tensor x = random_input({2, 2, 2, 2}, 34);
  const Tensor mean = from_vector<double>({0.5, -1}, {2}), var = from_vector<double>({2, 0.25}, {2});
  const Tensor got = ops::sync_batch_norm2d(x, {}, {}, mean, var, one_rank(), {.training = false});
  const Tensor want = ops::batch_norm2d(x, {}, {}, mean, var, {.training = false});
  CHECK(got.to_vector<double>() == want.to_vector<double>());
}

TEST_CASE("sync_batch_norm2d needs a communicator and more than one value per channel over the ranks") {
  const Tensor x = zeros({1, 2, 1, 1});
  CHECK_THROWS_WITH(ops::sync_batch_norm2d(x, {}, {}, {}, {}, nullptr),
                    "sync_batch_norm2d: no communicator (x has shape [1, 2, 1, 1])");
  CHECK_THROWS_WITH(ops::sync_batch_norm2d(x, {}, {}, {}, {}, one_rank()),
                    "sync_batch_norm2d: expected more than 1 value per channel over all 1 ranks when training but got "
                    "x of shape [1, 2, 1, 1]");
}

}  // TEST_SUITE
