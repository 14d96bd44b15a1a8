// The element offsets GPU kernels use to read views and broadcasts in place
// (engine/cuda/indexing.h), computed on the host here against the CPU's
// StridedLoop: the index math of every strided CUDA kernel, checked without a GPU.
#include <doctest/doctest.h>

#if TPP_WITH_CUDA
#include <vector>

#include "engine/cuda/indexing.h"
#include "engine/strided.h"
#include "engine/tensor.h"

using namespace tpp;

namespace {

// Offsets of (a, b) for every element of `shape`, in row-major order, by StridedLoop.
std::vector<std::array<int64_t, 2>> reference_offsets(const Shape& shape, const Shape& a, const Shape& b) {
  std::vector<std::array<int64_t, 2>> out;
  StridedLoop<2>(shape, {&a, &b}).run([&](const auto& o) { out.push_back({o[0], o[1]}); });
  return out;
}

void check_matches_cpu(const Tensor& a, const Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  cuda::StridedOffsets<2> at;
  REQUIRE(cuda::make_strided_offsets<2>(a.sizes(), {&a.strides(), &b.strides()}, at));
  const auto expected = reference_offsets(a.sizes(), a.strides(), b.strides());
  REQUIRE(static_cast<int64_t>(expected.size()) == std::max<int64_t>(a.numel(), 1));
  for (int64_t i = 0; i < a.numel(); ++i) {
    int64_t got[2];
    at.offsets_of(i, got);
    CAPTURE(i);
    CHECK(got[0] == expected[i][0]);
    CHECK(got[1] == expected[i][1]);
  }
}

}  // namespace

TEST_CASE("strided offsets of a contiguous pair merge into one flat dim") {
  const Tensor a = zeros({3, 4, 5}), b = zeros({3, 4, 5});
  cuda::StridedOffsets<2> at;
  REQUIRE(cuda::make_strided_offsets<2>(a.sizes(), {&a.strides(), &b.strides()}, at));
  CHECK(at.ndim == 1);
  check_matches_cpu(a, b);
}

TEST_CASE("strided offsets follow transposed, sliced and permuted views") {
  const Tensor base = zeros({6, 5, 4});
  check_matches_cpu(base.transpose(0, 2), zeros({4, 5, 6}));
  check_matches_cpu(base.slice(0, 1, 6, 2).slice(2, 1, 3), zeros({3, 5, 2}));
  check_matches_cpu(base.permute({1, 2, 0}), zeros({6, 4, 5}).permute({2, 1, 0}));
}

TEST_CASE("strided offsets give broadcast operands stride 0") {
  const Tensor row = zeros({1, 5}).expand({4, 5});
  const Tensor column = zeros({4, 1}).expand({4, 5});
  check_matches_cpu(row, column);
  check_matches_cpu(zeros({}).expand({2, 3, 1, 4}), zeros({2, 3, 1, 4}));
}

TEST_CASE("strided offsets of a scalar and of size-1 dims") {
  check_matches_cpu(zeros({}), zeros({}));
  check_matches_cpu(zeros({1, 1, 7, 1}), zeros({7}).view({1, 1, 7, 1}));
}

TEST_CASE("more than eight dims that cannot merge are refused, not truncated") {
  Shape shape(9, 2);
  const Tensor a = zeros(shape);
  Shape order{8, 7, 6, 5, 4, 3, 2, 1, 0};
  const Tensor reversed = zeros(shape).permute(order);
  cuda::StridedOffsets<2> at;
  CHECK_FALSE(cuda::make_strided_offsets<2>(a.sizes(), {&a.strides(), &reversed.strides()}, at));
}
#else
TEST_CASE("strided offsets of the CUDA kernels") { MESSAGE("skipped: CPU-only build"); }
#endif
