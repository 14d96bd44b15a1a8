#!/usr/bin/python3
"""Writes the PyTorch golden fixtures for the model zoo (tests/models/test_zoo.cpp).

Run from anywhere with the Debian PyTorch:  /usr/bin/python3 scripts/make_model_fixtures.py [--out DIR]

The architectures are written out here in PyTorch (torchvision is not needed):
MLP-7-Linear, the CIFAR ResNets with option-A shortcuts, the CIFAR VGGs with
BN, and torchvision's ImageNet ResNet-18/34/50 with its module names.

Two files:
  zoo_structure.safetensors  metadata only (plus one marker tensor): for every
      arch, its state_dict keys with shapes in order ("keys.<arch>") and its
      params / params_with_bn / FLOPs at its dataset's resolution (and the
      FLOPs at 64x64 for the ImageNet archs) in "options.<arch>", counted
      with the rule of TPP-METHOD §2.8.
  zoo_forward.safetensors  for a few small cases: the input, logits in eval and
      (unless the case's option "train" is false) in train mode, the BN running statistics after the train-mode forward,
      and (resnet20) the Frobenius norm of every parameter's gradient of a
      cross-entropy loss.

Model weights are not stored (ResNet-18 alone is 46 MB): every state_dict
entry is filled by a counter-based generator (splitmix64 of an FNV-1a hash of
the key and the element index) that the C++ test reproduces bit for bit;
"sample.<case>.<key>" tensors let the test confirm that. References are
computed in float64 from the float32 weights and inputs and stored as float32.
"""

import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import Fixture  # noqa: E402


# ---- architectures ----

class MLP(nn.Module):
    """MLP-7-Linear (TPP-METHOD §8.1): net.0 ... net.12, Identity activations."""

    def __init__(self, in_features=1024, num_classes=10, width=100, depth=7):
        super().__init__()
        layers = [nn.Linear(in_features, width), nn.Identity()]
        for _ in range(depth - 2):
            layers += [nn.Linear(width, width), nn.Identity()]
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x.flatten(1))


class CifarBasicBlock(nn.Module):
    def __init__(self, in_planes, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pad = None
        if stride != 1 or in_planes != planes:
            extra = planes - in_planes
            self.pad = (extra // 2, extra - extra // 2)

    def shortcut(self, x):
        if self.pad is None:
            return x
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad[0], self.pad[1]), "constant", 0)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """Stage widths width, 2·width, 4·width (16/32/64 in the paper; narrower for small fixtures)."""

    def __init__(self, depth, num_classes=10, in_channels=3, width=16):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        in_planes = width
        for index, (planes, stride) in enumerate([(width, 1), (2 * width, 2), (4 * width, 2)], start=1):
            blocks = []
            for b in range(n):
                blocks.append(CifarBasicBlock(in_planes, planes, stride if b == 0 else 1))
                in_planes = planes
            setattr(self, f"layer{index}", nn.Sequential(*blocks))
        self.fc = nn.Linear(4 * width, num_classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.fc(out.mean(dim=(2, 3)))


VGG_CONFIGS = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512],
    "vgg_small": [32, "M", 64, "M", 128],
}


class CifarVGG(nn.Module):
    def __init__(self, config, num_classes=10, in_channels=3):
        super().__init__()
        layers, channels = [], in_channels
        for v in config:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, v, 3, padding=1, bias=False), nn.BatchNorm2d(v), nn.ReLU()]
                channels = v
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).mean(dim=(2, 3)))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ImageNetResNet(nn.Module):
    """torchvision.models.ResNet's structure and module names."""

    def __init__(self, block, layers, num_classes=1000, in_channels=3):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, 64, layers[0], 1)
        self.layer2 = self._make_layer(block, 128, layers[1], 2)
        self.layer3 = self._make_layer(block, 256, layers[2], 2)
        self.layer4 = self._make_layer(block, 512, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# arch -> (constructor(num_classes, in_channels), dataset input [C, H, W], classes)
CIFAR = ([3, 32, 32], 10)
ARCHS = {
    "mlp7_linear": (lambda k, c: MLP(c * 32 * 32, k), ([1, 32, 32], 10)),
    "resnet20": (lambda k, c: CifarResNet(20, k, c), CIFAR),
    "resnet32": (lambda k, c: CifarResNet(32, k, c), CIFAR),
    "resnet56": (lambda k, c: CifarResNet(56, k, c), CIFAR),
    "resnet110": (lambda k, c: CifarResNet(110, k, c), CIFAR),
    "vgg11": (lambda k, c: CifarVGG(VGG_CONFIGS["vgg11"], k, c), CIFAR),
    "vgg13": (lambda k, c: CifarVGG(VGG_CONFIGS["vgg13"], k, c), CIFAR),
    "vgg16": (lambda k, c: CifarVGG(VGG_CONFIGS["vgg16"], k, c), CIFAR),
    "vgg19": (lambda k, c: CifarVGG(VGG_CONFIGS["vgg19"], k, c), ([3, 32, 32], 100)),
    "vgg_small": (lambda k, c: CifarVGG(VGG_CONFIGS["vgg_small"], k, c), ([1, 28, 28], 10)),
    "resnet18": (lambda k, c: ImageNetResNet(BasicBlock, [2, 2, 2, 2], k, c), ([3, 224, 224], 1000)),
    "resnet34": (lambda k, c: ImageNetResNet(BasicBlock, [3, 4, 6, 3], k, c), ([3, 224, 224], 1000)),
    "resnet50": (lambda k, c: ImageNetResNet(Bottleneck, [3, 4, 6, 3], k, c), ([3, 224, 224], 1000)),
}


def build(arch, num_classes, in_channels):
    return ARCHS[arch][0](num_classes, in_channels)


# ---- counting (TPP-METHOD §2.8) ----

def count(model, input_shape):
    """params (conv+linear weights and biases), params_with_bn (+ BN γ, β) and FLOPs =
    2·[Σ_conv weight count·H_out·W_out/groups + Σ_linear weight count], from one forward at batch 1."""
    totals = {"params": 0, "params_with_bn": 0, "flops": 0}

    def hook(module, inputs, output):
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            n = module.weight.numel() + (module.bias.numel() if module.bias is not None else 0)
            totals["params"] += n
            totals["params_with_bn"] += n
            if isinstance(module, nn.Conv2d):
                totals["flops"] += 2 * module.weight.numel() * output.shape[2] * output.shape[3] // module.groups
            else:
                totals["flops"] += 2 * module.weight.numel()
        elif isinstance(module, nn.BatchNorm2d):
            totals["params_with_bn"] += module.weight.numel() + module.bias.numel()

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, *input_shape))
    for h in handles:
        h.remove()
    return totals


# ---- weights the C++ test can regenerate ----

MASK64 = (1 << 64) - 1


def fnv1a64(text):
    h = 0xCBF29CE484222325
    for byte in text.encode():
        h = ((h ^ byte) * 0x100000001B3) & MASK64
    return h


def uniform01(key, n):
    """splitmix64 of (fnv1a64(key) + (i + 1)·golden gamma), top 53 bits as a double in [0, 1)."""
    with np.errstate(over="ignore"):
        z = np.uint64(fnv1a64(key)) + (np.arange(n, dtype=np.uint64) + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * (2.0 ** -53)


def synthetic_value(key, shape):
    """The rule shared with tests/models/test_zoo.cpp, in float64 then rounded to float32."""
    n = int(np.prod(shape)) if len(shape) else 1
    u = uniform01(key, n)
    if key.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.int64)
    if key.endswith("running_var") or (key.endswith(".weight") and len(shape) == 1):
        v = 0.5 + u  # BN γ and running variance in [0.5, 1.5)
    elif key.endswith(".weight"):
        fan_in = n // shape[0]
        v = (2 * u - 1) * np.sqrt(6.0 / fan_in)  # He-scaled uniform: variance 2 / fan_in
    else:
        v = 0.2 * (2 * u - 1)  # biases, BN β, running mean in [-0.2, 0.2)
    return torch.from_numpy(v.astype(np.float32)).reshape(shape)


def fill_synthetic(model):
    state = {key: synthetic_value(key, list(t.shape)) for key, t in model.state_dict().items()}
    model.load_state_dict(state)
    return state


# ---- fixtures ----

def make_structure(out_dir):
    fx = Fixture("model zoo structure: state_dict keys and shapes ('keys.<arch>', JSON [[key, shape], ...]) and "
                 "params / params_with_bn / flops at the dataset resolution, and flops_at_64 for the 224x224 archs "
                 "('options.<arch>'), TPP-METHOD §2.8")
    fx.metadata["generator"] = "scripts/make_model_fixtures.py"
    for arch, (_, (input_shape, num_classes)) in ARCHS.items():
        model = build(arch, num_classes, input_shape[0])
        fx.metadata["keys." + arch] = json.dumps([[k, list(t.shape)] for k, t in model.state_dict().items()])
        totals = count(model, input_shape)
        if input_shape[1] > 64:  # a cheaper second resolution for the C++ test of the ImageNet archs
            totals["flops_at_64"] = count(model, [input_shape[0], 64, 64])["flops"]
        fx.options(arch, input=input_shape, num_classes=num_classes, **totals)
        print(f"  {arch:<12} params {totals['params']:>11,}  with BN {totals['params_with_bn']:>11,}  "
              f"FLOPs {totals['flops']:>15,}")
    fx.add("marker", torch.zeros(1))
    fx.save(out_dir, "zoo_structure.safetensors")


FORWARD_CASES = [
    # case, arch, num_classes, in_channels, input shape, also train mode, samples of the weight generator
    ("mlp7_linear", "mlp7_linear", 10, 1, [2, 1, 32, 32], True, ["net.0.bias", "net.12.weight"]),
    ("resnet20", "resnet20", 10, 3, [2, 3, 32, 32], True, ["conv1.weight", "bn1.running_var", "fc.bias"]),
    ("vgg11", "vgg11", 10, 3, [2, 3, 32, 32], True, ["features.0.weight", "features.1.weight"]),
    ("resnet18", "resnet18", 7, 3, [1, 3, 64, 64], True, ["layer2.0.downsample.0.weight"]),
    # Train-mode BN is covered above; here the Bottleneck path in eval mode only.
    ("resnet50_gray", "resnet50", 5, 1, [1, 1, 64, 64], False, ["conv1.weight", "layer3.0.bn2.bias"]),
]


def make_forward(out_dir):
    fx = Fixture("model zoo forward: synthetic weights (see the script), an input, logits in eval and (option "
                 "'train') train mode, "
                 "BN running statistics after the train-mode forward ('<case>.after_train.<key>'); resnet20 also "
                 "the Frobenius norm of each parameter's gradient of cross_entropy(train logits, target)")
    fx.metadata["generator"] = "scripts/make_model_fixtures.py"
    for case, arch, num_classes, in_channels, input_shape, train, samples in FORWARD_CASES:
        model = build(arch, num_classes, in_channels)
        state = fill_synthetic(model)
        model.double()
        x = torch.randn(*input_shape)
        fx.add(f"{case}.input", x)
        for key in samples:
            fx.add(f"sample.{case}.{key}", state[key])
        model.eval()
        with torch.no_grad():
            fx.add(f"{case}.logits.eval", model(x.double()))
        fx.options(case, arch=arch, num_classes=num_classes, in_channels=in_channels, train=train)
        if not train:
            continue
        model.train()
        logits = model(x.double())
        fx.add(f"{case}.logits.train", logits)
        for key, t in model.state_dict().items():
            if key.endswith("running_mean") or key.endswith("running_var"):
                fx.add(f"{case}.after_train.{key}", t)
        if case == "resnet20":
            target = torch.randint(0, num_classes, (input_shape[0],), dtype=torch.int64)
            F.cross_entropy(logits, target).backward()
            fx.add(f"{case}.target", target)
            names = [k for k, _ in model.named_parameters()]
            fx.add(f"{case}.grad_norms", torch.stack([p.grad.norm() for _, p in model.named_parameters()]))
            fx.metadata[f"{case}.grad_norm_keys"] = json.dumps(names)
    fx.save(out_dir, "zoo_forward.safetensors")


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(repo, "tests", "fixtures"), help="output directory")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(2000)
    make_structure(args.out)
    torch.manual_seed(2001)
    make_forward(args.out)


if __name__ == "__main__":
    main()
