// Jacobian singular values, the trainability measure of TPP-METHOD §8.3:
// for an input x, J(x) = ∂ logits / ∂ x [classes, C·H·W] (pre-softmax
// output, normalised input); "mean JSV" is the mean over all samples × all
// singular values of J(x).
//
// Two routes:
//   * linear_chain_jsv: exact for a model whose forward is a product of
//     linear maps (mlp7_linear): J = W_L ⋯ W_1 whatever x, one "sample".
//   * JsvAccumulator: per-sample Jacobians of any model, by backpropagation,
//     batch after batch.
//
// Batch statistics (BN in train mode). The reference builds row c of the
// Jacobians of a whole batch with one backward of the one-hot gradient
// e_c on every sample's output: sample n's row is then ∂(Σ_m logits[m, c]) / ∂x_n,
// which in train mode also carries the paths from x_n through the batch mean
// and variance into the other samples' logits. We do the same (one forward per
// batch, one backward per class), so train-mode numbers match the reference's
// and depend on the batch (size and composition); in eval mode, or for models
// without batch statistics, the rows are exactly each sample's own Jacobian.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <nlohmann/json_fwd.hpp>
#include <vector>

#include "engine/tensor.h"
#include "models/module.h"

namespace tpp::prune {

struct JsvStats {
  double mean = 0, std = 0, min = 0, max = 0;  // over the pool of all singular values (std: population, as numpy)
  double condition = 0;                        // mean over samples of max/min (inf when a sample's min is 0)
  double mean_sq_dev_from_1 = 0;               // mean of (s − 1)²
  int64_t samples = 0, values = 0;             // Jacobians, singular values pooled
};

// Whether `model` is a chain of Linear layers (with Identity, Flatten and
// Sequential in between): its forward is x ↦ W_L ⋯ W_1 x + b.
bool is_linear_chain(models::Module& model);

// The exact singular values of W_L ⋯ W_1 (in f64) as one sample. Throws,
// naming the first offending layer, for a model that is not a linear chain.
JsvStats linear_chain_jsv(models::Module& model);

// The Jacobians of a batch, f32 [B, classes, C·H·W] on the host: the model's
// logits [B, classes] (on the model's device, `images` moved there)
// differentiated w.r.t. `images` [B, ...] one class at a time
// (see the note on batch statistics above). The model runs in whatever
// train/eval mode it is in (BN running statistics update once in train mode,
// as for one forward); parameter gradients are left untouched.
Tensor batch_jacobians(models::Module& model, const Tensor& images);

// Where the images for Jacobians come from: each call returns the next batch
// of images [B, ...], or nothing when there are no more (a data loader's
// epoch: train::epoch_images, train/run_data.h).
using ImageBatches = std::function<std::optional<Tensor>()>;

// The singular values of each J(x) pooled over batches.
class JsvAccumulator {
 public:
  void add_batch(models::Module& model, const Tensor& images);
  // add_batch() over the first `max_batches` batches of `batches`; returns
  // how many there were.
  int64_t add_batches(models::Module& model, const ImageBatches& batches, int64_t max_batches);
  // Adds the singular values of one sample's Jacobian.
  void add_sample(std::vector<double> singular_values);
  JsvStats stats() const;

 private:
  std::vector<double> values_;
  double condition_sum_ = 0;
  int64_t samples_ = 0;
};

// Summary statistics of one pool of singular values grouped by sample.
JsvStats jsv_stats(const std::vector<std::vector<double>>& per_sample);

// {"mean", "std", "min", "max", "condition", "mean_sq_dev_from_1", "samples"}
// The measure of the pruning pipeline and `tpp compare`: exact for a linear
// chain (`images` unused, may be empty); otherwise per-sample Jacobians over
// the first `max_batches` batches of `images`, with the model in eval mode (so
// that BN's running statistics stay as they are; the mode is restored).
JsvStats model_jsv(models::Module& model, const ImageBatches& images, int64_t max_batches);

nlohmann::ordered_json jsv_json(const JsvStats& stats);

// A JSV figure as every command and report prints it: four decimals, or
// four significant digits in scientific notation below 0.001 (0.0001 next
// to 1.0000 in one table).
std::string jsv_text(double value);

}  // namespace tpp::prune
