#!/usr/bin/python3
"""PyTorch reference of TPP's regularised phase on a CIFAR ResNet, written from docs/TPP-METHOD.md (§2-§4, §3.7),
and the golden fixture that tests/golden/test_golden_tpp_resnet.cpp compares our first regularised steps with.

  /usr/bin/python3 scripts/tpp_reference_resnet.py [--out tests/fixtures]

What it checks is the CNN path of TPP: the gram term of 4-D conv weights, the L2 on pruned filters, the BN term
on the BN that follows each pruned conv, the λ schedule, the hard zeroing in forward-execution order, and SGD with
momentum and weight decay on every parameter, over K steps of a resnet20 in training mode (BN batch statistics,
running statistics updated).

To keep the fixture small the network is resnet20 (option-A shortcuts, §6.4) at stage widths 4/8/16 on 1×28×28
inputs (Fashion-MNIST's shape), and the schedule is compressed (Δ = 0.25 every 2 iterations, so λ reaches its
ceiling 1 at t = 8 and the first pruned layers are hard-zeroed before step K). The pruned layers are
`*layer*.conv1` at PR 0.5 (§2.4-§2.6). The computation runs in float64 from float32 initial values and inputs
(the test runs ours in float64 too: in float32 a ReLU input passing within rounding distance of 0 somewhere in the
14 steps flips, and one step's gradient then moves by 1e-3 where the weights differed by 1e-7); results are stored
as float32.

Per case (the full method and the three ablations of §3.7) the fixture holds, for each step t = 0..K-1, measured
on the weights before the step: λ(t), the cross-entropy, Σ_l R_l (or the diagonal loss), the L2 term
(λ/2)·Σ||pruned rows||² and the BN term (λ/2)·Σ(γ_j² + β_j²); and after the K steps the whole state_dict (full
method) or the pruned layers' weights and their BN's γ and β (ablations).
"""

import argparse
import fnmatch
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import Fixture  # noqa: E402
from make_model_fixtures import CifarResNet  # noqa: E402

STAGE_PR = "*layer*.conv1:0.5"
WIDTH, STEPS, BATCH = 4, 14, 8
SCHEDULE = dict(step=0.25, ceiling=1.0, interval=2, stabilize=20, zero_out_interval=1)
SGD = dict(lr=1e-3, momentum=0.9, weight_decay=5e-4)
CASES = {  # §3.7: name -> (gram term on, BN term on, gram target)
    "tpp": (True, True, "decorrelate"),
    "no_bn": (True, False, "decorrelate"),
    "no_gram": (False, True, "decorrelate"),
    "diagonal": (True, True, "diagonal"),
}


# ---- which filters, and their BN (§2, §3.5) ----

def layer_pr(name, stage_pr):
    """§2.4: glob patterns against the module name; the last matching pair wins."""
    pr = 0.0
    for pair in stage_pr.split(","):
        pattern, ratio = pair.rsplit(":", 1)
        if fnmatch.fnmatchcase(name, pattern):
            pr = float(ratio)
    return pr


def pruned_filters(weight, pr):
    """§2.1-§2.2: the ceil(PR·N) (at most floor(0.995·N)) filters of smallest mean |w|, ascending."""
    n = weight.shape[0]
    count = min(math.ceil(pr * n), math.floor(0.995 * n))
    score = weight.detach().abs().flatten(1).mean(1)
    return sorted(torch.argsort(score, stable=True)[:count].tolist())


def forward_order(model, x):
    """Conv and linear layers in forward-execution order (LAYER's forward hooks), from one eval-mode pass."""
    order = []
    hooks = [m.register_forward_hook(lambda *_, name=name: order.append(name))
             for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    model.eval()
    with torch.no_grad():
        model(x)
    model.train()
    for h in hooks:
        h.remove()
    return order


def following_bn(model, layer_name):
    """§3.5: the first BatchNorm registered after the layer, and its name."""
    seen = False
    for name, m in model.named_modules():
        if name == layer_name:
            seen = True
        elif seen and isinstance(m, nn.BatchNorm2d):
            return name, m
    return None, None


class PrunedLayer:
    def __init__(self, model, name, exec_index, pr):
        self.name, self.exec_index = name, exec_index
        self.module = dict(model.named_modules())[name]
        self.pruned = pruned_filters(self.module.weight, pr)
        self.bn_name, self.bn = following_bn(model, name)


# ---- the penalties (§3.2, §3.4, §3.5, §3.7) ----

def gram_loss(weight, pruned):
    """The code form of §3.2: MSE between G = W Wᵀ and a detached copy with the pruned rows and columns zeroed."""
    w = weight.flatten(1)
    gram = w @ w.t()
    target = gram.detach().clone()
    target[pruned, :] = 0
    target[:, pruned] = 0
    return F.mse_loss(gram, target)


def diagonal_loss(weight, pruned):
    """§3.7 "diagonal": (1/N²)·||W Wᵀ − Ĩ||_F², Ĩ the identity with zeros at the pruned diagonal entries."""
    w = weight.flatten(1)
    target = torch.eye(w.shape[0], dtype=w.dtype)
    target[pruned, pruned] = 0
    return F.mse_loss(w @ w.t(), target)


def half_square_sum(t, rows):
    return 0.5 * t.detach()[rows].pow(2).sum().item() if t is not None else 0.0


class TppReference:
    """One regularised step at a time (§3.6, §4.1, §4.2)."""

    def __init__(self, model, layers, gram, bn, target, step, ceiling, interval, stabilize, zero_out_interval,
                 gram_weight=1000.0):
        self.model, self.layers = model, layers
        self.gram, self.bn = gram, bn
        self.penalty = diagonal_loss if target == "diagonal" else gram_loss
        self.step, self.ceiling, self.interval = step, ceiling, interval
        self.stabilize, self.zero_out_interval, self.gram_weight = stabilize, zero_out_interval, gram_weight
        self.lam, self.switch = 0.0, None  # λ, and t_s once λ has reached its ceiling

    def update_lambda(self, t):
        """§4.1: before iteration t's loss, every K_u iterations while growing; frozen from t_s on."""
        if self.switch is None and t % self.interval == 0:
            self.lam = self.step * (t // self.interval)
            if self.lam >= self.ceiling:
                self.switch = t

    def terms(self):
        """The logged values on the current weights: Σ R_l, (λ/2)·Σ||pruned rows||², (λ/2)·Σ(γ² + β²)."""
        with torch.no_grad():
            gram = sum(self.penalty(l.module.weight, l.pruned).item() for l in self.layers) if self.gram else 0.0
        l2 = sum(half_square_sum(l.module.weight, l.pruned) + half_square_sum(l.module.bias, l.pruned)
                 for l in self.layers)
        bn = sum(half_square_sum(l.bn.weight, l.pruned) + half_square_sum(l.bn.bias, l.pruned)
                 for l in self.layers if l.bn is not None) if self.bn else 0.0
        return gram, self.lam * l2, self.lam * bn

    def loss(self, ce):
        if not self.gram:
            return ce
        return ce + self.gram_weight * self.lam * sum(self.penalty(l.module.weight, l.pruned) for l in self.layers)

    def add_gradients(self):
        """§3.4 and §3.5: λ·x added to the gradients of the pruned rows, biases and BN channels."""
        with torch.no_grad():
            for l in self.layers:
                tensors = [l.module.weight, l.module.bias]
                if self.bn and l.bn is not None:
                    tensors += [l.bn.weight, l.bn.bias]
                for p in tensors:
                    if p is not None:
                        p.grad[l.pruned] += self.lam * p[l.pruned]

    def zero_out(self, t):
        """§4.2 step 6: layer q is hard-zeroed from t_s + zero_out_interval·(q + 1) on."""
        if self.switch is None:
            return
        with torch.no_grad():
            for l in self.layers:
                if t - self.switch >= self.zero_out_interval * (l.exec_index + 1):
                    for p in (l.module.weight, l.module.bias) + ((l.bn.weight, l.bn.bias) if l.bn else ()):
                        if p is not None:
                            p[l.pruned] = 0


def touched_by_penalties(layers):
    """The state_dict keys of the pruned layers' weights and of their BN's affine parameters."""
    names = {f"{l.name}.weight" for l in layers}
    for l in layers:
        names |= {f"{l.bn_name}.weight", f"{l.bn_name}.bias"}
    return names


def run_case(initial, images, labels, gram, bn, target):
    model = CifarResNet(20, 10, 1, width=WIDTH).double()
    model.load_state_dict(initial)
    images = images.double()
    order = forward_order(model, images[:2])
    layers = [PrunedLayer(model, name, q, layer_pr(name, STAGE_PR)) for q, name in enumerate(order)
              if layer_pr(name, STAGE_PR) > 0]
    reg = TppReference(model, layers, gram, bn, target, **SCHEDULE)
    opt = torch.optim.SGD(model.parameters(), **SGD)
    trace = {k: [] for k in ("lambda", "ce", "gram", "l2", "bn")}
    model.train()
    for t in range(STEPS):
        rows = slice((t % 2) * BATCH, (t % 2 + 1) * BATCH)
        reg.update_lambda(t)
        ce = F.cross_entropy(model(images[rows]), labels[rows])
        g, l2, bn_term = reg.terms()
        for key, value in zip(trace, (reg.lam, ce.item(), g, l2, bn_term)):
            trace[key].append(value)
        opt.zero_grad()
        reg.loss(ce).backward()
        reg.add_gradients()
        opt.step()
        reg.zero_out(t)
    return layers, {k: torch.tensor(v, dtype=torch.float64) for k, v in trace.items()}, model.state_dict()


def initial_state():
    """PyTorch's default init, with BN affine parameters and running statistics moved off 1/0 (as in a trained
    model, so that the BN term is not zero), rounded to float32."""
    torch.manual_seed(19)
    model = CifarResNet(20, 10, 1, width=WIDTH)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return {k: v.clone() for k, v in model.state_dict().items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                                  "fixtures"))
    out = ap.parse_args().out
    torch.set_num_threads(1)
    state32 = initial_state()
    images32 = torch.randn(2 * BATCH, 1, 28, 28)
    labels = torch.randint(0, 10, (2 * BATCH,))
    state64 = {k: v.double() if v.is_floating_point() else v for k, v in state32.items()}

    fx = Fixture(f"TPP's first {STEPS} regularised steps on resnet20 (stage widths {WIDTH}/{2 * WIDTH}/{4 * WIDTH}, "
                 f"1x28x28 inputs, '{STAGE_PR}'), TPP-METHOD §3-§4; per case: the per-step trace and the "
                 "state_dict after the steps")
    fx.metadata["generator"] = "scripts/tpp_reference_resnet.py"
    fx.add("input", images32)
    fx.add("labels", labels)
    for key, value in state32.items():
        fx.add(f"initial.{key}", value)
    for case, (gram, bn, target) in CASES.items():
        layers, trace, final = run_case(state64, images32, labels, gram, bn, target)
        for key, values in trace.items():
            fx.add(f"{case}.{key}", values)
        for key, value in final.items():
            if case == "tpp" or key in touched_by_penalties(layers):
                fx.add(f"{case}.final.{key}", value)
        fx.options(case, gram=gram, bn=bn, target=target, steps=STEPS, batch=BATCH, width=WIDTH,
                   stage_pr=STAGE_PR, gram_weight=1000.0, **SCHEDULE, **SGD)
        print(f"{case}: lambda {trace['lambda'][-1]:.2f}, ce {trace['ce'][0]:.4f} -> {trace['ce'][-1]:.4f}, "
              f"gram {trace['gram'][0]:.4g} -> {trace['gram'][-1]:.4g}, l2 {trace['l2'][-1]:.4g}, "
              f"bn {trace['bn'][-1]:.4g}")
    for l in layers:
        fx.add(f"pruned.{l.name}", torch.tensor(l.pruned, dtype=torch.int64))
    fx.save(out, "tpp_resnet20.safetensors")


if __name__ == "__main__":
    main()
