#!/usr/bin/env python3
"""Loads a state dict cnnlab wrote (cnnlab_models::state_dict, as `cnnlab export --format folder`
writes model.safetensors) into the original PyTorch model with strict=True, and writes that
model's logits on an input, for crates/models/tests/tests.rs.

    python original_load.py resnet18|resnet50|efficientnet_lite0 WEIGHTS.safetensors INPUT.safetensors OUT.f32

Reads safetensors with a few lines of numpy (the `safetensors` package is not needed).
"""
import json
import struct
import sys

import numpy as np
import torch

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32}


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header, body = json.loads(data[8:8 + n]), data[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        values = np.frombuffer(body[start:end], dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
        out[name] = torch.from_numpy(values.copy())
    return out


def main():
    kind, weights, inputs, out = sys.argv[1:5]
    if kind == "efficientnet_lite0":
        from efficientnet_lite_pytorch import EfficientNet
        model = EfficientNet.from_name("efficientnet-lite0")
    else:
        import torchvision
        model = getattr(torchvision.models, kind)(num_classes=1000)
    model.load_state_dict(load_safetensors(weights), strict=True)
    model.eval()
    x = next(iter(load_safetensors(inputs).values()))
    with torch.no_grad():
        model(x).numpy().astype(np.float32).tofile(out)


if __name__ == "__main__":
    main()
