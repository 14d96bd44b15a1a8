// Tensor: a cheap value handle to (storage, dtype, sizes, strides, offset)
// plus autograd state. Copies share everything; views share storage.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/dtype.h"
#include "engine/storage.h"

namespace tpp {

using Shape = std::vector<int64_t>;

struct Node;
class Tensor;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  DType dtype = DType::f32;
  Shape sizes;
  Shape strides;
  int64_t offset = 0;  // in elements
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;
  std::shared_ptr<Node> grad_fn;  // null for leaves
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device(); }
  const Shape& sizes() const { return impl().sizes; }
  const Shape& strides() const { return impl().strides; }
  int64_t offset() const { return impl().offset; }
  int64_t dim() const { return static_cast<int64_t>(sizes().size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t stride(int64_t d) const;
  int64_t numel() const;
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }
  bool shares_storage_with(const Tensor& other) const { return storage() == other.storage(); }

  // Typed pointer to the first element; the dtype must match T.
  template <class T> T* data() const;
  void* raw_data() const;

  // Views: share storage, record autograd through the view.
  Tensor view(Shape shape) const;      // contiguous input; one size may be -1
  Tensor reshape(Shape shape) const;   // view when possible, else a copy
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int64_t dim, int64_t index) const;
  Tensor transpose(int64_t dim0, int64_t dim1) const;
  Tensor permute(const Shape& order) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor squeeze(int64_t dim) const;
  Tensor expand(const Shape& shape) const;  // broadcast view (stride 0)
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor contiguous() const;

  // Copies (differentiable).
  Tensor index_select(int64_t dim, const Tensor& index) const;
  Tensor clone() const;
  Tensor to(DType dtype) const;
  // The same values on `device` (this tensor itself when already there); the
  // gradient flows back to the source device.
  Tensor to(Device device) const;

  // Autograd.
  bool requires_grad() const { return impl().requires_grad; }
  Tensor& set_requires_grad(bool value = true);
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  const std::shared_ptr<Node>& grad_fn() const { return impl().grad_fn; }
  Tensor grad() const { return Tensor(impl().grad); }
  void set_grad(const Tensor& g) { impl().grad = g.impl_; }
  void zero_grad();  // sets the accumulated gradient (if any) to zero
  Tensor detach() const;  // same storage, no history
  // retain_graph keeps the graph's saved tensors so that backward can run
  // through it again (one backward per output row of a Jacobian).
  void backward(const Tensor& gradient = {}, bool retain_graph = false) const;

  // In place, outside autograd (optimizers, initialisers, surgery).
  Tensor& fill_(double value);
  Tensor& copy_(const Tensor& src);  // same shape, any dtype; src may be strided

  // Host access.
  void copy_from_host(const void* src, size_t nbytes);
  void copy_to_host(void* dst, size_t nbytes) const;
  template <class T> std::vector<T> to_vector() const;
  double item() const;  // one-element tensors
  std::string str() const;

  TensorImpl& impl() const;
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// Waits until the work queued on `device` is done (GPUs run asynchronously);
// returns at once for the CPU.
void synchronize(Device device);

// dst += src outside autograd: same shape, one device, floating dst; src of
// any dtype (converted). Gradient accumulation and scatter-adds use it.
void accumulate_(const Tensor& dst, const Tensor& src);

// Creation. Every random creator takes its numbers from the global Philox
// generator (engine/philox.h) unless a generator is given.
class Generator;
struct TensorOptions {
  DType dtype = DType::f32;
  Device device = Device::cpu();
};

Tensor empty(const Shape& shape, TensorOptions opts = {});
Tensor zeros(const Shape& shape, TensorOptions opts = {});
Tensor ones(const Shape& shape, TensorOptions opts = {});
Tensor full(const Shape& shape, double value, TensorOptions opts = {});
Tensor arange(double start, double end, double step = 1, TensorOptions opts = {});
Tensor arange(int64_t end, TensorOptions opts = {.dtype = DType::i64});
Tensor empty_like(const Tensor& t);
Tensor zeros_like(const Tensor& t);
Tensor rand(const Shape& shape, TensorOptions opts = {}, Generator* gen = nullptr);   // U[0,1)
Tensor randn(const Shape& shape, TensorOptions opts = {}, Generator* gen = nullptr);  // N(0,1)
Tensor uniform(const Shape& shape, double low, double high, TensorOptions opts = {}, Generator* gen = nullptr);
Tensor randint(const Shape& shape, int64_t low, int64_t high, Generator* gen = nullptr);  // i64 in [low, high)

// From host values, e.g. from_vector<float>({1, 2, 3, 4}, {2, 2}).
template <class T> Tensor from_vector(std::span<const T> values, const Shape& shape);
template <class T> Tensor from_vector(std::initializer_list<T> values, const Shape& shape) {
  return from_vector<T>(std::span<const T>(values.begin(), values.size()), shape);
}
template <class T> Tensor from_vector(const std::vector<T>& values, const Shape& shape) {
  return from_vector<T>(std::span<const T>(values), shape);
}

// Shape helpers shared by ops.
int64_t numel_of(const Shape& shape);
Shape contiguous_strides(const Shape& shape);
std::string shape_str(const Shape& shape);  // "[2, 3, 4]"
int64_t wrap_dim(int64_t dim, int64_t ndim, std::string_view op);

// ---- template definitions ----
template <class T> T* Tensor::data() const {
  TPP_CHECK(dtype() == dtype_of<T>(), "data: tensor has dtype {} but {} was requested", dtype_name(dtype()),
            dtype_name(dtype_of<T>()));
  return static_cast<T*>(storage()->data()) + offset();
}

}  // namespace tpp
