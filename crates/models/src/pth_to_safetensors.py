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


def load(src):
    """torch.load, with its failure as one line (torch's own message for a file that is
    no torch.save output ends with advice about weights_only and hides the cause)."""
    with open(src, "rb") as f:
        head = f.read(4)
    # torch.save writes a zip archive (PK\x03\x04) or, before 1.6, a pickle (0x80).
    if head[:4] != b"PK\x03\x04" and head[:1] != b"\x80":
        shown = repr(head[:1].decode("latin-1")) if head else "end of file"
        raise SystemExit(f"error: invalid load key, {shown}: not a torch.save file (neither its zip archive "
                         f"nor a pickle; it starts with {head!r})")
    try:
        return torch.load(src, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - every failure becomes one line
        advice = ("weights only load failed", "please file an issue", "check the documentation")
        lines = [l.strip() for l in str(e).splitlines() if l.strip()]
        lines = [l for l in lines if not any(a in l.lower() for a in advice)] or lines
        cause = " ".join(lines[:2]) if lines else type(e).__name__
        raise SystemExit(f"error: {type(e).__name__}: {cause}")


def main():
    src, dst = sys.argv[1], sys.argv[2]
    save_safetensors(state_dict(load(src)), dst)


if __name__ == "__main__":
    main()
