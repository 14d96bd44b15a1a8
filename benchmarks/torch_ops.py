#!/usr/bin/python3
"""Times PyTorch on the cases of op_cases.json, exactly as bench_ops.cpp
times our engine: one iteration = forward, then backward from a fixed random
output gradient, producing every gradient (input, weight, bias); gradients
are cleared before each iteration. A train_step case is one SGD step of the
zoo model (as written out in scripts/make_model_fixtures.py); an eval_forward
case one eval-mode forward under torch.no_grad(). Prints JSON
{"results": {name: ms}} with the mean wall time per iteration over at least
--min-time seconds, after one untimed warm-up iteration.

--device cuda puts every tensor on the GPU and waits for it
(torch.cuda.synchronize) at the end of each iteration; --math tf32 (default,
as our engine) allows TF32 in cuDNN convolutions and cuBLAS matmuls, fp32
forbids both. cuDNN's algorithm search (cudnn.benchmark) is on, as our engine
searches too (cudnnFind*AlgorithmEx); --no-cudnn-benchmark for PyTorch's default.

glibc is set to keep freed memory (torch_malloc.py) unless
--glibc-default-malloc: PyTorch timed at its best, as our engine keeps its own.

Run with the system Python that has torch: /usr/bin/python3 torch_ops.py
"""
import argparse
import fnmatch
import json
import math
import pathlib
import re
import sys
import time

import torch
import torch.nn.functional as F

import torch_malloc

CASES = pathlib.Path(__file__).with_name("op_cases.json")
SCRIPTS = pathlib.Path(__file__).resolve().parent.parent / "scripts"
DEVICE = torch.device("cpu")  # set in main()


def leaf(*shape, scale=1.0):
    return (torch.randn(*shape, device=DEVICE) * scale).requires_grad_()


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
    dy = torch.randn(n, fout, device=DEVICE)

    def step():
        for t in (x, w, b):
            t.grad = None
        F.linear(x, w, b).backward(dy)

    return step


def batch_norm2d_step(c):
    n, ch, size = c["batch"], c["channels"], c["size"]
    x, gamma, beta = leaf(n, ch, size, size), leaf(ch), leaf(ch)
    running_mean, running_var = torch.zeros(ch, device=DEVICE), torch.ones(ch, device=DEVICE)
    dy = torch.randn(n, ch, size, size, device=DEVICE)

    def step():
        for t in (x, gamma, beta):
            t.grad = None
        F.batch_norm(x, running_mean, running_var, gamma, beta, training=True, momentum=0.1,
                     eps=1e-5).backward(dy)

    return step


def pruned(model, stage_pr):
    """The widths of a pruned network: every residual block whose first conv matches the glob of
    stage_pr ("pattern:ratio", the paper's ResNet rule) keeps n - ceil(ratio * n) of its filters,
    its first BN and second conv shrinking with it. Which filters go does not change the speed."""
    if not stage_pr:
        return model
    pattern, ratio = stage_pr.rsplit(":", 1)
    for name, block in list(model.named_modules()):
        conv = getattr(block, "conv1", None)
        if not isinstance(conv, torch.nn.Conv2d) or not hasattr(block, "conv2"):
            continue
        if not fnmatch.fnmatchcase(f"{name}.conv1", pattern):
            continue
        kept = conv.out_channels - math.ceil(float(ratio) * conv.out_channels)
        block.conv1 = torch.nn.Conv2d(conv.in_channels, kept, conv.kernel_size, conv.stride, conv.padding,
                                      bias=False)
        block.bn1 = torch.nn.BatchNorm2d(kept)
        block.conv2 = torch.nn.Conv2d(kept, block.conv2.out_channels, block.conv2.kernel_size,
                                      block.conv2.stride, block.conv2.padding, bias=False)
    return model


def train_step(c):
    sys.path.insert(0, str(SCRIPTS))
    from make_model_fixtures import build  # the zoo in PyTorch, module for module

    n, channels, size, classes = c["batch"], c["channels"], c["size"], c["classes"]
    model = pruned(build(c["arch"], classes, channels), c.get("stage_pr")).to(DEVICE).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(n, channels, size, size, device=DEVICE)
    target = torch.randint(0, classes, (n,), device=DEVICE)

    def step():
        optimizer.zero_grad()
        F.cross_entropy(model(x), target).backward()
        optimizer.step()

    return step


def eval_forward(c):
    sys.path.insert(0, str(SCRIPTS))
    from make_model_fixtures import build

    n, channels, size, classes = c["batch"], c["channels"], c["size"], c["classes"]
    model = pruned(build(c["arch"], classes, channels), c.get("stage_pr")).to(DEVICE).eval()
    x = torch.randn(n, channels, size, size, device=DEVICE)

    def step():
        with torch.no_grad():
            model(x)

    return step


STEPS = {"conv2d": conv2d_step, "linear": linear_step, "batch_norm2d": batch_norm2d_step, "train_step": train_step,
         "eval_forward": eval_forward}


def synchronize():
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


def time_step(step, min_time):
    step()  # warm-up: first-call allocations and kernel selection (cuDNN's search)
    synchronize()
    iters, start = 0, time.perf_counter()
    while True:
        step()
        synchronize()
        iters += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return elapsed / iters * 1e3


def runs_on(case, device):
    return device.type in case.get("devices", ["cpu", "cuda"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-time", type=float, default=0.5, help="seconds per case")
    parser.add_argument("--filter", default=".", help="regex over case names")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--math", choices=["tf32", "fp32"], default="tf32",
                        help="TF32 in cuDNN convolutions and cuBLAS matmuls (tf32) or neither (fp32)")
    parser.add_argument("--no-cudnn-benchmark", action="store_true",
                        help="PyTorch's default heuristic algorithm choice instead of cuDNN's timed search")
    parser.add_argument("--glibc-default-malloc", action="store_true",
                        help="leave glibc's malloc as it is (big blocks mapped and unmapped at every op)")
    args = parser.parse_args()
    kept_memory = not args.glibc_default_malloc and torch_malloc.keep_freed_memory()
    global DEVICE
    DEVICE = torch.device(args.device)
    if DEVICE.type == "cuda":
        if not torch.cuda.is_available():
            sys.exit("torch_ops: --device cuda but torch.cuda.is_available() is False")
        torch.cuda.set_device(DEVICE)
    tf32 = args.math == "tf32"
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = not args.no_cudnn_benchmark
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    results = {}
    for case in json.loads(CASES.read_text())["cases"]:
        if runs_on(case, DEVICE) and re.search(args.filter, case["name"]):
            results[case["name"]] = time_step(STEPS[case["op"]](case), args.min_time)
    info = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(DEVICE),
            "math": args.math, "cudnn_benchmark": torch.backends.cudnn.benchmark, "malloc_keeps_memory": kept_memory}
    if DEVICE.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(DEVICE)
        info["cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()
    print(json.dumps({**info, "results": results}))


if __name__ == "__main__":
    main()
