#!/usr/bin/python3
"""Writes the PyTorch golden fixtures that tests/golden/ compares our ops with.

Run from anywhere with the Debian PyTorch:  /usr/bin/python3 scripts/make_fixtures.py [--out DIR]

Inputs, parameters and gradients-of-outputs are drawn in float32 (as in real
training) from fixed seeds. Every reference result is computed by PyTorch in
float64 from those float32 values and stored rounded to float32, so a
fixture carries no float32 accumulation error of its own: the difference a
test sees is our error alone. Per-case options live in the file's metadata as
JSON ("options.<case>"), so the C++ tests read them instead of repeating them.

The files are safetensors written here with json+struct (no dependency on the
safetensors package). Re-running gives byte-identical files.
"""

import argparse
import json
import os
import struct
import sys

import torch
import torch.nn.functional as F

DTYPE_NAMES = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64", torch.uint8: "U8"}


def save_safetensors(path, tensors, metadata):
    """Reference layout: widest dtype first, then by name; header padded to 8 bytes."""
    assert sys.byteorder == "little"
    items = sorted(tensors.items(), key=lambda kv: (-kv[1].element_size(), kv[0]))
    header, blobs, offset = {}, [], 0
    for name, t in items:
        t = t.detach().contiguous().cpu()
        data = t.numpy().tobytes()
        header[name] = {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for data in blobs:
            f.write(data)
    os.replace(tmp, path)
    print(f"{os.path.relpath(path)}: {len(tensors)} tensors, {os.path.getsize(path)} bytes")


class Fixture:
    """Collects float32 tensors and per-case options for one file."""

    def __init__(self, description):
        self.tensors = {}
        self.metadata = {
            "generator": "scripts/make_fixtures.py",
            "reference": "float32 inputs; results computed in float64 by PyTorch, stored as float32",
            "description": description,
        }

    def add(self, name, t):
        assert name not in self.tensors, name
        t = t.detach()
        self.tensors[name] = t.float() if t.is_floating_point() else t

    def options(self, case, **opts):
        self.metadata["options." + case] = json.dumps(opts, sort_keys=True)

    def save(self, out_dir, file_name):
        save_safetensors(os.path.join(out_dir, file_name), self.tensors, self.metadata)


def leaf64(t):
    """float64 copy of a float32 tensor that records gradients."""
    return t.double().requires_grad_()


def randn32(*shape, scale=1.0):
    return torch.randn(*shape, dtype=torch.float32) * scale


# ---- conv2d ----

CONV_CASES = [
    # name, N, Cin, H, W, Cout, kernel, stride, padding, dilation, groups, bias
    ("stride1_pad0", 2, 3, 7, 7, 4, (3, 3), (1, 1), (0, 0), (1, 1), 1, True),
    ("stride1_pad1_nobias", 2, 3, 6, 6, 4, (3, 3), (1, 1), (1, 1), (1, 1), 1, False),
    ("stride2_pad1", 2, 4, 8, 8, 6, (3, 3), (2, 2), (1, 1), (1, 1), 1, True),
    ("stride1_pad2_kernel5", 1, 3, 6, 7, 2, (5, 5), (1, 1), (2, 2), (1, 1), 1, True),
    ("stride2_pad2_kernel5", 2, 2, 9, 9, 3, (5, 5), (2, 2), (2, 2), (1, 1), 1, False),
    ("dilation2_pad2", 2, 3, 8, 8, 4, (3, 3), (1, 1), (2, 2), (2, 2), 1, True),
    ("groups2", 2, 4, 6, 6, 6, (3, 3), (1, 1), (1, 1), (1, 1), 2, True),
    ("pointwise_stride2_nobias", 2, 4, 8, 8, 8, (1, 1), (2, 2), (0, 0), (1, 1), 1, False),
    ("rectangular", 2, 3, 7, 9, 4, (3, 2), (2, 1), (1, 0), (1, 2), 1, True),
]


def make_conv2d(out_dir):
    fx = Fixture("conv2d forward and backward; x [N,Cin,H,W], weight [Cout,Cin/groups,kh,kw]")
    for name, n, cin, h, w, cout, kernel, stride, padding, dilation, groups, has_bias in CONV_CASES:
        x = randn32(n, cin, h, w)
        weight = randn32(cout, cin // groups, *kernel, scale=0.3)
        bias = randn32(cout) if has_bias else None
        x64, w64 = leaf64(x), leaf64(weight)
        b64 = leaf64(bias) if has_bias else None
        y = F.conv2d(x64, w64, b64, stride=stride, padding=padding, dilation=dilation, groups=groups)
        grad_output = randn32(*y.shape)
        y.backward(grad_output.double())
        fx.add(f"{name}.x", x)
        fx.add(f"{name}.weight", weight)
        fx.add(f"{name}.output", y)
        fx.add(f"{name}.grad_output", grad_output)
        fx.add(f"{name}.grad_input", x64.grad)
        fx.add(f"{name}.grad_weight", w64.grad)
        if has_bias:
            fx.add(f"{name}.bias", bias)
            fx.add(f"{name}.grad_bias", b64.grad)
        fx.options(name, stride=list(stride), padding=list(padding), dilation=list(dilation), groups=groups,
                   bias=has_bias)
    fx.save(out_dir, "conv2d.safetensors")


# ---- batch_norm2d ----

def make_batch_norm2d(out_dir):
    fx = Fixture("batch_norm2d: 3 training steps on 3 batches updating running stats (momentum 0.1, eps 1e-5), "
                 "then eval with the updated stats; 'noaffine' trains without weight, bias or running stats")
    n, c, h, w = 4, 3, 5, 5
    weight = torch.rand(c) + 0.5
    bias = randn32(c, scale=0.1)
    fx.add("weight", weight)
    fx.add("bias", bias)
    running_mean = torch.zeros(c, dtype=torch.float64)
    running_var = torch.ones(c, dtype=torch.float64)
    for step in range(1, 4):
        x = randn32(n, c, h, w, scale=2.0) + 0.5 * step
        x64, w64, b64 = leaf64(x), leaf64(weight), leaf64(bias)
        y = F.batch_norm(x64, running_mean, running_var, w64, b64, training=True, momentum=0.1, eps=1e-5)
        grad_output = randn32(*y.shape)
        y.backward(grad_output.double())
        prefix = f"train{step}"
        fx.add(f"{prefix}.x", x)
        fx.add(f"{prefix}.grad_output", grad_output)
        fx.add(f"{prefix}.output", y)
        fx.add(f"{prefix}.grad_input", x64.grad)
        fx.add(f"{prefix}.grad_weight", w64.grad)
        fx.add(f"{prefix}.grad_bias", b64.grad)
        fx.add(f"{prefix}.running_mean", running_mean.clone())
        fx.add(f"{prefix}.running_var", running_var.clone())

    x = randn32(n, c, h, w, scale=2.0) + 1.0
    x64, w64, b64 = leaf64(x), leaf64(weight), leaf64(bias)
    y = F.batch_norm(x64, running_mean, running_var, w64, b64, training=False, eps=1e-5)
    grad_output = randn32(*y.shape)
    y.backward(grad_output.double())
    for key, t in [("x", x), ("grad_output", grad_output), ("output", y), ("grad_input", x64.grad),
                   ("grad_weight", w64.grad), ("grad_bias", b64.grad)]:
        fx.add(f"eval.{key}", t)

    x = randn32(n, c, h, w) - 0.3
    x64 = leaf64(x)
    y = F.batch_norm(x64, None, None, None, None, training=True, eps=1e-5)
    grad_output = randn32(*y.shape)
    y.backward(grad_output.double())
    for key, t in [("x", x), ("grad_output", grad_output), ("output", y), ("grad_input", x64.grad)]:
        fx.add(f"noaffine.{key}", t)
    fx.save(out_dir, "batch_norm2d.safetensors")


# ---- pooling ----

POOL_CASES = [
    # name, op, H, W, kernel, stride, padding, ceil_mode, count_include_pad
    ("max_k2", "max", 8, 8, (2, 2), (2, 2), (0, 0), False, True),
    ("max_k3_s2_pad1", "max", 8, 8, (3, 3), (2, 2), (1, 1), False, True),
    ("max_k3_s2_ceil", "max", 8, 8, (3, 3), (2, 2), (0, 0), True, True),
    ("max_k3_s2_pad1_ceil", "max", 6, 7, (3, 3), (2, 2), (1, 1), True, True),
    ("max_k2x3_s1x2", "max", 6, 9, (2, 3), (1, 2), (0, 1), False, True),
    ("avg_k2", "avg", 8, 8, (2, 2), (2, 2), (0, 0), False, True),
    ("avg_k3_s2_pad1", "avg", 8, 8, (3, 3), (2, 2), (1, 1), False, True),
    ("avg_k3_s2_pad1_exclude_pad", "avg", 8, 8, (3, 3), (2, 2), (1, 1), False, False),
    ("avg_k3_s2_ceil", "avg", 8, 8, (3, 3), (2, 2), (0, 0), True, True),
    ("avg_k3_s2_pad1_ceil", "avg", 6, 7, (3, 3), (2, 2), (1, 1), True, True),
    ("avg_k3_s2_pad1_ceil_exclude_pad", "avg", 6, 7, (3, 3), (2, 2), (1, 1), True, False),
]


def make_pool2d(out_dir):
    fx = Fixture("max_pool2d / avg_pool2d (options per case) and global average pooling, forward and backward")
    n, c = 2, 3
    for name, op, h, w, kernel, stride, padding, ceil_mode, count_include_pad in POOL_CASES:
        x = randn32(n, c, h, w)
        x64 = leaf64(x)
        if op == "max":
            y = F.max_pool2d(x64, kernel, stride, padding, ceil_mode=ceil_mode)
        else:
            y = F.avg_pool2d(x64, kernel, stride, padding, ceil_mode=ceil_mode, count_include_pad=count_include_pad)
        grad_output = randn32(*y.shape)
        y.backward(grad_output.double())
        for key, t in [("x", x), ("grad_output", grad_output), ("output", y), ("grad_input", x64.grad)]:
            fx.add(f"{name}.{key}", t)
        fx.options(name, op=op, kernel=list(kernel), stride=list(stride), padding=list(padding), ceil_mode=ceil_mode,
                   count_include_pad=count_include_pad)

    x = randn32(n, 4, 5, 6)
    x64 = leaf64(x)
    y = x64.mean(dim=(2, 3))
    grad_output = randn32(*y.shape)
    y.backward(grad_output.double())
    for key, t in [("x", x), ("grad_output", grad_output), ("output", y), ("grad_input", x64.grad)]:
        fx.add(f"global_avg.{key}", t)
    fx.save(out_dir, "pool2d.safetensors")


# ---- linear / matmul ----

def make_linear(out_dir):
    fx = Fixture("linear (x [N,in], weight [out,in], bias [out]) with and without bias, and matmul, with grads")
    for name, has_bias in [("linear", True), ("linear_nobias", False)]:
        x, weight = randn32(5, 7), randn32(4, 7, scale=0.4)
        bias = randn32(4) if has_bias else None
        x64, w64 = leaf64(x), leaf64(weight)
        b64 = leaf64(bias) if has_bias else None
        y = F.linear(x64, w64, b64)
        grad_output = randn32(*y.shape)
        y.backward(grad_output.double())
        for key, t in [("x", x), ("weight", weight), ("grad_output", grad_output), ("output", y),
                       ("grad_input", x64.grad), ("grad_weight", w64.grad)]:
            fx.add(f"{name}.{key}", t)
        if has_bias:
            fx.add(f"{name}.bias", bias)
            fx.add(f"{name}.grad_bias", b64.grad)

    a, b = randn32(3, 5), randn32(5, 4)
    a64, b64 = leaf64(a), leaf64(b)
    y = a64 @ b64
    grad_output = randn32(*y.shape)
    y.backward(grad_output.double())
    for key, t in [("a", a), ("b", b), ("grad_output", grad_output), ("output", y), ("grad_a", a64.grad),
                   ("grad_b", b64.grad)]:
        fx.add(f"matmul.{key}", t)
    fx.save(out_dir, "linear.safetensors")


# ---- cross entropy ----

def make_cross_entropy(out_dir):
    fx = Fixture("cross_entropy (mean over the batch) of logits [N,C] and i64 targets [N]; loss and grad of logits")
    logits = randn32(8, 5, scale=2.0)
    target = torch.randint(0, 5, (8,), dtype=torch.int64)
    fx.add("logits", logits)
    fx.add("target", target)
    for name, smoothing in [("plain", 0.0), ("smoothing", 0.1)]:
        logits64 = leaf64(logits)
        loss = F.cross_entropy(logits64, target, label_smoothing=smoothing)
        loss.backward()
        fx.add(f"{name}.loss", loss)
        fx.add(f"{name}.grad_logits", logits64.grad)
        fx.options(name, label_smoothing=smoothing)
    fx.save(out_dir, "cross_entropy.safetensors")


# ---- SGD on a small model ----

SGD_VARIANTS = [
    ("momentum", dict(lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=False)),
    ("nesterov", dict(lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)),
]
SGD_STEPS = 5


def make_sgd(out_dir):
    fx = Fixture("5 SGD steps of fc2(relu(fc1(x))) with cross_entropy on fixed data; parameters after each step "
                 "(<variant>.step<k>.<param>) and the loss before each step (<variant>.loss)")
    x = randn32(16, 4)
    target = torch.randint(0, 3, (16,), dtype=torch.int64)
    fc1, fc2 = torch.nn.Linear(4, 8), torch.nn.Linear(8, 3)
    initial = {"fc1.weight": fc1.weight, "fc1.bias": fc1.bias, "fc2.weight": fc2.weight, "fc2.bias": fc2.bias}
    fx.add("x", x)
    fx.add("target", target)
    for name, p in initial.items():
        fx.add(f"initial.{name}", p)

    for variant, opts in SGD_VARIANTS:
        params = {name: leaf64(p.detach()) for name, p in initial.items()}
        optimizer = torch.optim.SGD(params.values(), **opts)
        losses = []
        for step in range(1, SGD_STEPS + 1):
            optimizer.zero_grad()
            hidden = F.relu(F.linear(x.double(), params["fc1.weight"], params["fc1.bias"]))
            loss = F.cross_entropy(F.linear(hidden, params["fc2.weight"], params["fc2.bias"]), target)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            for pname, p in params.items():
                fx.add(f"{variant}.step{step}.{pname}", p)
        fx.add(f"{variant}.loss", torch.tensor(losses, dtype=torch.float64))
        fx.options(variant, **opts)
    fx.save(out_dir, "sgd.safetensors")


GENERATORS = [make_conv2d, make_batch_norm2d, make_pool2d, make_linear, make_cross_entropy, make_sgd]


def run_generators(description, seeded_generators):
    """The command line of every fixture script: --out DIR (default tests/fixtures), one thread,
    deterministic algorithms, and each generator(out_dir) after torch.manual_seed(its seed)."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", default=os.path.join(repo, "tests", "fixtures"), help="output directory")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    for seed, generate in seeded_generators:
        torch.manual_seed(seed)
        generate(args.out)


def main():
    # Each file is independent of the others: a seed of its own.
    run_generators(__doc__.splitlines()[0], [(1000 + i, generate) for i, generate in enumerate(GENERATORS)])


if __name__ == "__main__":
    main()
