#!/usr/bin/python3
"""Writes the small valid seed inputs of the fuzz targets to tests/fuzz/corpus/<target>/.

Run with Debian's /usr/bin/python3 (it needs Pillow for the images). The seeds
are committed; rerunning rewrites the same files.
"""
import gzip
import io
import json
import struct
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent / "tests" / "fuzz" / "corpus"


def write(target, name, data):
    folder = ROOT / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def gz(data):
    return gzip.compress(data, mtime=0)


def idx_seeds():
    images = struct.pack(">IIII", 0x803, 2, 3, 3) + bytes(range(18))
    labels = struct.pack(">II", 0x801, 4) + bytes([3, 1, 4, 1])
    write("idx", "images_2x3x3", images)
    write("idx", "labels_4", labels)
    write("idx", "images_empty", struct.pack(">IIII", 0x803, 0, 28, 28))
    write("idx", "images_2x3x3.gz", gz(images))
    write("idx", "labels_4.gz", gz(labels))
    write("idx", "labels_two_members.gz", gz(labels[:5]) + gz(labels[5:]))


def cifar_seeds():
    pixels = bytes((k * 7) % 256 for k in range(3072))
    write("cifar", "cifar10_one_record", bytes([3]) + pixels)
    write("cifar", "cifar100_one_record", bytes([4, 55]) + pixels)
    write("cifar", "cifar10_two_records.gz", gz(bytes([1]) + pixels + bytes([9]) + pixels))


def image_bytes(image, fmt, **options):
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def image_seeds():
    rgb = Image.new("RGB", (8, 6))
    rgb.putdata([((x * 31) % 256, (y * 40) % 256, (x * y * 9) % 256) for y in range(6) for x in range(8)])
    grey = rgb.convert("L")
    write("image", "rgb_444.jpg", image_bytes(rgb, "JPEG", quality=90, subsampling=0))
    write("image", "rgb_420.jpg", image_bytes(rgb, "JPEG", quality=75, subsampling=2))
    write("image", "rgb_progressive.jpg", image_bytes(rgb, "JPEG", quality=80, progressive=True))
    write("image", "grey.jpg", image_bytes(grey, "JPEG", quality=90))
    write("image", "cmyk.jpg", image_bytes(rgb.convert("CMYK"), "JPEG", quality=90))
    write("image", "rgb.png", image_bytes(rgb, "PNG"))
    write("image", "grey.png", image_bytes(grey, "PNG"))
    write("image", "rgba.png", image_bytes(rgb.convert("RGBA"), "PNG"))
    write("image", "grey_alpha.png", image_bytes(rgb.convert("LA"), "PNG"))
    write("image", "palette.png", image_bytes(rgb.convert("P"), "PNG"))
    write("image", "one_bit.png", image_bytes(grey.convert("1"), "PNG"))
    write("image", "grey16.png", image_bytes(grey.convert("I;16"), "PNG"))


def safetensors(tensors, metadata=None):
    header, data = {}, b""
    for name, (dtype, shape, payload) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def safetensors_seeds():
    write("safetensors", "one_f32", safetensors({"w": ("F32", [2, 2], struct.pack("<4f", 1, -2, 3.5, 0))}))
    write("safetensors", "dtypes_metadata", safetensors({
        "a": ("F64", [3], struct.pack("<3d", 1, 2, 3)),
        "b": ("I64", [1, 2], struct.pack("<2q", -7, 9)),
        "c": ("U8", [5], bytes([1, 2, 3, 4, 5])),
    }, {"arch": "resnet56", "epoch": "3"}))
    write("safetensors", "empty_and_scalar", safetensors({
        "empty": ("F32", [0, 4], b""),
        "scalar": ("F32", [], struct.pack("<f", 0.5)),
    }))
    write("safetensors", "no_tensors", safetensors({}, {"note": "only metadata"}))


def lr_schedule_seeds():
    for i, spec in enumerate(["0:0.1", "0:0.1,100:0.01,150:0.001", "0:1e-3,0.5:2,2.25:0", "0:0"]):
        write("lr_schedule", f"spec_{i}", spec.encode())


def stage_pr_seeds():
    # Three lines: --stage-pr, --skip-layers, one more layer name.
    write("stage_pr", "resnet_rules", b"*layer[1-3]*conv1:0.5,fc:0\n*layer1.0.conv1\nlayer1.0.conv1")
    write("stage_pr", "classes_and_skips",
          b"*layer*.conv[!2]:0.9,*downsample*:0.25, features.?:0.1\n*[]]*,classifier*\nfeatures.3")
    write("stage_pr", "one_rule", b"conv1:0\n\n")
    write("stage_pr", "everything", b"*:0.07\n")


def config_seeds():
    for config in sorted((ROOT.parent.parent.parent / "configs").glob("*.toml")):
        write("config", config.name, config.read_bytes())
    # As a run writes its config.toml (CLI11's config_to_str).
    write("config", "run_config.toml", b"""arch="mlp7_linear"
dataset="fashion-mnist"
data-dir=""
epochs=2
batch-size=64
lr-schedule="0:0.05,1:0.01"
momentum=0.9
weight-decay=0.0005
nesterov=true
seed=3
device="cpu"
workers=1
limit=256
test-limit=128
""")


if __name__ == "__main__":
    idx_seeds()
    cifar_seeds()
    image_seeds()
    safetensors_seeds()
    lr_schedule_seeds()
    stage_pr_seeds()
    config_seeds()
