#!/usr/bin/env python3
"""torchvision reference for benches/augment.rs: the same recipes, ops and policies, one image at a
time on one thread, images/s. Uses the project's venv torch plus torchvision:

    .venv/bin/pip install torchvision==0.28.0 --no-deps && .venv/bin/pip install numpy pillow
    .venv/bin/python crates/augment/benches/torchvision_ref.py
"""
import json
import time

import torch
from torchvision.transforms import v2

torch.set_num_threads(1)


def rate(transform, img, seconds=3.0):
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        transform(img)
        n += 1
    return n / (time.perf_counter() - start)


def main():
    g = torch.Generator().manual_seed(1)
    photo = torch.randint(0, 256, (3, 224, 224), dtype=torch.uint8, generator=g)
    small = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=g)
    seed002 = v2.Compose([
        v2.RandomAffine(degrees=10, scale=(0.9, 1.1), interpolation=v2.InterpolationMode.BILINEAR),
        v2.ColorJitter(brightness=(0.7, 1.3)),
        v2.RandomHorizontalFlip(0.5),
    ])
    cifar = v2.Compose([v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip(0.5)])
    out = {
        "seed002_224x224": rate(seed002, photo),
        "pad4_crop_flip_32x32": rate(cifar, small),
        "torch": torch.__version__,
    }
    F = v2.functional
    ops = {
        "hflip": F.horizontal_flip,
        "vflip": F.vertical_flip,
        "grayscale": lambda x: F.rgb_to_grayscale(x, num_output_channels=3),
        "solarize": lambda x: F.solarize(x, 128),
        "posterize": lambda x: F.posterize(x, 4),
        "autocontrast": F.autocontrast,
        "equalize": F.equalize,
        "sharpness": lambda x: F.adjust_sharpness(x, 2.0),
        "gaussian_blur_5": lambda x: F.gaussian_blur(x, [5, 5], [1.5, 1.5]),
        "rotate_zoom": lambda x: F.affine(x, angle=10.0, translate=[0, 0], scale=1.1, shear=[0.0, 0.0],
                                          interpolation=v2.InterpolationMode.BILINEAR),
        "affine_bilinear": lambda x: F.affine(x, angle=10.0, translate=[3, -2], scale=1.1, shear=[5.0, 0.0],
                                              interpolation=v2.InterpolationMode.BILINEAR, fill=0),
        "perspective": lambda x: F.perspective(x, [[0, 0], [223, 0], [223, 223], [0, 223]],
                                               [[20, 10], [210, 5], [200, 215], [8, 220]], fill=0),
        "color_jitter_fixed": lambda x: F.adjust_hue(F.adjust_saturation(F.adjust_contrast(
            F.adjust_brightness(x, 1.2), 0.8), 1.3), 0.05),
        "hue": lambda x: F.adjust_hue(x, 0.05),
        "resize_to_112": lambda x: F.resize(x, [112, 112], antialias=True),
        "resize_bicubic_to_112": lambda x: F.resize(x, [112, 112], interpolation=v2.InterpolationMode.BICUBIC,
                                                    antialias=True),
        "center_crop_200": lambda x: F.center_crop(x, [200, 200]).contiguous(),
    }
    for name, op in ops.items():
        out[f"op_224x224/{name}"] = rate(op, photo, seconds=2.0)
    policies = {
        "random_erasing": v2.RandomErasing(p=1.0),
        "color_jitter": v2.ColorJitter(0.4, 0.4, 0.4, 0.1),
        "color_jitter_no_hue": v2.ColorJitter(0.4, 0.4, 0.4),
        "rand_augment": v2.RandAugment(num_ops=2, magnitude=9),
        "trivial_augment_wide": v2.TrivialAugmentWide(),
        "aug_mix": v2.AugMix(),
    }
    for name, op in policies.items():
        out[f"augment/{name}_224x224"] = rate(op, photo, seconds=2.0)
    big = torch.randint(0, 256, (3, 375, 500), dtype=torch.uint8, generator=g)
    out["augment/random_resized_crop_224_from_375x500"] = rate(v2.RandomResizedCrop(224, antialias=True), big, 2.0)
    out["augment/resize_256_center_crop_224_from_375x500"] = rate(
        v2.Compose([v2.Resize(256, antialias=True), v2.CenterCrop(224)]), big, 2.0)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
