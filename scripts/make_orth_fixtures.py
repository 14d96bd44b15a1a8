#!/usr/bin/python3
"""Writes tests/fixtures/orth.safetensors: PyTorch references for KernOrth, OrthConv and OrthP (TPP-METHOD §7.2-7.4).

Run with the Debian PyTorch:  /usr/bin/python3 scripts/make_orth_fixtures.py [--out DIR]

The formulas are written here in torch from the spec (not copied from any
project):
  kernorth  ||W^T W - I||_F with W the [N, D] filter matrix, transposed first when N < D
  orthconv  ||conv2d(K, K, stride, padding) - T||_F, T zero but T[i, i, ct, ct] = 1, ct = floor(w'/2)
  orthp     reduced QR of the tall orientation of W, Q times sign(diag R), transposed back, times the gain
Weights are drawn in float32 from a fixed seed; losses, gradients and the
orthogonalized weights are computed in float64 from those values and stored
as float32 (the writer of scripts/make_fixtures.py). Re-running gives
byte-identical files.
"""

import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import Fixture, leaf64, randn32, run_generators  # noqa: E402

KERNORTH_CASES = [  # name, weight shape
    ("wide_conv", (4, 3, 3, 3)),
    ("tall_linear", (12, 5)),
    ("square_linear", (6, 6)),
    ("pointwise_conv", (8, 4, 1, 1)),
]

ORTHCONV_CASES = [  # name, weight shape, stride, padding
    ("k3_s2_p1", (4, 3, 3, 3), 2, 1),
    ("k3_s1_p1", (5, 2, 3, 3), 1, 1),
    ("k5_s2_p1", (3, 2, 5, 5), 2, 1),
]

ORTHP_CASES = [  # name, weight shape, gain
    ("wide_conv", (3, 2, 2, 2), 1.0),
    ("tall_linear", (10, 4), math.sqrt(2.0)),
    ("square_linear", (5, 5), 1.0),
]


def kernorth(w):
    mat = w.reshape(w.shape[0], -1)
    if mat.shape[0] < mat.shape[1]:
        mat = mat.t()
    return torch.linalg.norm(mat.t() @ mat - torch.eye(mat.shape[1], dtype=w.dtype))


def orthconv(k, stride, padding):
    z = F.conv2d(k, k, stride=stride, padding=padding)
    target = torch.zeros_like(z)
    ct = z.shape[-1] // 2
    target[:, :, ct, ct] = torch.eye(k.shape[0], dtype=k.dtype)
    return torch.linalg.norm(z - target)


def orthp(w, gain):
    rows = w.shape[0]
    mat = w.reshape(rows, -1)
    wide = rows < mat.shape[1]
    if wide:
        mat = mat.t()
    q, r = torch.linalg.qr(mat, mode="reduced")
    q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)
    if wide:
        q = q.t()
    return (q * gain).reshape(w.shape)


def make_orth(out_dir):
    fx = Fixture("KernOrth and OrthConv losses with their gradients, and OrthP's orthogonalized weights")
    fx.metadata["generator"] = "scripts/make_orth_fixtures.py"
    for name, shape in KERNORTH_CASES:
        w = randn32(*shape, scale=0.4)
        w64 = leaf64(w)
        loss = kernorth(w64)
        loss.backward()
        fx.add(f"kernorth.{name}.weight", w)
        fx.add(f"kernorth.{name}.loss", loss)
        fx.add(f"kernorth.{name}.grad_weight", w64.grad)
    for name, shape, stride, padding in ORTHCONV_CASES:
        w = randn32(*shape, scale=0.4)
        w64 = leaf64(w)
        loss = orthconv(w64, stride, padding)
        loss.backward()
        fx.add(f"orthconv.{name}.weight", w)
        fx.add(f"orthconv.{name}.loss", loss)
        fx.add(f"orthconv.{name}.grad_weight", w64.grad)
        fx.options(f"orthconv.{name}", stride=stride, padding=padding)
    for name, shape, gain in ORTHP_CASES:
        w = randn32(*shape)
        fx.add(f"orthp.{name}.weight", w)
        fx.add(f"orthp.{name}.orthogonalized", orthp(w.double(), gain))
        fx.options(f"orthp.{name}", gain=gain)
    fx.save(out_dir, "orth.safetensors")


def main():
    run_generators(__doc__.splitlines()[0], [(2000, make_orth)])


if __name__ == "__main__":
    main()
