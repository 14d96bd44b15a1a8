#include <doctest/doctest.h>

#include "engine/autograd.h"
#include "engine/format.h"
#include "engine/philox.h"
#include "engine/tensor.h"

using namespace tpp;

TEST_CASE("a new tensor is contiguous with row-major strides") {
  const Tensor t = zeros({2, 3, 4});
  CHECK(t.sizes() == Shape{2, 3, 4});
  CHECK(t.strides() == Shape{12, 4, 1});
  CHECK(t.numel() == 24);
  CHECK(t.is_contiguous());
}

TEST_CASE("philox matches the Random123 known-answer vectors") {
  CHECK(philox4x32(0, 0, 0) == PhiloxBlock{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
  CHECK(philox4x32(~0ull, ~0ull, ~0ull) == PhiloxBlock{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd});
}

TEST_SUITE("tensor views") {
  TEST_CASE("view and reshape share storage with the base") {
    Tensor t = arange(0.0, 6.0, 1.0);
    Tensor v = t.view({2, 3});
    CHECK(v.shares_storage_with(t));
    v.select(1, 2).fill_(42);
    CHECK(t.to_vector<float>() == std::vector<float>{0, 1, 42, 3, 4, 42});
  }

  TEST_CASE("view infers one -1 size and rejects impossible shapes") {
    CHECK(zeros({4, 6}).view({-1, 3}).sizes() == Shape{8, 3});
    CHECK_THROWS_WITH(zeros({4, 6}).view({5, -1}), "view: cannot view shape [4, 6] as [5, -1]");
    CHECK_THROWS_WITH(zeros({4, 6}).view({5, 5}), "view: cannot view shape [4, 6] (24 elements) as [5, 5]");
  }

  TEST_CASE("view of a transposed tensor is refused, reshape copies") {
    const Tensor t = arange(0.0, 6.0, 1.0).view({2, 3}).transpose(0, 1);
    CHECK_FALSE(t.is_contiguous());
    CHECK_THROWS_WITH(t.view({6}), "view: tensor of shape [3, 2] is not contiguous; use reshape");
    const Tensor r = t.reshape({6});
    CHECK_FALSE(r.shares_storage_with(t));
    CHECK(r.to_vector<float>() == std::vector<float>{0, 3, 1, 4, 2, 5});
  }

  TEST_CASE("slice with a step along any dim") {
    const Tensor t = arange(0.0, 24.0, 1.0).view({2, 3, 4});
    const Tensor s = t.slice(2, 1, 4, 2);  // columns 1 and 3
    CHECK(s.sizes() == Shape{2, 3, 2});
    CHECK(s.strides() == Shape{12, 4, 2});
    CHECK(s.to_vector<float>() == std::vector<float>{1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23});
    CHECK(t.slice(1, -2, 100).sizes() == Shape{2, 2, 4});
  }

  TEST_CASE("select drops a dim and checks its index") {
    const Tensor t = arange(0.0, 6.0, 1.0).view({2, 3});
    CHECK(t.select(1, -1).to_vector<float>() == std::vector<float>{2, 5});
    CHECK_THROWS_WITH(t.select(0, 2), "select: index 2 is out of range for dim 0 of size 2 (shape [2, 3])");
  }

  TEST_CASE("permute reorders sizes and strides, contiguous materialises") {
    const Tensor t = arange(0.0, 24.0, 1.0).view({2, 3, 4});
    const Tensor p = t.permute({2, 0, 1});
    CHECK(p.sizes() == Shape{4, 2, 3});
    CHECK(p.strides() == Shape{1, 12, 4});
    const Tensor c = p.contiguous();
    CHECK(c.is_contiguous());
    CHECK(c.to_vector<float>()[1] == 4);  // p[0,0,1] = t[0,1,0]
    CHECK_THROWS_WITH(t.permute({0, 0, 1}), "permute: dim 0 repeats in order [0, 0, 1]");
  }

  TEST_CASE("copy_ between two tensors of the same permuted layout copies element for element") {
    // Both channels-last ([N, C, H, W] over NHWC memory): the fast path copies
    // the memory as it lies; a wrong mapping would mix up channels.
    const Tensor src = arange(0.0, 24.0, 1.0).view({2, 2, 3, 2}).permute({0, 3, 1, 2});  // [2, 2, 2, 3]
    Tensor dst = zeros({2, 2, 3, 2}).permute({0, 3, 1, 2});
    dst.copy_(src);
    CHECK(dst.strides() == src.strides());
    CHECK(dst.contiguous().to_vector<float>() == src.contiguous().to_vector<float>());
    // Into a contiguous tensor (a strided walk): the same values.
    Tensor plain = zeros({2, 2, 2, 3});
    plain.copy_(src);
    CHECK(plain.to_vector<float>() == src.contiguous().to_vector<float>());
    // Same strides but overlapping (a broadcast): not the memory copy.
    Tensor row = zeros({3, 2});
    row.copy_(arange(0.0, 2.0, 1.0).view({1, 2}).expand({3, 2}));
    CHECK(row.to_vector<float>() == std::vector<float>{0, 1, 0, 1, 0, 1});
  }

  TEST_CASE("index_select gathers along a dim and checks indices") {
    const Tensor t = arange(0.0, 12.0, 1.0).view({3, 4});
    const Tensor idx = from_vector<int64_t>({2, 0}, {2});
    CHECK(t.index_select(0, idx).to_vector<float>() == std::vector<float>{8, 9, 10, 11, 0, 1, 2, 3});
    CHECK(t.index_select(1, idx).to_vector<float>() == std::vector<float>{2, 0, 6, 4, 10, 8});
    CHECK_THROWS_WITH(t.index_select(1, from_vector<int64_t>({4}, {1})),
                      "index_select: index 4 is out of range for dim 1 of size 4 (shape [3, 4])");
    CHECK_THROWS_WITH(t.index_select(0, zeros({1})),
                      "index_select: index must be a 1-d i64 tensor but got f32 of shape [1]");
  }

  TEST_CASE("expand broadcasts with zero strides") {
    const Tensor t = from_vector<float>({1, 2}, {2, 1}).expand({2, 3});
    CHECK(t.strides() == Shape{1, 0});
    CHECK(t.contiguous().to_vector<float>() == std::vector<float>{1, 1, 1, 2, 2, 2});
    CHECK_THROWS_WITH(zeros({2, 3}).expand({2, 4}), "expand: cannot expand shape [2, 3] to [2, 4]");
  }

  TEST_CASE("dtype conversion and host copies") {
    const Tensor t = from_vector<double>({1.5, -2.25}, {2});
    CHECK(t.to(DType::f32).to_vector<float>() == std::vector<float>{1.5f, -2.25f});
    CHECK(t.to(DType::i64).to_vector<int64_t>() == std::vector<int64_t>{1, -2});
    std::vector<double> out(2);
    t.copy_to_host(out.data(), 16);
    CHECK(out[1] == -2.25);
    Tensor u = empty({3});
    CHECK_THROWS_WITH(u.copy_from_host(out.data(), 16),
                      "copy_from_host: 16 bytes given for a f32 tensor of shape [3] (12 bytes)");
  }

  TEST_CASE("item needs exactly one element") {
    CHECK(full({1, 1}, 3.5).item() == 3.5);
    CHECK_THROWS_WITH(zeros({2}).item(), "item: tensor of shape [2] has 2 elements, not 1");
  }

  TEST_CASE("printing with fmt abridges long dims") {
    CHECK(fmt::format("{}", from_vector<float>({1, 2, 3, 4}, {2, 2})) == "tensor([[1, 2], [3, 4]], f32, [2, 2])");
    CHECK(fmt::format("{}", arange(10)) == "tensor([0, 1, 2, ..., 7, 8, 9], i64, [10])");
  }

  TEST_CASE("empty tensors copy from and to the host, and clone") {
    // Found by the sanitizer build: an empty tensor has no buffer, and memcpy
    // of zero bytes from or to a null pointer is undefined behaviour.
    const Tensor none = from_vector<int64_t>(std::vector<int64_t>{}, {0});
    CHECK(none.sizes() == Shape{0});
    CHECK(none.to_vector<int64_t>().empty());
    CHECK(none.clone().sizes() == Shape{0});
    none.copy_to_host(nullptr, 0);
  }
}
