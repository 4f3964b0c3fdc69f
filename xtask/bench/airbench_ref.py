#!/usr/bin/env python3
"""airbench94's recipe in plain PyTorch, on a CIFAR-10 image folder: the reference that
`configs/cifar10/fast94.toml` is checked against (same data, same machine).

    .venv/bin/python xtask/bench/airbench_ref.py data/cifar10-jpg --epochs 2

Follows Keller Jordan's airbench94 as published (github.com/KellerJordan/cifar10-airbench,
airbench94.py), re-written here for a CPU and an image folder:
  * frozen 2x2 patch-whitening conv (eigenvectors of the uncentred patch covariance of
    5,000 normalized training images, scaled by 1/sqrt(eigenvalue + 5e-4), and their
    negatives) with a bias trained for the first 3 of 9.9 epochs, GELU;
  * three groups conv-maxpool-BN-GELU-conv-BN-GELU of widths 64/256/256, 3x3 convs
    without bias, the first min(in, out) filters dirac-initialised; batch norms with a
    frozen unit scale, eps 1e-12, PyTorch momentum 0.4; maxpool 3, linear without bias,
    logits times 1/9;
  * summed label-smoothed (0.2) cross-entropy, Nesterov SGD with momentum 0.85, lr 11.5
    and weight decay 0.0153 "per 1024 examples" (divided by 1024 * (1 + 1/(1-0.85))),
    batch-norm biases at 64x the lr with the same decay per step; lr triangle
    0.2 -> 1 at 23% -> 0.07 over ceil(48 * epochs) steps of 1024 (last partial batch dropped);
  * augmentation: a random half of the images flipped once, then every odd epoch all of
    them flipped ("alternating flip"); reflect-pad 2 and a random 32x32 crop per epoch;
  * lookahead from epoch 3: every 5 steps the average moves toward the weights by
    1 - 0.95^5 * (step/total)^3 and the weights restart from it; the weights take the
    average at the end of every epoch;
  * test: mirror + one-pixel translate test-time augmentation (6 views, airbench's weights).
With `--epochs E` the 3-epoch milestones (whitening bias, lookahead start) scale by E/9.9.

Differences from the original, none of which changes the algorithm: fp32 on the CPU
(not fp16 on a GPU), images from the JPEG folder (`<dir>/{train,test}/<class>/*.jpg`,
decoded with PIL once into memory), the 5,000 whitening
images spaced evenly through the (class-sorted) training set instead of the first 5,000
of CIFAR's shuffled batches. Prints one line per epoch and a final JSON line.
"""
import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

MEAN = torch.tensor((0.4914, 0.4822, 0.4465)).view(1, 3, 1, 1)
STD = torch.tensor((0.2470, 0.2435, 0.2616)).view(1, 3, 1, 1)


def load_split(root):
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    images, labels = [], []
    for label, name in enumerate(classes):
        folder = os.path.join(root, name)
        for file in sorted(os.listdir(folder)):
            with Image.open(os.path.join(folder, file)) as im:
                images.append(np.asarray(im.convert("RGB"), dtype=np.uint8))
            labels.append(label)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255)
    return (x - MEAN) / STD, torch.tensor(labels)


class ShiftNorm(nn.BatchNorm2d):
    """Batch norm whose scale stays 1: only the shift learns."""

    def __init__(self, c):
        super().__init__(c, eps=1e-12, momentum=0.4)
        self.weight.requires_grad_(False)


def conv3(cin, cout):
    layer = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
    with torch.no_grad():
        nn.init.dirac_(layer.weight[: min(cin, cout)])
    return layer


def group(cin, cout):
    return [conv3(cin, cout), nn.MaxPool2d(2), ShiftNorm(cout), nn.GELU(),
            conv3(cout, cout), ShiftNorm(cout), nn.GELU()]


class Scale(nn.Module):
    def __init__(self, by):
        super().__init__()
        self.by = by

    def forward(self, x):
        return x * self.by


def make_net(widths=(64, 256, 256)):
    whiten = nn.Conv2d(3, 24, 2, bias=True)
    whiten.weight.requires_grad_(False)
    with torch.no_grad():
        whiten.bias.zero_()
    return nn.Sequential(whiten, nn.GELU(), *group(24, widths[0]), *group(widths[0], widths[1]),
                         *group(widths[1], widths[2]), nn.MaxPool2d(3), nn.Flatten(),
                         nn.Linear(widths[2], 10, bias=False), Scale(1 / 9))


def fit_whitening(conv, xs, eps=5e-4):
    c, k = xs.shape[1], conv.kernel_size[0]
    patches = xs.unfold(2, k, 1).unfold(3, k, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, c * k * k).double()
    cov = patches.T @ patches / len(patches)
    values, vectors = torch.linalg.eigh(cov)
    values, vectors = values.flip(0), vectors.flip(1).T
    scaled = (vectors / (values + eps).sqrt().unsqueeze(1)).reshape(-1, c, k, k)
    with torch.no_grad():
        conv.weight.copy_(torch.cat([scaled, -scaled]).float())


def random_crop(padded, size, gen):
    n, r = len(padded), (padded.shape[-1] - size) // 2
    dy = torch.randint(0, 2 * r + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * r + 1, (n,), generator=gen)
    out = torch.empty(n, padded.shape[1], size, size)
    for y in range(2 * r + 1):
        for x in range(2 * r + 1):
            m = (dy == y) & (dx == x)
            out[m] = padded[m, :, y:y + size, x:x + size]
    return out


def tta_logits(net, xs):
    def mirror(v):
        return 0.5 * net(v) + 0.5 * net(v.flip(-1))

    padded = F.pad(xs, (1, 1, 1, 1), mode="reflect")
    shifted = 0.5 * mirror(padded[:, :, 0:32, 0:32]) + 0.5 * mirror(padded[:, :, 2:34, 2:34])
    return 0.5 * mirror(xs) + 0.5 * shifted


def evaluate(net, xs, ys, tta):
    net.eval()
    with torch.no_grad():
        logits = torch.cat([(tta_logits(net, b) if tta else net(b)) for b in xs.split(1000)])
    net.train()
    return (logits.argmax(1) == ys).float().mean().item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root", help="folder with train/<class>/*.jpg and test/<class>/*.jpg")
    ap.add_argument("--epochs", type=float, default=9.9)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)

    t0 = time.time()
    train_x, train_y = load_split(os.path.join(args.root, "train"))
    test_x, test_y = load_split(os.path.join(args.root, "test"))
    print(f"decoded {len(train_x)} + {len(test_x)} images in {time.time() - t0:.0f} s", flush=True)

    batch, momentum, epochs = 1024, 0.85, args.epochs
    kilostep = 1024 * (1 + 1 / (1 - momentum))
    lr, wd = 11.5 / kilostep, 0.0153 * batch / kilostep
    lr_bias = 64 * lr
    milestone = 3 * epochs / 9.9  # whitening-bias and lookahead epochs, scaled

    net = make_net()
    fit_whitening(net[0], train_x[torch.arange(5000) * len(train_x) // 5000])
    norm_biases = [p for n, p in net.named_parameters() if p.requires_grad and isinstance(
        dict(net.named_modules())[n.rsplit(".", 1)[0]], ShiftNorm)]
    ids = {id(p) for p in norm_biases}
    others = [p for p in net.parameters() if p.requires_grad and id(p) not in ids]
    opt = torch.optim.SGD([dict(params=norm_biases, lr=lr_bias, weight_decay=wd / lr_bias),
                           dict(params=others, lr=lr, weight_decay=wd / lr)],
                          momentum=momentum, nesterov=True)
    steps_per_epoch = len(train_x) // batch
    total = math.ceil(steps_per_epoch * epochs)
    peak = int(0.23 * total)

    def lr_factor(step):
        if step < peak:
            return 0.2 + (1 - 0.2) * step / peak
        return 1 + (0.07 - 1) * (step - peak) / (total - peak)

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.2, reduction="sum")

    flip = torch.rand(len(train_x), generator=gen) < 0.5
    base = torch.where(flip.view(-1, 1, 1, 1), train_x.flip(-1), train_x)
    padded = F.pad(base, (2, 2, 2, 2), mode="reflect")
    ema, step, train_time, history = None, 0, 0.0, []
    for epoch in range(math.ceil(epochs)):
        t = time.time()
        net[0].bias.requires_grad_(epoch < milestone)
        images = random_crop(padded, 32, gen)
        if epoch % 2 == 1:
            images = images.flip(-1)
        order = torch.randperm(len(images), generator=gen)
        for i in range(steps_per_epoch):
            idx = order[i * batch:(i + 1) * batch]
            loss = loss_fn(net(images[idx]), train_y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if epoch >= milestone and step % 5 == 0:
                state = net.state_dict()
                if ema is None:
                    ema = {k: v.clone() for k, v in state.items()}
                else:
                    rho = 0.95 ** 5 * (step / total) ** 3
                    for k, v in state.items():
                        if v.is_floating_point():
                            ema[k].lerp_(v, 1 - rho)
                            v.copy_(ema[k])
            if step >= total:
                break
        if ema is not None:
            for k, v in net.state_dict().items():
                if v.is_floating_point():
                    v.copy_(ema[k])
        train_time += time.time() - t
        acc = evaluate(net, test_x, test_y, tta=False)
        history.append(acc)
        print(f"epoch {epoch + 1}: loss {loss.item() / batch:.4f} test {acc:.4f} "
              f"({time.time() - t:.0f} s, {steps_per_epoch * batch / (time.time() - t):.0f} img/s)", flush=True)
    tta = evaluate(net, test_x, test_y, tta=True)
    print(json.dumps({"epochs": epochs, "seed": args.seed, "test_accuracy": history[-1],
                      "tta_test_accuracy": tta, "train_seconds": round(train_time, 1),
                      "per_epoch": [round(a, 4) for a in history]}))


if __name__ == "__main__":
    main()
