"""Converts a torch.save'd state_dict (.pth/.pt/.bin, legacy or zip format) into a
.safetensors file that cnnlab (libtorch through tch) reads: cnnlab runs this once
with the project's .venv torch and caches the result beside the run.

    python pth_to_safetensors.py weights.pth weights.safetensors

Only tensors are kept; a `module.` prefix (DataParallel) is dropped; a checkpoint
dict with a "state_dict" or "model" entry is unwrapped.
"""
import ctypes
import json
import struct
import sys

import torch

DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
          torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
          torch.bool: "BOOL"}


def state_dict(obj):
    if hasattr(obj, "state_dict"):
        obj = obj.state_dict()
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise SystemExit(f"{sys.argv[1]}: not a state_dict (a {type(obj).__name__})")
    return {(k[len("module."):] if k.startswith("module.") else k): v
            for k, v in obj.items() if isinstance(v, torch.Tensor)}


def save_safetensors(tensors, path):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().clone().contiguous()
        # The tensor's bytes straight from its memory (no numpy needed).
        data = ctypes.string_at(t.data_ptr(), t.numel() * t.element_size()) if t.numel() else b""
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def main():
    src, dst = sys.argv[1], sys.argv[2]
    obj = torch.load(src, map_location="cpu", weights_only=True)
    save_safetensors(state_dict(obj), dst)


if __name__ == "__main__":
    main()
