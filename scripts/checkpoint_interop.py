#!/usr/bin/python3
"""Checkpoint interoperability with PyTorch (tests/slow/test_checkpoint_interop.cpp runs this).

  /usr/bin/python3 scripts/checkpoint_interop.py resnet18 DIR
      Writes DIR/resnet18.safetensors, a torchvision ResNet-18 state_dict with
      random weights and BN statistics, laid out as the reference safetensors
      library's save_file() lays it out (no metadata), and
      DIR/resnet18_io.safetensors with an input [2, 3, 224, 224] ('input') and
      the model's eval-mode logits ('logits', computed in float64 from the
      float32 weights and input, stored as float32). `tpp forward --arch
      resnet18` must reproduce the logits.

  /usr/bin/python3 scripts/checkpoint_interop.py forward --checkpoint F --input X --output Y
      Reads a checkpoint written by `tpp` with the small reader below, builds
      the architecture its metadata names (scripts/make_model_fixtures.py
      defines them in PyTorch), and writes its float32 eval-mode output for
      X's 'input' to Y as 'output': our checkpoints load in PyTorch.

Neither torchvision nor the safetensors package is needed: the format is
written and read here with json and struct.
"""

import argparse
import json
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_model_fixtures import ARCHS, BasicBlock, ImageNetResNet  # noqa: E402

DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "U8": torch.uint8}
NAMES = {dtype: name for name, dtype in DTYPES.items()}
# The reference library sorts tensors by dtype, largest first in its dtype
# enumeration (I64 before F64 before F32 ... U8), then by name.
DTYPE_RANK = {torch.int64: 0, torch.float64: 1, torch.float32: 2, torch.uint8: 3}


def write_safetensors(path, tensors, metadata=None):
    """The reference writer's layout: compact JSON header ("__metadata__" first when
    given), entries {dtype, shape, data_offsets} in data order, padded with spaces
    to a multiple of 8 bytes."""
    assert sys.byteorder == "little"
    header = {} if metadata is None else {"__metadata__": metadata}
    blobs, offset = [], 0
    for name, t in sorted(tensors.items(), key=lambda kv: (DTYPE_RANK[kv[1].dtype], kv[0])):
        data = t.detach().contiguous().cpu().numpy().tobytes()
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for data in blobs:
            f.write(data)
    os.replace(tmp, path)


def read_safetensors(path):
    """(tensors, metadata) of a safetensors file."""
    with open(path, "rb") as f:
        raw = f.read()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + length])
    metadata = header.pop("__metadata__", {})
    data = raw[8 + length:]
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        dtype = DTYPES[entry["dtype"]]
        flat = torch.frombuffer(bytearray(data[begin:end]), dtype=dtype) if end > begin else torch.empty(0, dtype=dtype)
        tensors[name] = flat.reshape(entry["shape"])
    return tensors, metadata


def randomize_batch_norm(model, generator):
    """BN affine parameters and running statistics away from their defaults, so
    that a loader that dropped any of them would show in the logits."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            c = module.num_features
            module.weight.data = torch.rand(c, generator=generator) + 0.5
            module.bias.data = torch.randn(c, generator=generator) * 0.1
            module.running_mean = torch.randn(c, generator=generator) * 0.1
            module.running_var = torch.rand(c, generator=generator) + 0.5
            module.num_batches_tracked = torch.tensor(1000, dtype=torch.int64)


def make_resnet18(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(18)
    generator = torch.Generator().manual_seed(19)
    model = ImageNetResNet(BasicBlock, [2, 2, 2, 2], 1000, 3)
    randomize_batch_norm(model, generator)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    write_safetensors(os.path.join(out_dir, "resnet18.safetensors"), state)

    x = torch.randn(2, 3, 224, 224, generator=generator)
    model.double().eval()
    with torch.no_grad():
        logits = model(x.double()).float()
    write_safetensors(os.path.join(out_dir, "resnet18_io.safetensors"), {"input": x, "logits": logits},
                      {"generator": "scripts/checkpoint_interop.py",
                       "reference": "eval-mode logits computed in float64 from the float32 weights and input"})
    print(f"{os.path.relpath(out_dir)}: resnet18.safetensors ({len(state)} tensors), resnet18_io.safetensors "
          f"(input {list(x.shape)}, logits {list(logits.shape)}, max |logit| {logits.abs().max().item():.3f})")


def load_tensors(model, tensors):
    """Strict load that takes each tensor's own shape, so a pruned checkpoint (whose
    per-layer widths differ from the fresh model's) loads as well."""
    missing, unexpected = set(model.state_dict()) - set(tensors), set(tensors) - set(model.state_dict())
    if missing or unexpected:
        sys.exit(f"checkpoint_interop: missing keys {sorted(missing)}, unexpected keys {sorted(unexpected)}")
    for key, t in tensors.items():
        module_path, _, name = key.rpartition(".")
        module = model.get_submodule(module_path)
        if name in module._parameters:
            module._parameters[name] = torch.nn.Parameter(t.clone(), requires_grad=False)
        else:
            module._buffers[name] = t.clone()


def forward(checkpoint, input_path, output_path):
    tensors, metadata = read_safetensors(checkpoint)
    arch = metadata["arch"]
    model = ARCHS[arch][0](int(metadata["num_classes"]), int(metadata["in_channels"]))
    extra = set(json.loads(metadata.get("extra_tensors", "[]")))
    load_tensors(model, {k: v for k, v in tensors.items() if k not in extra})
    model.eval()
    x = read_safetensors(input_path)[0]["input"]
    with torch.no_grad():
        y = model(x)
    write_safetensors(output_path, {"output": y}, {"arch": arch, "checkpoint": checkpoint})
    print(f"torch forward: {arch} {list(x.shape)} -> {list(y.shape)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    resnet18 = commands.add_parser("resnet18", help="write the torchvision ResNet-18 fixture into a directory")
    resnet18.add_argument("dir")
    fwd = commands.add_parser("forward", help="run a tpp checkpoint through PyTorch")
    fwd.add_argument("--checkpoint", required=True)
    fwd.add_argument("--input", required=True)
    fwd.add_argument("--output", required=True)
    args = parser.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    if args.command == "resnet18":
        make_resnet18(args.dir)
    else:
        forward(args.checkpoint, args.input, args.output)


if __name__ == "__main__":
    main()
