#!/usr/bin/env python3
"""Goldens for cnnlab-augment's batch mixing (src/mix.rs): torchvision v2's MixUp and CutMix
with their random parameters fixed, on a float32 NCHW batch and integer labels.

    .venv/bin/python crates/augment/tests/torchvision_mix.py > crates/augment/tests/torchvision_mix.json
"""
import json

import torch
import torchvision
from torchvision.transforms import v2


def main():
    g = torch.Generator().manual_seed(20261207)
    n, c, h, w, k = 4, 3, 5, 6, 3
    images = torch.rand(n, c, h, w, generator=g)
    labels = torch.tensor([0, 2, 1, 2])
    cases = []
    for lam in [0.3, 0.8137]:
        mixup = v2.MixUp(alpha=1.0, num_classes=k)
        mixup.make_params = lambda flat, lam=lam: dict(lam=lam)
        out, mixed = mixup(images, labels)
        cases.append(dict(kind="mixup", lam=lam, box=None, images=out.flatten().tolist(),
                          labels=mixed.flatten().tolist()))
    for x1, y1, x2, y2 in [(1, 2, 4, 5), (0, 0, 6, 1)]:
        lam = 1.0 - (x2 - x1) * (y2 - y1) / (w * h)
        cutmix = v2.CutMix(alpha=1.0, num_classes=k)
        cutmix.make_params = lambda flat, box=(x1, y1, x2, y2), lam=lam: dict(box=box, lam_adjusted=lam)
        out, mixed = cutmix(images, labels)
        cases.append(dict(kind="cutmix", lam=lam, box=[y1, x1, y2 - y1, x2 - x1], images=out.flatten().tolist(),
                          labels=mixed.flatten().tolist()))
    print(json.dumps(dict(torchvision=torchvision.__version__, shape=[n, c, h, w], classes=k,
                          input=images.flatten().tolist(), labels=labels.tolist(), cases=cases)))


if __name__ == "__main__":
    main()
