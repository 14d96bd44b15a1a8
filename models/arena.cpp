#include "models/arena.h"

namespace tpp::models {

namespace {

constexpr int64_t kAlignElements = 16;  // 64 bytes of f32

int64_t aligned(int64_t n) { return (n + kAlignElements - 1) / kAlignElements * kAlignElements; }

// Re-points `impl` at elements [offset, offset + numel) of `storage`, contiguous.
void rebind(TensorImpl& impl, const Tensor& storage_owner, int64_t offset) {
  impl.storage = storage_owner.storage();
  impl.offset = offset;
  impl.strides = contiguous_strides(impl.sizes);
}

std::shared_ptr<TensorImpl> view_impl(const Tensor& owner, const Shape& sizes, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = owner.storage();
  impl->dtype = owner.dtype();
  impl->sizes = sizes;
  impl->strides = contiguous_strides(sizes);
  impl->offset = offset;
  return impl;
}

}  // namespace

ParameterArena pack_parameters(Module& model) {
  ParameterArena arena;
  arena.views = model.named_parameters();
  TPP_CHECK(!arena.views.empty(), "pack_parameters: the model has no parameters");
  const DType dtype = arena.views.front().second.dtype();
  int64_t total = 0;
  for (const auto& [name, p] : arena.views) {
    TPP_CHECK(p.dtype() == dtype, "pack_parameters: parameter '{}' is {} but '{}' is {}", name, dtype_name(p.dtype()),
              arena.views.front().first, dtype_name(dtype));
    total += aligned(p.numel());
  }
  const TensorOptions where{.dtype = dtype, .device = arena.views.front().second.device()};
  Tensor values = zeros({total}, where);
  Tensor grads = zeros({total}, where);
  int64_t offset = 0;
  for (auto& [name, p] : arena.views) {
    Tensor(view_impl(values, p.sizes(), offset)).copy_(p);
    rebind(p.impl(), values, offset);
    p.impl().grad = view_impl(grads, p.sizes(), offset);
    offset += aligned(p.numel());
  }
  values.set_requires_grad(true);
  values.set_grad(grads);
  arena.params = values;
  arena.grads = grads;
  return arena;
}

bool in_arena(const ParameterArena& arena, const Tensor& param) {
  return param.defined() && arena.params.defined() && param.shares_storage_with(arena.params);
}

}  // namespace tpp::models
