#include "engine/optim.h"

#include <utility>

#if TPP_WITH_CUDA
#include <map>

#include "engine/cuda/caching_allocator.h"
#include "engine/cuda/fused_sgd.h"
#include "engine/cuda/stream.h"
#include "engine/cuda/tensor_transfer.h"
#endif

namespace tpp {

namespace {

template <class T>
void sgd_update(T* p, const T* g, T* buf, const T* mask, int64_t n, const SgdOptions& o, bool first_step) {
  const T lr = static_cast<T>(o.lr), wd = static_cast<T>(o.weight_decay), mom = static_cast<T>(o.momentum);
#pragma omp parallel for simd if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    if (mask && mask[i] == T(0)) {  // pruned: stays zero and carries no momentum
      p[i] = T(0);
      if (buf) buf[i] = T(0);
    } else {
      T d = g[i] + wd * p[i];
      if (buf) {
        buf[i] = first_step ? d : mom * buf[i] + d;
        d = o.nesterov ? d + mom * buf[i] : buf[i];
      }
      p[i] -= lr * d;
    }
  }
}

// Whether `mask` broadcasts to `shape` (numpy rules, never growing `shape`).
bool broadcasts_to(const Shape& mask, const Shape& shape) {
  if (mask.size() > shape.size()) return false;
  const size_t lead = shape.size() - mask.size();
  for (size_t d = 0; d < mask.size(); ++d)
    if (mask[d] != 1 && mask[d] != shape[lead + d]) return false;
  return true;
}

}  // namespace

#if TPP_WITH_CUDA
// The slot arrays of the last fused step, one per (device, dtype), kept on the
// device and uploaded again only when a slot changes (a new gradient tensor,
// the first step's buffers, a mask set), so that steady-state steps are one
// kernel launch and no copy.
class FusedSgdCache {
 public:
  struct Group {
    std::vector<cuda::SgdSlot> slots;
    cuda::DeviceBuffer device_slots;
  };
  std::map<std::pair<int, DType>, Group> groups;
};

namespace {
bool same_slots(const std::vector<cuda::SgdSlot>& a, const std::vector<cuda::SgdSlot>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].param != b[i].param || a[i].grad != b[i].grad || a[i].buffer != b[i].buffer || a[i].mask != b[i].mask ||
        a[i].numel != b[i].numel || a[i].first_chunk != b[i].first_chunk || a[i].first_step != b[i].first_step)
      return false;
  return true;
}
}  // namespace

void Sgd::step_on_gpu(const std::vector<Update>& updates) {
  if (!fused_cache_) fused_cache_ = std::make_shared<FusedSgdCache>();
  std::map<std::pair<int, DType>, std::vector<cuda::SgdSlot>> wanted;
  for (const Update& u : updates) {
    const Tensor& p = params_[u.index];
    if (p.numel() == 0) continue;
    std::vector<cuda::SgdSlot>& slots = wanted[{p.device().index, p.dtype()}];
    const int64_t first_chunk = slots.empty() ? 0 : slots.back().first_chunk + cuda::sgd_chunks(slots.back().numel);
    slots.push_back({.param = p.raw_data(),
                     .grad = u.grad.raw_data(),
                     .buffer = opts_.momentum > 0 ? momentum_[u.index].raw_data() : nullptr,
                     .mask = masks_[u.index].defined() ? masks_[u.index].raw_data() : nullptr,
                     .numel = p.numel(),
                     .first_chunk = first_chunk,
                     .first_step = u.first_step ? 1 : 0});
  }
  const cuda::SgdHyper hyper{.lr = opts_.lr, .momentum = opts_.momentum, .weight_decay = opts_.weight_decay,
                             .nesterov = opts_.nesterov};
  for (const auto& [key, slots] : wanted) {
    const cuda::DeviceGuard guard(key.first);
    FusedSgdCache::Group& group = fused_cache_->groups[key];
    const size_t bytes = slots.size() * sizeof(cuda::SgdSlot);
    if (!same_slots(group.slots, slots)) {
      // Stream order keeps an earlier step's kernel reading the old slots.
      if (group.device_slots.size() < bytes) group.device_slots = cuda::device_allocate(bytes, cuda::current_stream());
      cuda::upload_bytes(group.device_slots.data(), slots.data(), bytes, key.first);
      group.slots = slots;
    }
    const int64_t total_chunks = slots.back().first_chunk + cuda::sgd_chunks(slots.back().numel);
    cuda::launch_fused_sgd(group.device_slots.data_as<cuda::SgdSlot>(), static_cast<int64_t>(slots.size()),
                           total_chunks, key.second, hyper, cuda::current_stream());
  }
}
#endif

Sgd::Sgd(std::vector<Tensor> params, SgdOptions opts)
    : params_(std::move(params)), momentum_(params_.size()), masks_(params_.size()), opts_(opts) {
  TPP_CHECK(opts.lr >= 0, "sgd: learning rate must be >= 0 but got {}", opts.lr);
  TPP_CHECK(opts.momentum >= 0, "sgd: momentum must be >= 0 but got {}", opts.momentum);
  TPP_CHECK(opts.weight_decay >= 0, "sgd: weight decay must be >= 0 but got {}", opts.weight_decay);
  TPP_CHECK(!opts.nesterov || opts.momentum > 0, "sgd: nesterov needs a momentum > 0");
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    TPP_CHECK(p.defined() && p.is_leaf() && p.requires_grad() && p.is_contiguous(),
              "sgd: parameter {} must be a contiguous leaf that requires grad (shape {})", i,
              p.defined() ? shape_str(p.sizes()) : "undefined");
  }
}

void Sgd::step() {
  std::vector<Update> gpu_updates;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    TPP_CHECK(g.sizes() == p.sizes() && g.dtype() == p.dtype(), "sgd: gradient {} {} does not match parameter {} {}",
              dtype_name(g.dtype()), shape_str(g.sizes()), dtype_name(p.dtype()), shape_str(p.sizes()));
    TPP_CHECK(g.device() == p.device(), "sgd: gradient on {} but parameter {} on {}", g.device().str(), i,
              p.device().str());
    const bool first_step = opts_.momentum > 0 && !momentum_[i].defined();
    if (first_step) momentum_[i] = empty_like(p);
    for (const Tensor* state : {&momentum_[i], &masks_[i]})
      TPP_CHECK(!state->defined() || state->device() == p.device(),
                "sgd: parameter {} is on {} but its optimizer state on {}; make the optimizer after moving the model",
                i, p.device().str(), state->device().str());
    const Tensor grad = g.contiguous();
    if (p.device().is_cuda()) {
      gpu_updates.push_back({.index = i, .grad = grad, .first_step = first_step});
      continue;
    }
    dispatch_floating(p.dtype(), "sgd", [&](auto type) {
      using T = decltype(type);
      sgd_update<T>(p.data<T>(), grad.data<T>(), opts_.momentum > 0 ? momentum_[i].data<T>() : nullptr,
                    masks_[i].defined() ? masks_[i].data<T>() : nullptr, p.numel(), opts_, first_step);
    });
  }
#if TPP_WITH_CUDA
  if (!gpu_updates.empty()) step_on_gpu(gpu_updates);
#endif
}

void Sgd::set_momentum_buffer(size_t index, const Tensor& buffer) {
  TPP_CHECK(index < params_.size(), "sgd: momentum buffer {} of {} parameters", index, params_.size());
  const Tensor& p = params_[index];
  TPP_CHECK(buffer.defined() && buffer.sizes() == p.sizes() && buffer.dtype() == p.dtype(),
            "sgd: momentum buffer {} {} does not match parameter {} {}", index,
            buffer.defined() ? fmt::format("{} {}", dtype_name(buffer.dtype()), shape_str(buffer.sizes())) : "undefined",
            dtype_name(p.dtype()), shape_str(p.sizes()));
  momentum_[index] = buffer.detach().to(p.device()).clone();
}

void Sgd::set_mask(size_t index, const Tensor& mask) {
  TPP_CHECK(index < params_.size(), "sgd: mask {} of {} parameters", index, params_.size());
  if (!mask.defined()) {
    masks_[index] = Tensor();
    return;
  }
  const Tensor& p = params_[index];
  TPP_CHECK(mask.dtype() == DType::u8 || is_floating(mask.dtype()), "sgd: mask {} must be u8 or floating but is {}",
            index, dtype_name(mask.dtype()));
  TPP_CHECK(broadcasts_to(mask.sizes(), p.sizes()),
            "sgd: mask {} of shape {} does not broadcast to parameter shape {}", index, shape_str(mask.sizes()),
            shape_str(p.sizes()));
  // clone: a fresh contiguous copy of the parameter's shape, never a view of the caller's mask
  masks_[index] = mask.detach().to(p.device()).to(p.dtype()).expand(p.sizes()).clone();
}

void Sgd::zero_grad() {
  for (Tensor& p : params_) p.zero_grad();
}

}  // namespace tpp
