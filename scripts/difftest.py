#!/usr/bin/python3
"""Draws randomized differential-test cases against PyTorch (tests/difftest/).

    /usr/bin/python3 scripts/difftest.py --seed 7 --out cases.safetensors [--cases-per-op 12] [--ops add,exp]

Every case of a seed is drawn from that seed alone (per op, so adding an op
changes no other op's cases): random shapes with empty and size-1 dims,
broadcasting, transposed / sliced / stride-0 (expanded) views, f32 and f64,
and edge values (NaN, +-inf, huge, tiny, -0, ties). For each case PyTorch
computes, in float64 from the very same values, every output and the
gradient of every differentiable input for a drawn output gradient. The
tolerance of each element is scaled by PyTorch's own float32 error against
that float64 reference (f32 cases) or by float64 rounding (f64 cases).

The file is a safetensors file (written as scripts/make_fixtures.py writes
them): per case c<i>.in<k> (the base of input k, before its view), c<i>.out<k>
(reference), c<i>.tol<k> (per-element tolerance), c<i>.alt<k> (PyTorch's own
float32 result, where it is not finite and not the reference's NaN or
infinity: an f32 overflow), c<i>.dy
(the gradient of output 0) and c<i>.grad<k> / c<i>.gtol<k> (the input
gradients). The metadata key "cases" holds the JSON list that says, per case,
the op, its parameters, each input's dtype, view and whether it takes a
gradient, and the refusal we expect where we refuse by design what PyTorch
accepts (mixed f32/f64 operands: tests/difftest/refusals.cpp has the message).
"""

import argparse
import json
import math
import os
import random
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import save_safetensors  # noqa: E402

DTYPES = {"f32": torch.float32, "f64": torch.float64, "i64": torch.int64}
EPS32 = 2.0**-24
HUGE = {torch.float32: 1e30, torch.float64: 1e300}
TINY = {torch.float32: 1e-40, torch.float64: 1e-310}


# ---- drawing shapes, values and views ----


class Draw:
    def __init__(self, seed, op_name, elementwise):
        key = f"{seed}:{op_name}"
        self.rng = random.Random(key)
        self.gen = torch.Generator().manual_seed(self.rng.getrandbits(62))
        # Huge values next to ordinary ones make a sum's float64 reference itself
        # wrong (1e30 + x - 1e30): ops that mix elements get them only all together.
        self.elementwise = elementwise

    def choice(self, seq):
        return self.rng.choice(seq)

    def chance(self, p):
        return self.rng.random() < p

    def int(self, lo, hi):
        return self.rng.randint(lo, hi)

    def size(self, allow_empty=True, hi=4):
        r = self.rng.random()
        if allow_empty and r < 0.07:
            return 0
        return 1 if r < 0.3 else self.int(2, hi)

    def shape(self, lo, hi, allow_empty=True):
        return [self.size(allow_empty) for _ in range(self.int(lo, hi))]

    def dtype(self):
        return self.choice(["f32", "f32", "f64"])

    def profile(self):
        return self.choice(["normal", "normal", "normal", "ties", "edge", "large"])

    def values(self, shape, dtype, profile, positive=False):
        t = DTYPES[dtype]
        if profile == "ties":
            v = torch.randint(-2, 3, shape, generator=self.gen).double()
        elif profile == "large":  # products and sums of these still fit the dtype
            v = torch.randn(shape, generator=self.gen, dtype=torch.float64) * (1e18 if t == torch.float32 else 1e150)
        else:
            v = torch.randn(shape, generator=self.gen, dtype=torch.float64) * self.choice([1.0, 0.1, 10.0])
        if profile == "edge":
            specials = [math.nan, math.inf, -math.inf, 0.0, -0.0, TINY[t], -TINY[t]]
            if self.elementwise:
                specials += [HUGE[t], -HUGE[t]]
            flat = v.view(-1)
            for i in range(flat.numel()):
                if self.chance(0.3):
                    flat[i] = self.choice(specials)
        if positive:
            v = v.abs()
        return v.to(DTYPES[dtype])

    def broadcast_operand(self, out_shape):
        """A shape that broadcasts to out_shape: leading dims dropped, some dims 1."""
        shape = out_shape[self.int(0, len(out_shape)):] if self.chance(0.3) else list(out_shape)
        return [1 if self.chance(0.25) else s for s in shape]

    def view(self, shape):
        """(base shape, view ops) whose view has `shape`: none, transposed, sliced with a step, or expanded."""
        kinds = ["none", "none", "none"]
        if len(shape) >= 2:
            kinds.append("transpose")
        if len(shape) >= 1:
            kinds += ["slice", "expand"]
        kind = self.choice(kinds)
        base = list(shape)
        if kind == "transpose":
            i, j = self.rng.sample(range(len(shape)), 2)
            base[i], base[j] = base[j], base[i]
            return base, [["transpose", i, j]]
        if kind == "slice":
            d = self.int(0, len(shape) - 1)
            base[d] = 2 * shape[d] + 1
            return base, [["slice", d, 1, 1 + 2 * shape[d], 2]]
        if kind == "expand":
            d = self.int(0, len(shape) - 1)
            if shape[d] != 1:
                base[d] = 1
                return base, [["expand", list(shape)]]
        return base, []


def apply_view(t, ops):
    for op in ops:
        if op[0] == "transpose":
            t = t.transpose(op[1], op[2])
        elif op[0] == "slice":
            index = [slice(None)] * t.dim()
            index[op[1]] = slice(op[2], op[3], op[4])
            t = t[tuple(index)]
        elif op[0] == "expand":
            t = t.expand(op[1])
    return t


class Input:
    """One operand: its base values, dtype, view and whether it takes a gradient."""

    def __init__(self, base, dtype, view=(), grad=True):
        self.base, self.dtype, self.view, self.grad = base, dtype, list(view), grad and dtype != "i64"


def float_input(d, shape, dtype, profile, positive=False, grad=True, allow_view=True):
    base_shape, view = d.view(shape) if allow_view else (list(shape), [])
    return Input(d.values(base_shape, dtype, profile, positive), dtype, view, grad)


# ---- the ops: each draws (inputs, params) and computes with PyTorch ----

OPS = {}


def op(name, elementwise=False):
    def register(fn):
        OPS[name] = (fn, elementwise)
        return fn

    return register


def binary_inputs(d, positive_b=False):
    out = d.shape(0, 4)
    dtype = d.dtype()
    profile = d.profile()
    a = float_input(d, d.broadcast_operand(out), dtype, profile)
    b_dtype = ("f64" if dtype == "f32" else "f32") if d.chance(0.08) else dtype
    b = float_input(d, d.broadcast_operand(out), b_dtype, profile, positive=positive_b)
    return [a, b]


for _name, _fn in [("add", torch.add), ("sub", torch.sub), ("mul", torch.mul), ("div", torch.div)]:

    def _binary(d, fn=_fn):
        return binary_inputs(d), {}, lambda x, p, fn=fn: fn(x[0], x[1])

    op(_name, elementwise=True)(_binary)


def unary_case(d, fn, positive=False, params=None):
    dtype = d.dtype()
    x = float_input(d, d.shape(0, 4), dtype, d.profile(), positive=positive and d.chance(0.8))
    return [x], params or {}, fn


@op("add_scalar", elementwise=True)
def _(d):
    s = d.choice([0.0, 1.5, -3.0, 1e3])
    return unary_case(d, lambda x, p: x[0] + p["scalar"], params={"scalar": s})


@op("mul_scalar", elementwise=True)
def _(d):
    s = d.choice([0.0, 2.0, -0.5, 1e-3])
    return unary_case(d, lambda x, p: x[0] * p["scalar"], params={"scalar": s})


@op("rsub", elementwise=True)
def _(d):
    s = d.choice([0.0, 1.0, -2.5])
    return unary_case(d, lambda x, p: p["scalar"] - x[0], params={"scalar": s})


@op("rdiv", elementwise=True)
def _(d):
    s = d.choice([1.0, -2.0, 0.5])
    return unary_case(d, lambda x, p: p["scalar"] / x[0], params={"scalar": s})


@op("pow", elementwise=True)
def _(d):
    e = d.choice([0.0, 1.0, 2.0, 3.0, 0.5, -1.0, -2.0, 1.5, -0.5])
    return unary_case(d, lambda x, p: torch.pow(x[0], p["exponent"]), positive=e != int(e),
                      params={"exponent": e})


for _name, _fn, _positive in [("neg", torch.neg, False), ("exp", torch.exp, False), ("log", torch.log, True),
                              ("sqrt", torch.sqrt, True), ("abs", torch.abs, False), ("relu", torch.relu, False)]:

    def _unary(d, fn=_fn, positive=_positive):
        return unary_case(d, lambda x, p, fn=fn: fn(x[0]), positive=positive)

    op(_name, elementwise=True)(_unary)


def reduce_dims(d, ndim):
    if ndim == 0:  # a 0-d tensor takes dim 0 and -1
        return d.choice([[], [0], [-1]])
    if d.chance(0.2):
        return []
    dims = sorted(d.rng.sample(range(ndim), d.int(1, ndim)))
    return [k - ndim if d.chance(0.3) else k for k in dims]


for _name, _fn in [("sum", torch.sum), ("mean", torch.mean)]:

    def _reduce(d, fn=_fn):
        shape = d.shape(0, 4)
        x = float_input(d, shape, d.dtype(), d.profile())
        dims = reduce_dims(d, len(shape))
        params = {"dims": dims, "keepdim": bool(dims) and d.chance(0.4)}
        if not dims:  # over every element
            return [x], params, lambda t, p, fn=fn: fn(t[0])
        return [x], params, lambda t, p, fn=fn: fn(t[0], dim=p["dims"], keepdim=p["keepdim"])

    op(_name)(_reduce)


@op("max")
def _(d):
    shape = d.shape(0, 4, allow_empty=False)
    return [float_input(d, shape, d.dtype(), d.profile())], {}, lambda x, p: torch.max(x[0])


@op("max_dim")
def _(d):
    shape = d.shape(1, 4, allow_empty=False)
    if len(shape) > 1 and d.chance(0.15):  # an empty tensor, reduced over a dim that is not the empty one
        shape[d.int(0, len(shape) - 1)] = 0
    x = float_input(d, shape, d.dtype(), d.profile())
    dims = [k for k in range(len(shape)) if shape[k] > 0]
    dim = d.choice(dims)
    params = {"dim": dim - len(shape) if d.chance(0.3) else dim, "keepdim": d.chance(0.4)}
    return [x], params, lambda t, p: tuple(torch.max(t[0], dim=p["dim"], keepdim=p["keepdim"]))


for _name, _fn in [("softmax", torch.softmax), ("log_softmax", torch.log_softmax)]:

    def _softmax(d, fn=_fn):
        shape = d.shape(0, 4)
        x = float_input(d, shape, d.dtype(), d.profile())
        dim = d.int(-max(len(shape), 1), max(len(shape), 1) - 1)  # a 0-d tensor takes dim 0 and -1
        return [x], {"dim": dim}, lambda t, p, fn=fn: fn(t[0], p["dim"])

    op(_name)(_softmax)


@op("frobenius_norm")
def _(d):
    x = float_input(d, d.shape(0, 4), d.dtype(), d.profile())
    return [x], {}, lambda t, p: torch.linalg.norm(t[0].reshape(-1))


@op("matmul")
def _(d):
    dtype = d.dtype()
    m, k, n = d.size(), d.size(), d.size()
    batch = d.shape(1, 2)
    a_shape = d.choice([[k], [m, k], d.broadcast_operand(batch) + [m, k]])
    b_shape = d.choice([[k], [k, n], d.broadcast_operand(batch) + [k, n]])
    profile = d.choice(["normal", "normal", "ties", "edge"])
    b_dtype = ("f64" if dtype == "f32" else "f32") if d.chance(0.08) else dtype
    return ([float_input(d, a_shape, dtype, profile), float_input(d, b_shape, b_dtype, profile)], {},
            lambda t, p: torch.matmul(t[0], t[1]))


@op("linear")
def _(d):
    dtype = d.dtype()
    lead = d.shape(0, 3)
    features_in, features_out = d.size(), d.size()
    profile = d.choice(["normal", "normal", "ties", "edge"])
    x = float_input(d, lead + [features_in], dtype, profile)
    w = float_input(d, [features_out, features_in], dtype, profile)
    inputs = [x, w]
    if d.chance(0.6):
        inputs.append(float_input(d, [features_out], dtype, profile))
    return inputs, {}, lambda t, p: F.linear(t[0], t[1], t[2] if len(t) > 2 else None)


@op("conv2d")
def _(d):
    dtype = d.dtype()
    groups = d.choice([1, 1, 2])
    n, cg, kg = d.int(0, 2), d.int(1, 2), d.int(1, 2)
    h, w = d.int(1, 6), d.int(1, 6)
    kh, kw = d.int(1, 3), d.int(1, 3)
    params = {"stride": [d.int(1, 2), d.int(1, 2)], "padding": [d.int(0, 2), d.int(0, 2)],
              "dilation": [d.int(1, 2), d.int(1, 2)], "groups": groups}
    profile = d.choice(["normal", "normal", "ties", "edge"])
    inputs = [float_input(d, [n, cg * groups, h, w], dtype, profile),
              float_input(d, [kg * groups, cg, kh, kw], dtype, profile)]
    if d.chance(0.6):
        inputs.append(float_input(d, [kg * groups], dtype, profile))
    return inputs, params, lambda t, p: F.conv2d(t[0], t[1], t[2] if len(t) > 2 else None, stride=p["stride"],
                                                 padding=p["padding"], dilation=p["dilation"], groups=p["groups"])


def pool_params(d):
    kernel = [d.int(1, 3), d.int(1, 3)]
    return {"kernel": kernel, "stride": [d.int(1, 3), d.int(1, 3)],
            "padding": [d.int(0, kernel[0] // 2), d.int(0, kernel[1] // 2)], "ceil_mode": d.chance(0.3)}


def pool_input(d):
    shape = [d.int(0, 2), d.int(1, 3), d.int(1, 6), d.int(1, 6)]
    return float_input(d, shape, d.dtype(), d.profile())


def window_without_taps(size, p, axis):
    """Whether some dilated window along `axis` has all its taps in the padding: PyTorch 1.13's CPU
    max_pool2d corrupts its heap there (tests/ops/test_pool.cpp checks ours: -inf, no gradient)."""
    k, s, pad, dil = p["kernel"][axis], p["stride"][axis], p["padding"][axis], p["dilation"][axis]
    span = size + 2 * pad - dil * (k - 1) - 1 + (s - 1 if p["ceil_mode"] else 0)
    out = span // s + 1
    if p["ceil_mode"] and (out - 1) * s >= size + pad:
        out -= 1
    return any(all(not 0 <= o * s - pad + j * dil < size for j in range(k)) for o in range(max(out, 0)))


@op("max_pool2d")
def _(d):
    params = pool_params(d)
    params["dilation"] = [d.choice([1, 1, 2, 3]), d.choice([1, 1, 2])]
    x = pool_input(d)
    shape = apply_view(x.base, x.view).shape
    if window_without_taps(shape[2], params, 0) or window_without_taps(shape[3], params, 1):
        raise ValueError("a window without taps")  # drawn again
    return [x], params, lambda t, p: F.max_pool2d(t[0], p["kernel"], p["stride"], p["padding"],
                                                  dilation=p["dilation"], ceil_mode=p["ceil_mode"])


@op("adaptive_avg_pool2d")
def _(d):
    params = {"output_size": [d.int(1, 4), d.int(1, 4)]}
    return [pool_input(d)], params, lambda t, p: F.adaptive_avg_pool2d(t[0], p["output_size"])


@op("avg_pool2d")
def _(d):
    params = pool_params(d)
    params["count_include_pad"] = d.chance(0.5)
    return [pool_input(d)], params, lambda t, p: F.avg_pool2d(t[0], p["kernel"], p["stride"], p["padding"],
                                                             ceil_mode=p["ceil_mode"],
                                                             count_include_pad=p["count_include_pad"])


@op("global_avg_pool2d")
def _(d):
    shape = [d.int(0, 2), d.int(1, 3), d.int(1, 5), d.int(1, 5)]
    return [float_input(d, shape, d.dtype(), d.profile())], {}, lambda t, p: t[0].mean(dim=(2, 3))


@op("constant_pad")
def _(d):
    shape = d.shape(1, 4)
    x = float_input(d, shape, d.dtype(), d.profile())
    pad = [d.int(-3, 2) for _ in range(2 * d.int(1, len(shape)))]
    params = {"pad": pad, "value": d.choice([0.0, 1.5, -2.0])}
    return [x], params, lambda t, p: F.pad(t[0], p["pad"], value=p["value"])


@op("batch_norm2d")
def _(d):
    dtype = d.dtype()
    c = d.int(1, 3)
    shape = [d.int(1, 3), c, d.int(1, 4), d.int(1, 4)]
    training = d.chance(0.7)
    if training and shape[0] * shape[2] * shape[3] == 1:
        shape[0] = 2  # PyTorch refuses one value per channel in training
    profile = d.choice(["normal", "normal", "ties", "large_mean"])
    if profile == "large_mean":
        x = Input((1000 + 0.01 * torch.randn(shape, generator=d.gen, dtype=torch.float64)).to(DTYPES[dtype]), dtype)
    else:
        x = float_input(d, shape, dtype, profile)
    affine = d.chance(0.7)
    running = d.chance(0.7) or not training
    inputs = [x]
    inputs.append(float_input(d, [c], dtype, "normal") if affine else None)
    inputs.append(float_input(d, [c], dtype, "normal") if affine else None)
    inputs.append(Input(d.values([c], dtype, "normal"), dtype, grad=False) if running else None)
    inputs.append(Input(d.values([c], dtype, "normal", positive=True) + 0.5, dtype, grad=False) if running else None)
    params = {"training": training, "momentum": d.choice([0.1, 0.5, 1.0]), "eps": d.choice([1e-5, 1e-3])}

    def run(t, p):
        if t[0].dtype == torch.float64:
            return batch_norm_by_formula(t, p)
        rm = t[3].clone() if t[3] is not None else None
        rv = t[4].clone() if t[4] is not None else None
        y = F.batch_norm(t[0], rm, rv, t[1], t[2], training=p["training"] or rm is None, momentum=p["momentum"],
                         eps=p["eps"])
        return (y,) + tuple(r for r in (rm, rv) if r is not None)

    return inputs, params, run


def batch_norm_by_formula(t, p):
    """Batch norm written out with autograd ops: the float64 reference. PyTorch's own float64 kernel is
    not exact enough where its gradient cancels (two values per channel: 1e-316 for 1.3e-7)."""
    x, w, b, rm, rv = t
    view = [1, -1, 1, 1]
    batch = p["training"] or rm is None
    if batch:
        mean = x.mean(dim=(0, 2, 3))
        var = ((x - mean.view(view)) ** 2).mean(dim=(0, 2, 3))
    else:
        mean, var = rm, rv
    y = (x - mean.view(view)) / torch.sqrt(var.view(view) + p["eps"])
    if w is not None:
        y = y * w.view(view) + b.view(view)
    if rm is None:
        return (y,)
    if p["training"]:
        count = x.numel() // x.shape[1]
        m = p["momentum"]
        rm = (1 - m) * rm + m * mean.detach()
        rv = (1 - m) * rv + m * var.detach() * count / (count - 1)
    return y, rm, rv


@op("cross_entropy")
def _(d):
    dtype = d.dtype()
    c = d.int(1, 5)
    shape = d.choice([[c], [d.int(0, 4), c], [d.int(1, 3), c] + d.shape(1, 2)])
    logits = float_input(d, shape, dtype, d.choice(["normal", "normal", "ties", "edge"]))
    target_shape = shape[:1] + shape[2:] if len(shape) > 1 else []
    ignore_index = d.choice([-100, -100, 0, 2])
    target = torch.randint(0, c, target_shape, generator=d.gen)
    if d.chance(0.4):  # some rows ignored
        target = torch.where(torch.rand(target_shape, generator=d.gen) < 0.4, torch.tensor(ignore_index), target)
    inputs = [logits, Input(target, "i64")]
    if d.chance(0.4):
        inputs.append(Input(d.values([c], dtype, "normal", positive=True), dtype, grad=False))
    params = {"label_smoothing": d.choice([0.0, 0.0, 0.1, 1.0]), "ignore_index": ignore_index,
              "reduction": d.choice(["mean", "mean", "sum", "none"])}
    return inputs, params, lambda t, p: F.cross_entropy(t[0], t[1], t[2] if len(t) > 2 else None,
                                                        ignore_index=p["ignore_index"], reduction=p["reduction"],
                                                        label_smoothing=p["label_smoothing"])


# ---- computing references and tolerances ----


def batch_norm_gain(inputs, params):
    """The factor batch norm's gradients apply to dy: |weight| / sigma (the input gradient), sigma = sqrt(var +
    eps) with the batch's variance (in training, or without running statistics) or the running one; in
    float64 also max |x| / sigma (the weight gradient sums dy * (x - mean) / sigma, and x - mean is rounded
    at the size of x: float64 centres no better, in PyTorch or here; float32 kernels centre in more
    precision, so there a bug that rounds the mean still shows)."""
    x, w, _, running_mean, running_var = [None if t is None else apply_view(t.base.double(), t.view) for t in inputs]
    var = x.var(dim=(0, 2, 3), unbiased=False) if params["training"] or running_mean is None else running_var
    numerator = w.abs() if w is not None else torch.ones_like(var)
    if inputs[0].dtype == "f64" and x.numel():
        numerator = numerator + x.abs().amax(dim=(0, 2, 3))
    gain = numerator / torch.sqrt(var + params["eps"])
    gain = gain[torch.isfinite(gain)]
    return max([1.0] + gain.tolist())


def cross_entropy_gain(inputs, params):
    """The factor cross_entropy's gradient applies to dy: its largest class weight."""
    if len(inputs) < 3 or inputs[2] is None:
        return 1.0
    w = apply_view(inputs[2].base.double(), inputs[2].view).abs()
    return max([1.0] + w[torch.isfinite(w)].tolist())


# How much larger than dy the terms an op's input gradient sums may be (default 1): the gradient's rounding
# floor scales with them, where they cancel to a result far smaller than they are.
GRAD_GAIN = {"batch_norm2d": batch_norm_gain, "cross_entropy": cross_entropy_gain}


def abs_gradient(inputs, fn, params, dy):
    """For an elementwise op: per input, the sum of |dy * partial derivative| over the elements its gradient
    adds up (a broadcast operand's, through its view), in float64. Its rounding is what the gradient's
    rounding scales with where those terms cancel. Non-finite sums count as 0 (the reference is not finite
    there)."""
    leaves, views = [], []
    for x in inputs:
        base = x.base.double().clone().requires_grad_(x.grad)
        leaves.append(base)
        views.append(apply_view(base, x.view))
    out_shape = torch.broadcast_shapes(*[v.shape for v in views])
    expanded = []
    for v in views:
        e = v.expand(out_shape)
        if e.requires_grad:
            e.register_hook(lambda g: g.abs())
        expanded.append(e)
    out = as_tuple(fn(expanded, params))[0]
    wanted = [leaf for leaf in leaves if leaf.requires_grad]
    got = iter(torch.autograd.grad(out, wanted, dy.double().abs(), allow_unused=True) if wanted else [])
    sums = []
    for leaf in leaves:
        g = next(got) if leaf.requires_grad else None
        sums.append(None if g is None else torch.nan_to_num(g.detach(), nan=0.0, posinf=0.0, neginf=0.0))
    return sums



def as_tuple(y):
    return y if isinstance(y, tuple) else (y,)


def evaluate(inputs, fn, params, dtype_of, dy=None):
    """Outputs (detached) and, for dy, the gradient of each input's base, all with inputs cast by dtype_of."""
    leaves, views = [], []
    for x in inputs:
        if x is None:
            leaves.append(None)
            views.append(None)
            continue
        base = x.base if x.dtype == "i64" else x.base.to(dtype_of(x.dtype))
        base = base.clone().requires_grad_(x.grad)
        leaves.append(base)
        views.append(apply_view(base, x.view))
    outs = as_tuple(fn(views, params))
    grads = None
    if dy is not None:
        wanted = [leaf for leaf in leaves if leaf is not None and leaf.requires_grad]
        got = torch.autograd.grad(outs[0], wanted, dy.to(outs[0].dtype), allow_unused=True) if wanted else []
        got = iter(got)
        grads = []
        for leaf in leaves:
            if leaf is not None and leaf.requires_grad:
                g = next(got)
                grads.append(torch.zeros_like(leaf) if g is None else g.detach())
            else:
                grads.append(None)
    return [o.detach() for o in outs], grads


def tolerance(ref, own32, dtype, elementwise):
    """Per-element tolerance: 4x PyTorch's float32 error there, plus (for ops that mix elements) its worst
    error anywhere in the tensor, plus a few ulps of the value. float64 cases scale that float32 error
    down by 2^-25 (16x the ratio of the epsilons: it measures how ill-conditioned the element is)."""
    ref = ref.double()
    finite = torch.isfinite(ref)
    err = torch.where(finite & torch.isfinite(own32), (own32 - ref).abs(), torch.zeros_like(ref))
    worst = err.max().item() if err.numel() and not elementwise else 0.0
    tol = 4 * err + worst + 8 * EPS32 * ref.abs().where(finite, torch.zeros_like(ref))
    if dtype == "f64":
        scale = ref.abs().where(finite, torch.zeros_like(ref))
        tol = tol * 2.0**-25 + 1e-12 * (scale + (scale.max().item() if scale.numel() else 0.0))
    return tol.where(finite, torch.zeros_like(tol))


def compute_case(inputs, fn, params, dtype, elementwise, gen):
    outs64, _ = evaluate(inputs, fn, params, lambda t: torch.float64)
    dy = None
    if outs64[0].is_floating_point():
        dy = torch.randn(outs64[0].shape, generator=gen, dtype=torch.float64).to(DTYPES[dtype])
    outs64, grads64 = evaluate(inputs, fn, params, lambda t: torch.float64, dy)
    outs32, grads32 = evaluate(inputs, fn, params, lambda t: torch.float32, dy)
    return outs64, grads64, outs32, grads32, dy


def add_compared(tensors, prefix, ref, own32, dtype, elementwise, tol_name, alt_name, floor=0.0):
    tensors[prefix] = ref.double() if ref.is_floating_point() else ref
    if not ref.is_floating_point():
        return
    own32 = own32.double()
    tensors[tol_name] = tolerance(ref, own32, dtype, elementwise) + floor
    ref = ref.double()
    same_class = (own32 == ref) | (torch.isnan(own32) & torch.isnan(ref))
    alt = ~torch.isfinite(own32) & ~same_class  # f32 overflowed, or inf - inf where float64 kept one side finite
    if alt.any():
        tensors[alt_name] = own32


def draw_case(seed, name, index):
    fn_draw, elementwise = OPS[name]
    d = Draw(seed, f"{name}#{index}", elementwise)
    for _ in range(50):
        try:
            inputs, params, fn = fn_draw(d)
            computed = compute_case(inputs, fn, params, case_dtype(inputs), elementwise, d.gen)
        except (RuntimeError, IndexError, ValueError):
            continue  # PyTorch refuses this draw too: draw again
        return inputs, params, fn, elementwise, computed
    raise SystemExit(f"difftest: {name}: no valid case in 50 draws (seed {seed}, case {index})")


def case_dtype(inputs):
    return next(x.dtype for x in inputs if x is not None and x.dtype != "i64")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--cases-per-op", type=int, default=12)
    parser.add_argument("--ops", default="", help="comma-separated op names (default: every op)")
    args = parser.parse_args()
    names = [n for n in args.ops.split(",") if n] or sorted(OPS)
    unknown = [n for n in names if n not in OPS]
    if unknown:
        parser.error(f"unknown op(s) {', '.join(unknown)}; known: {', '.join(sorted(OPS))}")
    torch.set_num_threads(1)
    tensors, cases = {}, []
    for name in names:
        for index in range(args.cases_per_op):
            inputs, params, fn, elementwise, (outs64, grads64, outs32, grads32, dy) = draw_case(args.seed, name, index)
            c = f"c{len(cases)}"
            dtype = case_dtype(inputs)
            dtypes = {x.dtype for x in inputs if x is not None and x.dtype != "i64"}
            entry = {"name": f"{name}#{index}", "op": name, "params": params, "dtype": dtype, "inputs": [],
                     "outputs": len(outs64)}
            if len(dtypes) > 1:
                entry["refusal"] = "mixed_dtype"
            for k, x in enumerate(inputs):
                if x is None:
                    entry["inputs"].append(None)
                    continue
                tensors[f"{c}.in{k}"] = x.base
                entry["inputs"].append({"dtype": x.dtype, "view": x.view, "grad": x.grad})
            for k, ref in enumerate(outs64):
                add_compared(tensors, f"{c}.out{k}", ref, outs32[k], dtype, elementwise, f"{c}.tol{k}", f"{c}.alt{k}")
            if dy is not None:
                tensors[f"{c}.dy"] = dy
                # A gradient sums terms of the size of dy (a broadcast operand's, a softmax row's), times
                # the op's gain: where they cancel, rounding leaves a few ulps of them that PyTorch's own
                # result may lack by luck. An elementwise op's terms are known exactly (abs_gradient).
                eps = EPS32 if dtype == "f32" else 2.0**-53
                gain = GRAD_GAIN[name](inputs, params) if name in GRAD_GAIN else 1.0
                floor = 8 * eps * gain * (dy.double().abs().max().item() if dy.numel() else 0)
                terms = abs_gradient([x for x in inputs if x is not None], fn, params, dy) if elementwise else None
                for k, g in enumerate(grads64):
                    if g is not None:
                        g_floor = floor + (8 * eps * terms[k] if terms is not None else 0.0)
                        add_compared(tensors, f"{c}.grad{k}", g, grads32[k], dtype, False, f"{c}.gtol{k}",
                                     f"{c}.galt{k}", g_floor)
            cases.append(entry)
    metadata = {"generator": "scripts/difftest.py", "seed": str(args.seed), "cases": json.dumps(cases)}
    save_safetensors(args.out, tensors, metadata)


if __name__ == "__main__":
    main()
