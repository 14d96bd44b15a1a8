#!/usr/bin/python3
"""One training epoch of a zoo model on Fashion-MNIST in PyTorch, with the
recipe `tpp train` uses by default: batch 128, SGD (lr 0.1, momentum 0.9,
weight decay 5e-4), the training images shuffled each epoch, scaled to [0, 1]
and normalised by mean 0.2860 / std 0.3530. Data loading is timed with the
steps, as in tpp's img/s (the images are read from the .gz files once, before
the clock starts, as tpp loads its dataset up front).

glibc is set to keep freed memory (torch_malloc.py) unless
--glibc-default-malloc: PyTorch timed at its best, as our engine keeps its own.

Prints JSON {"images_per_s": ..., "images": ..., "seconds": ...}.
Run with the system Python that has torch: /usr/bin/python3 torch_train.py
"""
import argparse
import gzip
import json
import pathlib
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

import torch_malloc

SCRIPTS = pathlib.Path(__file__).resolve().parent.parent / "scripts"
MEAN, STD = 0.2860, 0.3530


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", required=True)
    parser.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--limit", type=int, default=0, help="train on the first N images (0: all)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--glibc-default-malloc", action="store_true",
                        help="leave glibc's malloc as it is (big blocks mapped and unmapped at every op)")
    args = parser.parse_args()
    if not args.glibc_default_malloc:
        torch_malloc.keep_freed_memory()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    sys.path.insert(0, str(SCRIPTS))
    from make_model_fixtures import build  # the zoo in PyTorch, module for module

    root = pathlib.Path(args.data_dir)
    images = torch.from_numpy(read_idx(root / "train-images-idx3-ubyte.gz").copy())
    labels = torch.from_numpy(read_idx(root / "train-labels-idx1-ubyte.gz").astype(np.int64))
    if args.limit:
        images, labels = images[:args.limit], labels[:args.limit]
    model = build(args.arch, 10, 1).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)

    start = time.perf_counter()
    order = torch.randperm(len(images))
    for first in range(0, len(images), args.batch_size):
        index = order[first:first + args.batch_size]
        x = ((images[index].float() / 255 - MEAN) / STD).unsqueeze(1)
        optimizer.zero_grad()
        F.cross_entropy(model(x), labels[index]).backward()
        optimizer.step()
    seconds = time.perf_counter() - start
    print(json.dumps({"images_per_s": len(images) / seconds, "images": len(images), "seconds": seconds}))


if __name__ == "__main__":
    main()
