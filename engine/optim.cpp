#include "engine/optim.h"

namespace tpp {

namespace {

template <class T>
void sgd_update(T* p, const T* g, T* buf, int64_t n, const SgdOptions& o, bool first_step) {
  const T lr = static_cast<T>(o.lr), wd = static_cast<T>(o.weight_decay), mom = static_cast<T>(o.momentum);
#pragma omp parallel for simd if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    T d = g[i] + wd * p[i];
    if (buf) {
      buf[i] = first_step ? d : mom * buf[i] + d;
      d = o.nesterov ? d + mom * buf[i] : buf[i];
    }
    p[i] -= lr * d;
  }
}

}  // namespace

Sgd::Sgd(std::vector<Tensor> params, SgdOptions opts)
    : params_(std::move(params)), momentum_(params_.size()), opts_(opts) {
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
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    TPP_CHECK(g.sizes() == p.sizes() && g.dtype() == p.dtype(), "sgd: gradient {} {} does not match parameter {} {}",
              dtype_name(g.dtype()), shape_str(g.sizes()), dtype_name(p.dtype()), shape_str(p.sizes()));
    const bool first_step = opts_.momentum > 0 && !momentum_[i].defined();
    if (first_step) momentum_[i] = empty_like(p);
    const Tensor grad = g.contiguous();
    dispatch_floating(p.dtype(), "sgd", [&](auto type) {
      using T = decltype(type);
      sgd_update<T>(p.data<T>(), grad.data<T>(), opts_.momentum > 0 ? momentum_[i].data<T>() : nullptr, p.numel(),
                    opts_, first_step);
    });
  }
}

void Sgd::set_momentum_buffer(size_t index, const Tensor& buffer) {
  TPP_CHECK(index < params_.size(), "sgd: momentum buffer {} of {} parameters", index, params_.size());
  const Tensor& p = params_[index];
  TPP_CHECK(buffer.defined() && buffer.sizes() == p.sizes() && buffer.dtype() == p.dtype(),
            "sgd: momentum buffer {} {} does not match parameter {} {}", index,
            buffer.defined() ? fmt::format("{} {}", dtype_name(buffer.dtype()), shape_str(buffer.sizes())) : "undefined",
            dtype_name(p.dtype()), shape_str(p.sizes()));
  momentum_[index] = buffer.detach().clone();
}

void Sgd::zero_grad() {
  for (Tensor& p : params_) p.zero_grad();
}

}  // namespace tpp
