#!/usr/bin/env python3
"""PyTorch reference for `cnnlab train configs/fashion-mnist/seed3-final.toml --epochs 1`:
the same network (173,802 parameters), Adam 1e-3, batch 64, shuffled, one epoch on the
real Fashion-MNIST from pre-built tensors, then test accuracy. Uses the project's venv:

    .venv/bin/pip install numpy   # torch is already there after `cargo xtask setup`
    .venv/bin/python crates/train/benches/seed3_final_torch.py [IDX_DIR]
"""
import gzip
import json
import sys
import time

import numpy as np
import torch
from torch import nn


def idx(path):
    with gzip.open(path) as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
    torch.manual_seed(0)
    xtr = torch.tensor(idx(f"{root}/train-images-idx3-ubyte.gz")).float().div(255).unsqueeze(1)
    ytr = torch.tensor(idx(f"{root}/train-labels-idx1-ubyte.gz")).long()
    xte = torch.tensor(idx(f"{root}/t10k-images-idx3-ubyte.gz")).float().div(255).unsqueeze(1)
    yte = torch.tensor(idx(f"{root}/t10k-labels-idx1-ubyte.gz")).long()
    mean, std = xtr.mean(), xtr.std()
    xtr, xte = (xtr - mean) / std, (xte - mean) / std

    def block(i, o):
        return [nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2)]

    net = nn.Sequential(*block(1, 16), *block(16, 32), *block(32, 64), nn.Flatten(),
                        nn.Linear(64 * 3 * 3, 256), nn.ReLU(), nn.Linear(256, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    net.train()
    for idxs in torch.randperm(len(xtr)).split(64):
        opt.zero_grad()
        loss = loss_fn(net(xtr[idxs]), ytr[idxs])
        loss.backward()
        opt.step()
    train_s = time.perf_counter() - start
    net.eval()
    with torch.no_grad():
        acc = sum((net(xte[i:i + 500]).argmax(1) == yte[i:i + 500]).sum().item() for i in range(0, len(xte), 500))
    print(json.dumps({"params": sum(p.numel() for p in net.parameters()), "train_seconds": round(train_s, 2),
                      "images_per_sec": round(len(xtr) / train_s), "test_accuracy": acc / len(xte),
                      "torch": torch.__version__, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
