#!/usr/bin/env python3
"""Grad-CAM reference for `cnnlab explain`, in PyTorch with hooks, as
pytorch-grad-cam's GradCAM computes it. Run with the project's .venv:

    .venv/bin/python crates/cli/tests/gradcam_ref.py RUN_DIR IMAGE LAYER > ref.json

RUN_DIR is a cnnlab run folder: its config.toml's [model] layers are rebuilt as a
torch.nn.Sequential (conv, batchnorm, the activations, max/avg pooling, global
average pooling, flatten, dropout, linear), its last.safetensors loaded into it, and
IMAGE (at the run's input size: no resizing) standardized with its normalizer.json.
LAYER is the 1-based row of the layer table (`Conv2d-9` is 9). A forward hook keeps
that layer's output, a tensor hook its gradient; the heat map is ReLU(sum_k w_k A_k)
with w_k the mean gradient of map k, upsampled bilinearly to the input and scaled
to [0, 1]. Prints JSON: class, probs and map (row-major, input height x width).
"""
import json
import struct
import sys
import tomllib

import numpy as np
import torch
from PIL import Image
from torch import nn


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    kinds = {"F32": np.float32, "F64": np.float64, "I64": np.int64}
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[a:b], dtype=kinds[t["dtype"]]).reshape(t["shape"]).copy())
    return out


class Flatten(nn.Module):
    def forward(self, x):
        return x.flatten(1)


class GlobalAvgPool(nn.Module):
    def forward(self, x):
        return x.mean((2, 3))


def build(layers, channels, classes, height, width):
    """The cnnlab layer list as (name, module) pairs; names as cnnlab's variables."""
    mods, shape = [], (channels, height, width)
    for i, spec in enumerate(layers):
        kind = spec["type"]
        if kind == "conv":
            k, s, p = spec["kernel"], spec.get("stride", 1), spec.get("padding", 0)
            m = nn.Conv2d(shape[0], spec["out"], k, stride=s, padding=p, bias=spec.get("bias", True),
                          groups=spec.get("groups", 1))
            side = lambda x: (x + 2 * p - k) // s + 1
            shape = (spec["out"], side(shape[1]), side(shape[2]))
        elif kind == "batchnorm":
            cls = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
            m = cls(shape[0], eps=spec.get("eps", 1e-5), momentum=spec.get("momentum", 0.1))
        elif kind in ("relu", "relu6", "elu", "leaky_relu", "gelu"):
            m = {"relu": nn.ReLU(), "relu6": nn.ReLU6(), "elu": nn.ELU(), "leaky_relu": nn.LeakyReLU(),
                 "gelu": nn.GELU()}[kind]
        elif kind in ("maxpool", "avgpool"):
            k = spec["kernel"]
            s = spec.get("stride") or k
            m = nn.MaxPool2d(k, s) if kind == "maxpool" else nn.AvgPool2d(k, s)
            shape = (shape[0], (shape[1] - k) // s + 1, (shape[2] - k) // s + 1)
        elif kind == "global_avg_pool":
            m, shape = GlobalAvgPool(), (shape[0],)
        elif kind == "flatten":
            m, shape = Flatten(), (int(np.prod(shape)),)
        elif kind == "dropout":
            m = nn.Dropout(spec["p"])
        elif kind == "linear":
            out = spec.get("out") or classes
            m, shape = nn.Linear(shape[0], out, bias=spec.get("bias", True)), (out,)
        else:
            sys.exit(f"gradcam_ref.py: layer type {kind!r} is not in this reference")
        mods.append((f"{kind}{i}", m))
    return mods


def main():
    run, image, layer = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(f"{run}/config.toml", "rb") as f:
        cfg = tomllib.load(f)
    shape = json.load(open(f"{run}/shape.json"))
    classes = json.load(open(f"{run}/classes.json"))
    norm = json.load(open(f"{run}/normalizer.json"))
    c, h, w = shape["channels"], shape["height"], shape["width"]
    mods = build(cfg["model"]["layers"], c, len(classes), h, w)
    state = read_safetensors(f"{run}/last.safetensors")
    net = nn.Sequential()
    for name, m in mods:
        net.add_module(name, m)
    net.load_state_dict({k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}, strict=False)
    missing = [k for k in net.state_dict() if k not in state and not k.endswith("num_batches_tracked")]
    if missing:
        sys.exit(f"gradcam_ref.py: {missing} not in last.safetensors")
    net.eval()

    img = Image.open(image).convert("L" if c == 1 else "RGB")
    if img.size != (w, h):
        sys.exit(f"gradcam_ref.py: {image} is {img.size}, the run takes {w}x{h}")
    x = torch.from_numpy(np.asarray(img, dtype=np.uint8).reshape(h, w, c).copy())
    x = x.permute(2, 0, 1).unsqueeze(0).float() * (1.0 / 255.0)
    mean = torch.tensor(norm["mean"], dtype=torch.float32).view(1, c, 1, 1)
    std = torch.tensor(norm["std"], dtype=torch.float32).view(1, c, 1, 1)
    x = (x - mean) / std

    kept = {}

    def forward_hook(_module, _inputs, output):
        kept["maps"] = output
        output.register_hook(lambda g: kept.__setitem__("grads", g))

    target = mods[layer - 1][1]
    target.register_forward_hook(forward_hook)
    x.requires_grad_(True)  # so that the hooked output has a gradient
    logits = net(x)
    probs = logits.softmax(-1)[0]
    cls = int(sys.argv[4]) if len(sys.argv) > 4 else int(probs.argmax())
    logits[0, cls].backward()
    with torch.no_grad():
        weights = kept["grads"].mean((2, 3), keepdim=True)
        cam = (weights * kept["maps"]).sum(1, keepdim=True).relu()
        cam = nn.functional.interpolate(cam, size=(h, w), mode="bilinear", align_corners=False)
        cam = cam - cam.min()
        cam = cam / (cam.max() + 1e-7)
    print(json.dumps({"class": cls, "probs": probs.tolist(), "map": cam.flatten().tolist()}))


if __name__ == "__main__":
    main()
