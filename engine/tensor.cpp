#include "engine/tensor.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "engine/autograd.h"
#include "engine/strided.h"
#if TPP_WITH_CUDA
#include "engine/cuda/stream.h"
#include "engine/cuda/tensor_transfer.h"
#endif

namespace tpp {

// ---- shape helpers ----

int64_t numel_of(const Shape& shape) {
  return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<>());
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t running = 1;
  for (size_t d = shape.size(); d-- > 0;) {
    strides[d] = running;
    running *= std::max<int64_t>(shape[d], 1);
  }
  return strides;
}

std::string shape_str(const Shape& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

int64_t wrap_dim(int64_t dim, int64_t ndim, std::string_view op) {
  // As PyTorch, a 0-d tensor takes dim 0 and -1 (as if it were 1-d).
  const int64_t range = std::max<int64_t>(ndim, 1);
  const int64_t wrapped = dim < 0 ? dim + range : dim;
  TPP_CHECK(wrapped >= 0 && wrapped < range, "{}: dim {} is out of range for a {}-d tensor", op, dim, ndim);
  return wrapped;
}

// ---- basic accessors ----

TensorImpl& Tensor::impl() const {
  TPP_CHECK(impl_ != nullptr, "tensor: use of an undefined tensor");
  return *impl_;
}

// A dim that indexes t's shape: a 0-d tensor has none, though wrap_dim
// accepts 0 and -1 for it (for reductions and softmax).
namespace {
int64_t existing_dim(const Tensor& t, int64_t d, std::string_view op) {
  TPP_CHECK(t.dim() > 0, "{}: a 0-d tensor has no dim {}", op, d);
  return wrap_dim(d, t.dim(), op);
}
}  // namespace

int64_t Tensor::size(int64_t d) const { return sizes()[existing_dim(*this, d, "size")]; }
int64_t Tensor::stride(int64_t d) const { return strides()[existing_dim(*this, d, "stride")]; }
int64_t Tensor::numel() const { return numel_of(sizes()); }

bool Tensor::is_contiguous() const {
  if (numel() == 0) return true;  // no element to place (as PyTorch)
  int64_t expected = 1;
  for (int64_t d = dim() - 1; d >= 0; --d) {
    if (sizes()[d] == 1) continue;
    if (strides()[d] != expected) return false;
    expected *= sizes()[d];
  }
  return true;
}

void* Tensor::raw_data() const {
  return static_cast<char*>(storage()->data()) + offset() * static_cast<int64_t>(element_size(dtype()));
}

namespace {

Tensor make_view(const Tensor& base, Shape sizes, Shape strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.storage();
  impl->dtype = base.dtype();
  impl->sizes = std::move(sizes);
  impl->strides = std::move(strides);
  impl->offset = offset;
  return Tensor(std::move(impl));
}

#if TPP_WITH_CUDA
bool on_gpu(const Tensor& a, const Tensor& b) { return a.device().is_cuda() || b.device().is_cuda(); }
#endif

// Strided copy with dtype conversion; shapes must already match.
// Whether t's elements fill numel() consecutive slots in some order of its
// dims (contiguous, or a permutation of it such as channels-last).
bool is_dense(const Tensor& t) {
  std::vector<std::pair<int64_t, int64_t>> dims;  // (stride, size), size > 1
  for (int64_t d = 0; d < t.dim(); ++d)
    if (t.sizes()[d] != 1) dims.emplace_back(t.strides()[d], t.sizes()[d]);
  std::sort(dims.begin(), dims.end());
  int64_t expected = 1;
  for (const auto& [stride, size] : dims) {
    if (stride != expected) return false;
    expected *= size;
  }
  return true;
}

void copy_elements(const Tensor& dst, const Tensor& src) {
#if TPP_WITH_CUDA
  if (on_gpu(dst, src)) return cuda::copy(dst, src);
#endif
  dispatch_all(dst.dtype(), [&](auto d) {
    using D = decltype(d);
    dispatch_all(src.dtype(), [&](auto s) {
      using S = decltype(s);
      D* out = dst.data<D>();
      const S* in = src.data<S>();
      // Both contiguous, or both laid out alike (two channels-last tensors):
      // element i of one memory is element i of the other.
      const bool same_dense_layout =
          (dst.is_contiguous() && src.is_contiguous()) || (dst.strides() == src.strides() && is_dense(dst));
      if (same_dense_layout) {
        const int64_t n = dst.numel();
        if constexpr (std::is_same_v<D, S>) {
          if (n > 0) std::memcpy(out, in, n * sizeof(D));  // empty tensors may have null data
        } else {
          for (int64_t i = 0; i < n; ++i) out[i] = static_cast<D>(in[i]);
        }
        return;
      }
      StridedLoop<2>(dst.sizes(), {&dst.strides(), &src.strides()}).run([&](const auto& o) {
        out[o[0]] = static_cast<D>(in[o[1]]);
      });
    });
  });
}

// Infers one -1 entry of a requested shape.
Shape infer_shape(Shape shape, int64_t numel, std::string_view op, const Shape& from) {
  int64_t known = 1, infer_at = -1;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == -1) {
      TPP_CHECK(infer_at < 0, "{}: only one size may be -1 in {}", op, shape_str(shape));
      infer_at = static_cast<int64_t>(d);
    } else {
      TPP_CHECK(shape[d] >= 0, "{}: negative size in {}", op, shape_str(shape));
      known *= shape[d];
    }
  }
  if (infer_at >= 0) {
    TPP_CHECK(known != 0 && numel % known == 0, "{}: cannot view shape {} as {}", op, shape_str(from),
              shape_str(shape));
    shape[infer_at] = numel / known;
  }
  TPP_CHECK(numel_of(shape) == numel, "{}: cannot view shape {} ({} elements) as {}", op, shape_str(from), numel,
            shape_str(shape));
  return shape;
}

}  // namespace

// ---- views ----

Tensor Tensor::view(Shape shape) const {
  shape = infer_shape(std::move(shape), numel(), "view", sizes());
  TPP_CHECK(is_contiguous(), "view: tensor of shape {} is not contiguous; use reshape", shape_str(sizes()));
  Tensor out = make_view(*this, shape, contiguous_strides(shape), offset());
  const Shape in_sizes = sizes();
  record_grad(out, "view", {*this}, [in_sizes](const Tensor& dy) { return Grads{dy.reshape(in_sizes)}; });
  return out;
}

Tensor Tensor::reshape(Shape shape) const { return is_contiguous() ? view(std::move(shape)) : contiguous().view(shape); }

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  d = existing_dim(*this, d, "slice");
  const int64_t n = sizes()[d];
  TPP_CHECK(step > 0, "slice: step must be positive but got {}", step);
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape s = sizes(), st = strides();
  s[d] = (end - start + step - 1) / step;
  st[d] *= step;
  Tensor out = make_view(*this, s, st, offset() + start * strides()[d]);
  const Shape in_sizes = sizes();
  const TensorOptions where{.dtype = dtype(), .device = device()};
  record_grad(out, "slice", {*this}, [in_sizes, where, d, start, end, step](const Tensor& dy) {
    Tensor dx = zeros(in_sizes, where);
    dx.slice(d, start, end, step).copy_(dy);
    return Grads{dx};
  });
  return out;
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  d = existing_dim(*this, d, "select");
  const int64_t n = sizes()[d];
  TPP_CHECK(index >= -n && index < n, "select: index {} is out of range for dim {} of size {} (shape {})", index, d,
            n, shape_str(sizes()));
  if (index < 0) index += n;
  Shape s = sizes(), st = strides();
  s.erase(s.begin() + d);
  st.erase(st.begin() + d);
  Tensor out = make_view(*this, s, st, offset() + index * strides()[d]);
  const Shape in_sizes = sizes();
  const TensorOptions where{.dtype = dtype(), .device = device()};
  record_grad(out, "select", {*this}, [in_sizes, where, d, index](const Tensor& dy) {
    Tensor dx = zeros(in_sizes, where);
    dx.select(d, index).copy_(dy);
    return Grads{dx};
  });
  return out;
}

Tensor Tensor::permute(const Shape& order) const {
  TPP_CHECK(static_cast<int64_t>(order.size()) == dim(), "permute: order {} does not match a tensor of shape {}",
            shape_str(order), shape_str(sizes()));
  Shape s(order.size()), st(order.size()), inverse(order.size(), -1);
  for (size_t i = 0; i < order.size(); ++i) {
    const int64_t src = wrap_dim(order[i], dim(), "permute");
    TPP_CHECK(inverse[src] < 0, "permute: dim {} repeats in order {}", src, shape_str(order));
    inverse[src] = static_cast<int64_t>(i);
    s[i] = sizes()[src];
    st[i] = strides()[src];
  }
  Tensor out = make_view(*this, s, st, offset());
  record_grad(out, "permute", {*this}, [inverse](const Tensor& dy) { return Grads{dy.permute(inverse)}; });
  return out;
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  Shape order(dim());
  std::iota(order.begin(), order.end(), 0);
  const int64_t a = wrap_dim(d0, dim(), "transpose"), b = wrap_dim(d1, dim(), "transpose");
  if (dim() > 0) std::swap(order[a], order[b]);  // a 0-d tensor is its own transpose, as in PyTorch
  return permute(order);
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = wrap_dim(d, dim() + 1, "unsqueeze");
  Shape s = sizes();
  s.insert(s.begin() + d, 1);
  return is_contiguous() ? view(s) : reshape(s);
}

Tensor Tensor::squeeze(int64_t d) const {
  d = wrap_dim(d, dim(), "squeeze");
  if (dim() == 0) return permute({});  // a 0-d tensor squeezes to itself, as in PyTorch
  TPP_CHECK(sizes()[d] == 1, "squeeze: dim {} has size {} in shape {}", d, sizes()[d], shape_str(sizes()));
  Shape s = sizes(), st = strides();
  s.erase(s.begin() + d);
  st.erase(st.begin() + d);
  Tensor out = make_view(*this, s, st, offset());
  const Shape in_sizes = sizes();
  record_grad(out, "squeeze", {*this}, [in_sizes](const Tensor& dy) { return Grads{dy.reshape(in_sizes)}; });
  return out;
}

Tensor Tensor::expand(const Shape& shape) const {
  TPP_CHECK(static_cast<int64_t>(shape.size()) >= dim(), "expand: cannot expand shape {} to {}", shape_str(sizes()),
            shape_str(shape));
  const size_t lead = shape.size() - sizes().size();
  Shape st(shape.size(), 0);
  for (size_t d = 0; d < sizes().size(); ++d) {
    const int64_t want = shape[lead + d], have = sizes()[d];
    TPP_CHECK(have == want || have == 1, "expand: cannot expand shape {} to {}", shape_str(sizes()),
              shape_str(shape));
    st[lead + d] = have == want ? strides()[d] : 0;
  }
  Tensor out = make_view(*this, shape, st, offset());
  const Shape in_sizes = sizes();
  record_grad(out, "expand", {*this}, [in_sizes](const Tensor& dy) { return Grads{sum_to_shape(dy, in_sizes)}; });
  return out;
}

Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
  if (dim() == 0) return reshape({1});
  start_dim = wrap_dim(start_dim, dim(), "flatten");
  end_dim = wrap_dim(end_dim, dim(), "flatten");
  TPP_CHECK(start_dim <= end_dim, "flatten: start_dim {} is after end_dim {}", start_dim, end_dim);
  Shape s(sizes().begin(), sizes().begin() + start_dim);
  int64_t merged = 1;
  for (int64_t d = start_dim; d <= end_dim; ++d) merged *= sizes()[d];
  s.push_back(merged);
  s.insert(s.end(), sizes().begin() + end_dim + 1, sizes().end());
  return reshape(s);
}

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

// ---- copies ----

Tensor Tensor::clone() const {
  Tensor out = empty(sizes(), {.dtype = dtype(), .device = device()});
  copy_elements(out, *this);
  record_grad(out, "clone", {*this}, [](const Tensor& dy) { return Grads{dy}; });
  return out;
}

Tensor Tensor::to(DType target) const {
  if (target == dtype()) return *this;
  Tensor out = empty(sizes(), {.dtype = target, .device = device()});
  copy_elements(out, *this);
  if (is_floating(target) && is_floating(dtype())) {
    const DType source = dtype();
    record_grad(out, "to", {*this}, [source](const Tensor& dy) { return Grads{dy.to(source)}; });
  }
  return out;
}

Tensor Tensor::to(Device target) const {
  if (target == device()) return *this;
  Tensor out = empty(sizes(), {.dtype = dtype(), .device = target});
  copy_elements(out, *this);
  const Device source = device();
  record_grad(out, "to_device", {*this}, [source](const Tensor& dy) { return Grads{dy.to(source)}; });
  return out;
}

Tensor Tensor::index_select(int64_t d, const Tensor& index) const {
  d = existing_dim(*this, d, "index_select");
  TPP_CHECK(index.dtype() == DType::i64 && index.dim() == 1,
            "index_select: index must be a 1-d i64 tensor but got {} of shape {}", dtype_name(index.dtype()),
            shape_str(index.sizes()));
  const Tensor idx = index.to(Device::cpu()).contiguous();  // read on the host: one row copy per index
  const int64_t* ids = idx.data<int64_t>();
  const int64_t n = sizes()[d], count = idx.numel();
  for (int64_t i = 0; i < count; ++i)
    TPP_CHECK(ids[i] >= 0 && ids[i] < n, "index_select: index {} is out of range for dim {} of size {} (shape {})",
              ids[i], d, n, shape_str(sizes()));
  Shape s = sizes();
  s[d] = count;
  Tensor out = empty(s, {.dtype = dtype(), .device = device()});
  {
    NoGradGuard no_grad;
    for (int64_t i = 0; i < count; ++i) out.select(d, i).copy_(select(d, ids[i]));
  }
  const Shape in_sizes = sizes();
  const TensorOptions where{.dtype = dtype(), .device = device()};
  record_grad(out, "index_select", {*this}, [in_sizes, where, d, idx](const Tensor& dy) {
    NoGradGuard no_grad;
    Tensor dx = zeros(in_sizes, where);
    const int64_t* ids = idx.data<int64_t>();
    for (int64_t i = 0; i < idx.numel(); ++i) accumulate_(dx.select(d, ids[i]), dy.select(d, i));
    return Grads{dx};
  });
  return out;
}

// ---- autograd entry points ----

Tensor& Tensor::set_requires_grad(bool value) {
  TPP_CHECK(!value || is_floating(dtype()), "requires_grad: only floating tensors can require grad, not {}",
            dtype_name(dtype()));
  TPP_CHECK(is_leaf(), "requires_grad: can only be set on leaf tensors");
  impl().requires_grad = value;
  return *this;
}

void Tensor::zero_grad() {
  if (impl().grad) Tensor(impl().grad).fill_(0);
}

Tensor Tensor::detach() const { return make_view(*this, sizes(), strides(), offset()); }

void Tensor::backward(const Tensor& gradient, bool retain_graph) const { run_backward(*this, gradient, retain_graph); }

// ---- in place ----

Tensor& Tensor::fill_(double value) {
#if TPP_WITH_CUDA
  if (device().is_cuda()) {
    cuda::fill(*this, value);
    return *this;
  }
#endif
  dispatch_all(dtype(), [&](auto t) {
    using T = decltype(t);
    T* out = data<T>();
    const T v = static_cast<T>(value);
    if (is_contiguous()) {
      std::fill(out, out + numel(), v);
    } else {
      StridedLoop<1>(sizes(), {&strides()}).run([&](const auto& o) { out[o[0]] = v; });
    }
  });
  return *this;
}

void synchronize(Device device) {
#if TPP_WITH_CUDA
  if (device.is_cuda()) cuda::synchronize(device.index);
#else
  (void)device;
#endif
}

void accumulate_(const Tensor& dst, const Tensor& src) {
  TPP_CHECK(src.sizes() == dst.sizes(), "accumulate_: source shape {} does not match destination shape {}",
            shape_str(src.sizes()), shape_str(dst.sizes()));
  TPP_CHECK(src.device() == dst.device(), "accumulate_: source on {} but destination on {}", src.device().str(),
            dst.device().str());
#if TPP_WITH_CUDA
  if (dst.device().is_cuda()) return cuda::copy(dst, src, /*accumulate=*/true);
#endif
  const Tensor same_type = src.dtype() == dst.dtype() ? src : src.to(dst.dtype());
  dispatch_floating(dst.dtype(), "accumulate_", [&](auto t) {
    using T = decltype(t);
    T* out = dst.data<T>();
    const T* in = same_type.data<T>();
    if (dst.is_contiguous() && same_type.is_contiguous()) {
      // Every gradient that reaches a tensor twice is summed here (each
      // residual branch, each shared weight): n read once, so the loop
      // vectorises, and threads for the large ones.
      const int64_t n = dst.numel();
#pragma omp parallel for simd if (n > (int64_t{1} << 15))
      for (int64_t i = 0; i < n; ++i) out[i] += in[i];
      return;
    }
    StridedLoop<2>(dst.sizes(), {&dst.strides(), &same_type.strides()}).run([&](const auto& o) {
      out[o[0]] += in[o[1]];
    });
  });
}

Tensor& Tensor::copy_(const Tensor& src) {
  TPP_CHECK(src.sizes() == sizes(), "copy_: source shape {} does not match destination shape {}",
            shape_str(src.sizes()), shape_str(sizes()));
  copy_elements(*this, src);
  return *this;
}

void Tensor::copy_from_host(const void* src, size_t nbytes) {
  const size_t expected = numel() * element_size(dtype());
  TPP_CHECK(nbytes == expected, "copy_from_host: {} bytes given for a {} tensor of shape {} ({} bytes)", nbytes,
            dtype_name(dtype()), shape_str(sizes()), expected);
  TPP_CHECK(is_contiguous(), "copy_from_host: destination of shape {} is not contiguous", shape_str(sizes()));
#if TPP_WITH_CUDA
  if (device().is_cuda()) return cuda::upload_bytes(raw_data(), src, nbytes, device().index);
#endif
  if (nbytes > 0) std::memcpy(raw_data(), src, nbytes);  // empty tensors and vectors may have null data
}

void Tensor::copy_to_host(void* dst, size_t nbytes) const {
  const size_t expected = numel() * element_size(dtype());
  TPP_CHECK(nbytes == expected, "copy_to_host: {} bytes requested from a {} tensor of shape {} ({} bytes)", nbytes,
            dtype_name(dtype()), shape_str(sizes()), expected);
  const Tensor src = contiguous();
#if TPP_WITH_CUDA
  if (device().is_cuda()) return cuda::download_bytes(dst, src.raw_data(), nbytes, device().index);
#endif
  if (nbytes > 0) std::memcpy(dst, src.raw_data(), nbytes);
}

template <class T> std::vector<T> Tensor::to_vector() const {
  const Tensor src = to(Device::cpu()).to(dtype_of<T>()).contiguous();
  const T* p = src.data<T>();
  return std::vector<T>(p, p + src.numel());
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template std::vector<uint8_t> Tensor::to_vector<uint8_t>() const;

double Tensor::item() const {
  TPP_CHECK(numel() == 1, "item: tensor of shape {} has {} elements, not 1", shape_str(sizes()), numel());
  if (device().is_cuda()) return to(Device::cpu()).item();
  return dispatch_all(dtype(), [&](auto t) { return static_cast<double>(*data<decltype(t)>()); });
}

// ---- creation ----

Tensor empty(const Shape& shape, TensorOptions opts) {
  for (const int64_t s : shape) TPP_CHECK(s >= 0, "empty: negative size in shape {}", shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(numel_of(shape) * element_size(opts.dtype), opts.device);
  impl->dtype = opts.dtype;
  impl->sizes = shape;
  impl->strides = contiguous_strides(shape);
  return Tensor(std::move(impl));
}

Tensor zeros(const Shape& shape, TensorOptions opts) { return empty(shape, opts).fill_(0); }
Tensor ones(const Shape& shape, TensorOptions opts) { return empty(shape, opts).fill_(1); }
Tensor full(const Shape& shape, double value, TensorOptions opts) { return empty(shape, opts).fill_(value); }
Tensor empty_like(const Tensor& t) { return empty(t.sizes(), {.dtype = t.dtype(), .device = t.device()}); }
Tensor zeros_like(const Tensor& t) { return zeros(t.sizes(), {.dtype = t.dtype(), .device = t.device()}); }

Tensor arange(double start, double end, double step, TensorOptions opts) {
  TPP_CHECK(step != 0 && (end - start) / step >= 0, "arange: empty or infinite range start={} end={} step={}",
            start, end, step);
  const auto n = static_cast<int64_t>(std::ceil((end - start) / step));
  if (opts.device.is_cuda()) return arange(start, end, step, {.dtype = opts.dtype}).to(opts.device);
  Tensor out = empty({n}, opts);
  dispatch_all(opts.dtype, [&](auto t) {
    using T = decltype(t);
    T* p = out.data<T>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(start + static_cast<double>(i) * step);
  });
  return out;
}

Tensor arange(int64_t end, TensorOptions opts) { return arange(0.0, static_cast<double>(end), 1.0, opts); }

template <class T> Tensor from_vector(std::span<const T> values, const Shape& shape) {
  TPP_CHECK(static_cast<int64_t>(values.size()) == numel_of(shape),
            "from_vector: {} values given for shape {} ({} elements)", values.size(), shape_str(shape),
            numel_of(shape));
  Tensor out = empty(shape, {.dtype = dtype_of<T>()});
  out.copy_from_host(values.data(), values.size() * sizeof(T));
  return out;
}
template Tensor from_vector<float>(std::span<const float>, const Shape&);
template Tensor from_vector<double>(std::span<const double>, const Shape&);
template Tensor from_vector<int64_t>(std::span<const int64_t>, const Shape&);
template Tensor from_vector<uint8_t>(std::span<const uint8_t>, const Shape&);

}  // namespace tpp
