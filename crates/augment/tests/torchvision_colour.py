#!/usr/bin/env python3
"""Goldens for cnnlab-augment's colour, blur, crop, resize and warp ops: torchvision v2's
functional ops on uint8 images.

Run by hand (the project's .venv has torch; pip install torchvision==0.28.0 numpy)
from the repository root:
    python3 crates/augment/tests/torchvision_colour.py > crates/augment/tests/torchvision_colour.json
The Rust test (tests.rs, colour_ops_match_torchvision) reads the JSON; no Python runs
at test time.
"""
import json
import sys

import numpy as np
import torch
import torchvision
from torchvision.transforms.v2 import functional as F


def photo(rng, h, w, c):
    """A small image with smooth gradients, an edge and noise, like a photo."""
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([40 + 150 * x / w, 30 + 120 * y / h, 90 + 60 * np.sin(x / 3.0 + y / 5.0)], axis=-1)[..., :c]
    base[h // 3: 2 * h // 3, w // 4: w // 2] += 60
    img = base + rng.normal(0, 12, size=base.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def main():
    rng = np.random.default_rng(20261202)
    cases = []
    for (h, w, c) in [(20, 24, 3), (17, 13, 1)]:
        img = photo(rng, h, w, c)
        t = torch.from_numpy(img).permute(2, 0, 1).contiguous()  # CHW uint8
        ops = [("invert", None, F.invert(t)), ("autocontrast", None, F.autocontrast(t)),
               ("equalize", None, F.equalize(t))]
        for thr in [64, 128, 200]:
            ops.append(("solarize", thr, F.solarize(t, thr)))
        for bits in [1, 3, 6]:
            ops.append(("posterize", bits, F.posterize(t, bits)))
        for f in [0.0, 0.5, 2.0]:
            ops.append(("sharpness", f, F.adjust_sharpness(t, f)))
        if c == 3:
            ops.append(("grayscale", None, F.rgb_to_grayscale(t, num_output_channels=3)))
            for hue in [-0.4, -0.1, 0.05, 0.3, 0.5]:
                ops.append(("hue", hue, F.adjust_hue(t, hue)))
        for k, sigma in [(3, 0.8), (5, 1.5)]:
            ops.append(("gaussian_blur", [k, sigma], F.gaussian_blur(t, [k, k], [sigma, sigma])))
        # [27, 27] and [23, 11] pad by an odd amount that is 3 mod 4 (issue 37: one pixel off).
        for size in [[11, 9], [26, 30], [7, 7], [27, 27], [23, 11]]:
            ops.append(("center_crop", size, F.center_crop(t, size)))
        for size in [[10, 12], [8, 5], [31, 40], [20, 7]]:
            ops.append(("resize", size, F.resize(t, size, antialias=True)))
        # Issue 37: bicubic (antialiased) and nearest resizing, torchvision's defaults.
        for size in [[10, 12], [31, 40], [9, 30]]:
            for interp in ["bicubic", "nearest"]:
                mode = getattr(F.InterpolationMode, interp.upper())
                ops.append(("resize_" + interp, size, F.resize(t, size, interpolation=mode, antialias=True)))
        # Pad with every padding_mode, [left, top, right, bottom], per-channel fill.
        for mode in ["constant", "edge", "reflect", "symmetric"]:
            for padding in [[2, 1, 3, 4], [5, 0, 0, 6]]:
                fill = [7, 200, 31][:c] if mode == "constant" else 0
                out = F.pad(t, padding, fill=fill, padding_mode=mode)
                ops.append(("pad", dict(padding=padding, mode=mode, fill=fill), out))
        if c == 3:
            ops.append(("grayscale_1", None, F.rgb_to_grayscale(t, num_output_channels=1)))
        # JPEG re-encoding (libjpeg-turbo here, another encoder in cnnlab: compared
        # by mean difference, not value for value).
        for quality in [50, 90]:
            ops.append(("jpeg", quality, F.jpeg(t, quality)))
        for f in [0.3, 1.0, 1.7]:
            ops.append(("adjust_brightness", f, F.adjust_brightness(t, f)))
            ops.append(("adjust_contrast", f, F.adjust_contrast(t, f)))
            if c == 3:
                ops.append(("adjust_saturation", f, F.adjust_saturation(t, f)))
        # Grid warps: affine (RandomAffine's and the policies' shears about the
        # top-left corner), rotate, perspective; nearest and bilinear, fill None or 0.
        warps = [
            dict(angle=17.0, translate=[2, -1], scale=1.1, shear=[5.0, -8.0], center=None),
            dict(angle=-40.0, translate=[0, 0], scale=0.8, shear=[0.0, 0.0], center=None),
            dict(angle=0.0, translate=[0, 0], scale=1.0, shear=[16.7, 0.0], center=[0, 0]),
            dict(angle=0.0, translate=[-3, 0], scale=1.0, shear=[0.0, 0.0], center=None),
        ]
        for a in warps:
            for interp in ["nearest", "bilinear"]:
                for fill in [None, 0]:
                    param = dict(a, interpolation=interp, fill=fill)
                    out = F.affine(t, angle=a["angle"], translate=a["translate"], scale=a["scale"], shear=a["shear"],
                                   interpolation=getattr(F.InterpolationMode, interp.upper()), fill=fill,
                                   center=a["center"])
                    ops.append(("affine", param, out))
        for angle in [13.0, -100.0]:
            for interp in ["nearest", "bilinear"]:
                out = F.rotate(t, angle, interpolation=getattr(F.InterpolationMode, interp.upper()))
                ops.append(("rotate", dict(angle=angle, interpolation=interp, fill=None), out))
        start = [[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]]
        for end in [[[2, 1], [w - 3, 0], [w - 1, h - 4], [1, h - 2]], [[0, 3], [w - 1, 1], [w - 5, h - 1], [3, h - 3]]]:
            for interp in ["nearest", "bilinear"]:
                for fill in [None, 0]:
                    out = F.perspective(t, start, end, interpolation=getattr(F.InterpolationMode, interp.upper()),
                                        fill=fill)
                    ops.append(("perspective", dict(start=start, end=end, interpolation=interp, fill=fill), out))
        for name, param, out in ops:
            cases.append({"op": name, "param": param, "height": h, "width": w, "channels": c,
                          "input": img.ravel().tolist(), "out_shape": list(out.shape[1:]),
                          "expected": out.permute(1, 2, 0).contiguous().numpy().ravel().tolist()})
    json.dump({"torchvision": torchvision.__version__, "cases": cases}, sys.stdout)


if __name__ == "__main__":
    main()
