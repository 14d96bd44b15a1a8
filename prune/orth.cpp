#include "prune/orth.h"

#include <cmath>
#include <vector>

#include "engine/autograd.h"
#include "models/layers.h"
#include "ops/conv2d.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/norm.h"
#include "prune/linalg.h"

namespace tpp::prune {

namespace {

struct WeightLayer {
  std::string name;
  Tensor weight;
  bool pointwise_or_linear = false;  // linear, or a 1x1 conv: OrthConv uses KernOrth there
};

// The model's conv and linear layers in registration order.
std::vector<WeightLayer> weight_layers(models::Module& model) {
  std::vector<WeightLayer> layers;
  for (auto& [name, module] : model.named_modules()) {
    if (auto* conv = dynamic_cast<models::Conv2d*>(module))
      layers.push_back({name, conv->weight, conv->weight.size(2) == 1 && conv->weight.size(3) == 1});
    else if (auto* linear = dynamic_cast<models::Linear*>(module))
      layers.push_back({name, linear->weight, true});
  }
  return layers;
}

void check_weight(const Tensor& weight, const char* op, int64_t min_dim, int64_t max_dim) {
  TPP_CHECK(weight.defined() && is_floating(weight.dtype()) && weight.dim() >= min_dim && weight.dim() <= max_dim &&
                weight.numel() > 0,
            "{}: expected a non-empty floating {}-d weight, got {}", op,
            min_dim == max_dim ? std::to_string(min_dim) : fmt::format("{}- to {}", min_dim, max_dim),
            weight.defined() ? fmt::format("{} {}", dtype_name(weight.dtype()), shape_str(weight.sizes()))
                             : std::string("an undefined tensor"));
}

// Built on the device by a strided fill (the diagonal of [n, n] is every
// (n+1)-th element): no upload in the per-iteration penalties.
Tensor identity(int64_t n, const Tensor& like) {
  Tensor eye = zeros({n * n}, {.dtype = like.dtype(), .device = like.device()});
  eye.slice(0, 0, n * n, n + 1).fill_(1);
  return eye.view({n, n});
}

// The OrthP replacement of one weight [out, ...] (host f64 values, same layout).
std::vector<double> orthogonal_replacement(const Tensor& weight, double gain) {
  const int64_t rows = weight.size(0), cols = weight.numel() / rows;
  const std::vector<double> w = weight.detach().contiguous().to_vector<double>();
  std::vector<double> out(w.size());
  if (rows >= cols) {
    out = linalg::orthonormal_factor(w, rows, cols);
  } else {  // QR of the tall Wᵀ [cols, rows], then Qᵀ back into [rows, cols]
    std::vector<double> tall(w.size());
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) tall[static_cast<size_t>(j * rows + i)] = w[static_cast<size_t>(i * cols + j)];
    const std::vector<double> q = linalg::orthonormal_factor(tall, cols, rows);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) out[static_cast<size_t>(i * cols + j)] = q[static_cast<size_t>(j * rows + i)];
  }
  for (double& e : out) e *= gain;
  return out;
}

}  // namespace

Tensor orthogonalized(const Tensor& weight, double gain) {
  check_weight(weight, "orthogonalized", 2, 4);
  // Host f64 QR (once, at removal), then back to the weight's device.
  return from_vector<double>(orthogonal_replacement(weight, gain), weight.sizes())
      .to(weight.dtype())
      .to(weight.device());
}

void orthogonalize_weights(models::Module& model, double gain) {
  const NoGradGuard no_grad;
  for (const WeightLayer& layer : weight_layers(model)) {
    Tensor target = layer.weight;  // the handle shares the parameter's storage
    target.copy_(orthogonalized(layer.weight, gain));
  }
}

double orthp_gain(const std::string& arch) { return arch.find("linear") != std::string::npos ? 1.0 : std::sqrt(2.0); }

Tensor kernorth_loss(const Tensor& weight) {
  check_weight(weight, "kernorth_loss", 2, 4);
  const Tensor w = weight.reshape({weight.size(0), -1});  // [N, D]
  const int64_t n = w.size(0), d = w.size(1);
  // Ŵᵀ Ŵ: WᵀW [D, D] when N >= D, else W Wᵀ [N, N].
  const Tensor gram = n >= d ? ops::matmul(w.transpose(0, 1), w) : ops::matmul(w, w.transpose(0, 1));
  return ops::frobenius_norm(ops::sub(gram, identity(std::min(n, d), weight)));
}

Tensor orthconv_loss(const Tensor& weight, int64_t stride, int64_t padding) {
  check_weight(weight, "orthconv_loss", 4, 4);
  TPP_CHECK(stride > 0 && padding >= 0, "orthconv_loss: stride {} must be positive and padding {} non-negative", stride,
            padding);
  ops::Conv2dOptions opts;
  opts.stride = {stride, stride};
  opts.padding = {padding, padding};
  const Tensor z = ops::conv2d(weight, weight, {}, opts);  // [N, N, h', w']
  const int64_t n = z.size(0), h = z.size(2), w = z.size(3), centre = w / 2;
  TPP_CHECK(centre < h, "orthconv_loss: the {}x{} correlation of weight {} has no centre row {}", h, w,
            shape_str(weight.sizes()), centre);
  // 1 at z[i, i, centre, centre]: every (n+1)·h·w-th element from the first centre.
  Tensor target = zeros({z.numel()}, {.dtype = z.dtype(), .device = z.device()});
  target.slice(0, centre * w + centre, z.numel(), (n + 1) * h * w).fill_(1);
  return ops::frobenius_norm(ops::sub(z, target.view(z.sizes())));
}

Tensor orth_regularization(models::Module& model, OrthRegMethod method) {
  Tensor total;
  const std::vector<WeightLayer> layers = weight_layers(model);
  for (size_t i = 0; i < layers.size(); ++i) {
    const WeightLayer& layer = layers[i];
    if (method == OrthRegMethod::orthconv && i == 0) continue;  // OCNN skips the first learnable layer
    const Tensor term = method == OrthRegMethod::kernorth || layer.pointwise_or_linear
                            ? kernorth_loss(layer.weight)
                            : orthconv_loss(layer.weight, 2, 1);
    total = total.defined() ? ops::add(total, term) : term;
  }
  return total.defined() ? total : zeros({}, {.device = model.device()});
}

OrthRegMethod parse_orth_reg_method(const std::string& name) {
  if (name == "CVPR17" || name == "kernorth") return OrthRegMethod::kernorth;
  if (name == "CVPR20" || name == "orthconv") return OrthRegMethod::orthconv;
  fail("orth_regularization: unknown method '{}' (expected CVPR17 / kernorth or CVPR20 / orthconv)", name);
}

}  // namespace tpp::prune
