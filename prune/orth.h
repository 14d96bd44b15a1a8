// Orthogonality baselines of TPP-METHOD §7.2–7.5:
//
//   OrthP      orthogonalize_weights: every conv/linear weight replaced by the
//              (semi-)orthogonal factor of its own QR, times a gain (§7.2)
//   KernOrth   kernorth_loss  = ||Ŵᵀ Ŵ − I||_F, Ŵ the taller of W, Wᵀ (§7.3)
//   OrthConv   orthconv_loss  = ||Conv(K, K; s, p) − T||_F (§7.4)
//   both       orth_regularization: Σ over the model's layers by the rules of
//              the "CVPR17" / "CVPR20" methods (§7.3, §7.4)
//
// A weight is read as the matrix W [N, D] of its filters (row i = filter i
// flattened, D = C·kh·kw for a conv, in_features for a linear layer), as in §3.1.
// Layers are visited in registration order (models::Module::named_modules),
// as the reference visits them (PyTorch's named_modules); on the zoo the
// first one is the stem conv (MLP: net.0).
#pragma once

#include <string>

#include "engine/tensor.h"
#include "models/module.h"

namespace tpp::prune {

// §7.2 OrthP, in place and outside autograd: for every conv and linear weight,
// reshape to A [out, fan_in], transpose when out < fan_in so that A is tall,
// take the Q of the reduced QR with Mezzadri's sign fix (column j times
// sign(R_jj); linalg::orthonormal_factor), transpose back and multiply by
// `gain`. The result has orthonormal rows when out <= fan_in and orthonormal
// columns otherwise (times gain). Biases and BN are untouched. The QR runs in
// f64 on the host.
void orthogonalize_weights(models::Module& model, double gain);

// The OrthP replacement of one conv or linear weight: a new tensor of the
// weight's shape and dtype (no autograd).
Tensor orthogonalized(const Tensor& weight, double gain);

// calculate_gain of the reference's activation flag: 1 for archs whose name
// contains "linear" (mlp7_linear), √2 ("relu") for every other arch.
double orthp_gain(const std::string& arch);

// §7.3 KernOrth: ||Ŵᵀ Ŵ − I||_F (not squared) with Ŵ = W [N, D] when N >= D,
// else Wᵀ, so the gram is min(N, D) square. A 0-d tensor of the weight's
// dtype, differentiable in `weight` (a conv [N, C, kh, kw] or linear [N, D] weight).
Tensor kernorth_loss(const Tensor& weight);

// §7.4 OrthConv: ||Z − T||_F (not squared), Z = conv2d(K, K; stride, padding)
// [N, N, h', w'] (the kernel K [N, C, kh, kw] correlated, as a batch of N
// images, with its own N filters), T zero but T[i, i, ct, ct] = 1 with
// ct = ⌊w'/2⌋ (the reference centres both axes on the last one). s = 2, p = 1
// is the TPP copy's choice for every k×k conv (normative for the paper's
// numbers); OrthConv's own code passes the layer's stride. Differentiable.
Tensor orthconv_loss(const Tensor& weight, int64_t stride = 2, int64_t padding = 1);

enum class OrthRegMethod {
  kernorth,  // "CVPR17": kernorth_loss on every conv and linear layer
  orthconv,  // "CVPR20": the first layer skipped; linear and 1x1 convs kernorth_loss, k×k convs orthconv_loss(s=2, p=1)
};

// Σ over the model's conv and linear layers of the method's term (the caller
// multiplies by its loss weight, 0.1 in the paper). A 0-d tensor
// differentiable w.r.t. the weights; zero when the model has no such layer.
Tensor orth_regularization(models::Module& model, OrthRegMethod method);

// "CVPR17" / "kernorth" and "CVPR20" / "orthconv" (the reference's flag
// values and ours); anything else throws naming the accepted values.
OrthRegMethod parse_orth_reg_method(const std::string& name);

}  // namespace tpp::prune
