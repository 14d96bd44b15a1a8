// Layer widths and filter removal ("surgery", TPP-METHOD §5).
//
// Which layers read a layer's output channels, and which BN normalises them,
// comes from the data flow of one traced forward pass (a [2, C, 32, 32] input,
// or [2, in_features] for a model whose first layer is linear, in eval mode):
// from the layer's output the walk follows channel-wise ops (BN, ReLU, pools,
// global average pooling, flatten) up to the next conv/linear layers. On the
// zoo this gives exactly TPP's rules: the consumer is the next conv/linear in
// execution order (conv1 → conv2 → conv3 inside a residual block, the
// classifier after global pooling) and the BN is the first BatchNorm after
// the layer in registration order. A layer whose output reaches a residual
// sum, the model output, or any op that mixes channels cannot lose filters.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "models/module.h"

namespace tpp::models {

// Out channels (conv) or out features (linear) of every conv and linear layer.
std::map<std::string, int64_t> layer_widths(Module& model);

struct LayerLink {
  std::string name;                      // "layer1.0.conv1"
  int64_t exec_index = 0;                // position among the conv/linear layers in forward order
  std::vector<std::string> batch_norms;  // BN layers over its output channels (front(): "its" BN)
  std::vector<std::string> consumers;    // conv/linear layers whose inputs are its output channels
  int64_t features_per_channel = 1;      // consumer input features per channel (H·W when a map is flattened)
  std::string refusal;                   // why its filters cannot be removed; empty when they can
  bool prunable() const { return refusal.empty(); }
};

// Every conv and linear layer in forward-execution order.
std::vector<LayerLink> trace_layer_links(Module& model);

// Keeps only `kept` (sorted, distinct i64 indices) output filters of conv or
// linear `layer`, and slices its BN (weight, bias, running stats) and the
// input channels/features of the layers that consume its output. In place:
// the parameter TensorImpls get the new data, so handles held elsewhere stay
// valid (their .grad is dropped; an optimizer's momentum is not resized, so
// build a new one; a packed ParameterArena (models/arena.h) no longer holds
// the narrowed tensors: pack again). Refuses layers whose output feeds a
// residual sum or the model output, naming the layer and the reason.
void keep_filters(Module& model, const std::string& layer, const Tensor& kept);
// Several layers at once, with one trace.
void keep_filters(Module& model, const std::map<std::string, Tensor>& kept_by_layer);

// Narrows each layer of `widths` whose width is smaller than the model's to its
// first k filters (the shape of a pruned checkpoint, before its values load).
// Layers not named keep their width; an unknown layer or a wider width throws.
void apply_widths(Module& model, const std::map<std::string, int64_t>& widths);

}  // namespace tpp::models
