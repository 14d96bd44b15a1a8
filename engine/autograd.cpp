#include "engine/autograd.h"

#include <unordered_map>

#include "engine/finite.h"
#include "engine/strided.h"
#if TPP_WITH_CUDA
#include "engine/cuda/tensor_transfer.h"
#endif

namespace tpp {

namespace {
thread_local bool g_grad_enabled = true;

void check_grad_shape(const Tensor& g, const Shape& expected, const std::string& where) {
  TPP_CHECK(g.sizes() == expected, "backward: {} produced a gradient of shape {} for a tensor of shape {}", where,
            shape_str(g.sizes()), shape_str(expected));
}

void accumulate_leaf(TensorImpl& leaf, const Tensor& g, const std::string& from) {
  check_grad_shape(g, leaf.sizes, from);
  if (!leaf.grad) {
    Tensor fresh = empty(leaf.sizes, {.dtype = leaf.dtype, .device = leaf.storage->device()});
    fresh.copy_(g);
    leaf.grad = fresh.impl_ptr();
  } else {
    accumulate_(Tensor(leaf.grad), g);
  }
}

// Nodes reachable from root with the number of graph edges pointing at each.
std::unordered_map<Node*, int> count_dependencies(Node* root) {
  std::unordered_map<Node*, int> deps{{root, 0}};
  std::vector<Node*> stack{root};
  while (!stack.empty()) {
    Node* node = stack.back();
    stack.pop_back();
    for (const Edge& e : node->inputs) {
      if (!e.node) continue;
      auto [it, inserted] = deps.try_emplace(e.node.get(), 0);
      ++it->second;
      if (inserted) stack.push_back(e.node.get());
    }
  }
  return deps;
}

}  // namespace

bool grad_enabled() { return g_grad_enabled; }

NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }

EnableGradGuard::EnableGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = true; }
EnableGradGuard::~EnableGradGuard() { g_grad_enabled = previous_; }

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record_grad(Tensor& output, std::string name, const std::vector<Tensor>& inputs, BackwardFn backward) {
  check_op_output(output, name, inputs);  // every op comes through here, with grad or without
  if (!needs_grad(inputs)) return;
  auto node = std::make_shared<Node>();
  node->name = std::move(name);
  node->backward = std::move(backward);
  node->output_sizes = output.sizes();
  node->output_dtype = output.dtype();
  node->output_device = output.device();
  node->inputs.reserve(inputs.size());
  for (const Tensor& t : inputs) {
    Edge e;
    if (t.defined() && t.requires_grad()) {
      if (t.grad_fn())
        e.node = t.grad_fn();
      else
        e.leaf = t.impl_ptr();
    }
    node->inputs.push_back(std::move(e));
  }
  output.impl().requires_grad = true;
  output.impl().grad_fn = std::move(node);
}

void run_backward(const Tensor& root, const Tensor& gradient, bool retain_graph) {
  TPP_CHECK(root.requires_grad(), "backward: tensor of shape {} does not require grad", shape_str(root.sizes()));
  Tensor seed = gradient;
  if (!seed.defined()) {
    TPP_CHECK(root.numel() == 1, "backward: a gradient is needed for a non-scalar output of shape {}",
              shape_str(root.sizes()));
    seed = ones(root.sizes(), {.dtype = root.dtype(), .device = root.device()});
  }
  check_grad_shape(seed, root.sizes(), "the seed gradient");
  NoGradGuard no_grad;
  if (root.is_leaf()) {
    accumulate_leaf(root.impl(), seed, "the seed gradient");
    return;
  }

  Node* start = root.grad_fn().get();
  std::unordered_map<Node*, int> deps = count_dependencies(start);
  std::unordered_map<Node*, Tensor> pending{{start, seed}};
  std::vector<Node*> ready{start};
  while (!ready.empty()) {
    Node* node = ready.back();
    ready.pop_back();
    const Tensor grad_out = std::move(pending[node]);
    pending.erase(node);
    TPP_CHECK(node->backward != nullptr, "backward: the graph through '{}' was already freed by an earlier backward",
              node->name);
    const Grads grads = [&] {
      const BackwardScope scope(node->name);
      return node->backward(grad_out);
    }();
    if (!retain_graph) node->backward = nullptr;  // frees what the op saved
    TPP_CHECK(grads.size() == node->inputs.size(), "backward: '{}' returned {} gradients for {} inputs", node->name,
              grads.size(), node->inputs.size());
    for (size_t i = 0; i < grads.size(); ++i) {
      const Edge& e = node->inputs[i];
      if (!e.active()) continue;
      const Tensor& g = grads[i];
      TPP_CHECK(g.defined(), "backward: '{}' returned no gradient for input {}, which requires grad", node->name, i);
      check_backward_output(g, node->name, i);
      if (e.leaf) {
        accumulate_leaf(*e.leaf, g, node->name);
        continue;
      }
      Node* next = e.node.get();
      check_grad_shape(g, next->output_sizes, node->name);
      auto [it, inserted] = pending.try_emplace(next, g);
      if (!inserted) {  // out of place: g or the earlier gradient may alias saved tensors
        Tensor sum = empty(next->output_sizes, {.dtype = next->output_dtype, .device = next->output_device});
        sum.copy_(it->second);
        accumulate_(sum, g);
        it->second = sum;
      }
      if (--deps[next] == 0) ready.push_back(next);
    }
  }
}

Tensor sum_to_shape(const Tensor& grad, const Shape& shape) {
  if (grad.sizes() == shape) return grad;
  TPP_CHECK(grad.dim() >= static_cast<int64_t>(shape.size()), "sum_to_shape: cannot reduce {} to {}",
            shape_str(grad.sizes()), shape_str(shape));
  const size_t lead = grad.sizes().size() - shape.size();
  for (size_t d = 0; d < shape.size(); ++d)
    TPP_CHECK(shape[d] == grad.sizes()[lead + d] || shape[d] == 1, "sum_to_shape: cannot reduce {} to {}",
              shape_str(grad.sizes()), shape_str(shape));
  Tensor out = zeros(shape, {.dtype = grad.dtype(), .device = grad.device()});
#if TPP_WITH_CUDA
  if (grad.device().is_cuda()) {
    cuda::sum_to(out, grad);
    return out;
  }
#endif
  // Strides of `out` seen from grad's shape: 0 on broadcast dims.
  Shape out_strides(grad.sizes().size(), 0);
  for (size_t d = 0; d < shape.size(); ++d)
    if (shape[d] != 1) out_strides[lead + d] = out.strides()[d];
  dispatch_floating(grad.dtype(), "sum_to_shape", [&](auto t) {
    using T = decltype(t);
    T* dst = out.data<T>();
    const T* src = grad.data<T>();
    StridedLoop<2>(grad.sizes(), {&out_strides, &grad.strides()}).run([&](const auto& o) { dst[o[0]] += src[o[1]]; });
  });
  return out;
}

}  // namespace tpp
