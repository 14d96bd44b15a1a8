#!/usr/bin/python3
"""Times PyTorch (CPU) on the cases of op_cases.json, exactly as bench_ops.cpp
times our engine: one iteration = forward, then backward from a fixed random
output gradient, producing every gradient (input, weight, bias); gradients
are cleared before each iteration. Prints JSON {"results": {name: ms}} with
the mean wall time per iteration over at least --min-time seconds.

Run with the system Python that has torch: /usr/bin/python3 torch_ops.py
"""
import argparse
import json
import pathlib
import re
import time

import torch
import torch.nn.functional as F

CASES = pathlib.Path(__file__).with_name("op_cases.json")


def leaf(*shape, scale=1.0):
    return (torch.randn(*shape) * scale).requires_grad_()


def conv2d_step(c):
    n, cin, cout, size, k = c["batch"], c["in"], c["out"], c["size"], c["kernel"]
    stride, pad = c["stride"], c["padding"]
    x, w = leaf(n, cin, size, size), leaf(cout, cin, k, k, scale=0.1)
    b = leaf(cout) if c["bias"] else None
    with torch.no_grad():
        dy = torch.randn_like(F.conv2d(x, w, None, stride, pad))
    leaves = [t for t in (x, w, b) if t is not None]

    def step():
        for t in leaves:
            t.grad = None
        F.conv2d(x, w, b, stride, pad).backward(dy)

    return step


def linear_step(c):
    n, fin, fout = c["batch"], c["in"], c["out"]
    x, w, b = leaf(n, fin), leaf(fout, fin, scale=0.1), leaf(fout)
    dy = torch.randn(n, fout)

    def step():
        for t in (x, w, b):
            t.grad = None
        F.linear(x, w, b).backward(dy)

    return step


def batch_norm2d_step(c):
    n, ch, size = c["batch"], c["channels"], c["size"]
    x, gamma, beta = leaf(n, ch, size, size), leaf(ch), leaf(ch)
    running_mean, running_var = torch.zeros(ch), torch.ones(ch)
    dy = torch.randn(n, ch, size, size)

    def step():
        for t in (x, gamma, beta):
            t.grad = None
        F.batch_norm(x, running_mean, running_var, gamma, beta, training=True, momentum=0.1,
                     eps=1e-5).backward(dy)

    return step


STEPS = {"conv2d": conv2d_step, "linear": linear_step, "batch_norm2d": batch_norm2d_step}


def time_step(step, min_time):
    step()  # warm-up: first-call allocations and kernel selection
    iters, start = 0, time.perf_counter()
    while True:
        step()
        iters += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return elapsed / iters * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-time", type=float, default=0.5, help="seconds per case")
    parser.add_argument("--filter", default=".", help="regex over case names")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    results = {}
    for case in json.loads(CASES.read_text())["cases"]:
        if re.search(args.filter, case["name"]):
            results[case["name"]] = time_step(STEPS[case["op"]](case), args.min_time)
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "results": results}))


if __name__ == "__main__":
    main()
