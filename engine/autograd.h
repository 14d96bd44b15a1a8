// Define-by-run autograd. A differentiable op computes its output, then calls
// record_grad() with its inputs and a lambda that maps the output gradient to
// one gradient per input. backward() runs those lambdas in reverse
// topological order and accumulates into the .grad of leaves.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace tpp {

using Grads = std::vector<Tensor>;  // one per input; undefined = no gradient
using BackwardFn = std::function<Grads(const Tensor& grad_output)>;

struct Edge {
  std::shared_ptr<Node> node;        // the input's grad_fn, if it has one
  std::shared_ptr<TensorImpl> leaf;  // else the leaf that accumulates
  bool active() const { return node || leaf; }
};

struct Node {
  std::string name;
  std::vector<Edge> inputs;
  BackwardFn backward;
  Shape output_sizes;
  DType output_dtype = DType::f32;
  Device output_device;
};

// Whether ops record graphs (thread-local; on by default).
bool grad_enabled();

class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// Turns recording back on inside a NoGradGuard scope (graph tracing, e.g. of
// a model's layer structure, must work wherever it is called from).
class EnableGradGuard {
 public:
  EnableGradGuard();
  ~EnableGradGuard();
  EnableGradGuard(const EnableGradGuard&) = delete;
  EnableGradGuard& operator=(const EnableGradGuard&) = delete;

 private:
  bool previous_;
};

// True when grad mode is on and any input requires grad.
bool needs_grad(std::initializer_list<const Tensor*> inputs);
bool needs_grad(const std::vector<Tensor>& inputs);

// Makes `output` a non-leaf that requires grad, with a node named `name`.
// Does nothing when needs_grad(inputs) is false. Every op calls it, so it is
// also where TPP_SYNC_DEBUG checks each output (engine/finite.h).
void record_grad(Tensor& output, std::string name, const std::vector<Tensor>& inputs, BackwardFn backward);

// Runs the backward pass from `root`. `gradient` defaults to ones for a
// one-element root; otherwise it must match the root's shape. The graph is
// freed on the way unless `retain_graph`, which allows further backward
// passes through it (the gradients accumulate in the leaves as usual).
void run_backward(const Tensor& root, const Tensor& gradient, bool retain_graph = false);

// Reduces a broadcast gradient back to `shape` by summing the expanded dims.
Tensor sum_to_shape(const Tensor& grad, const Shape& shape);

}  // namespace tpp
