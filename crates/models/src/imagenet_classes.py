"""Writes imagenet_classes.txt (beside this file): the 1000 ImageNet-1k class names in
index order, as torchvision lists them (torchvision.models._meta._IMAGENET_CATEGORIES),
for the `head = "imagenet"` classifiers. Run with the project's .venv:

    .venv/bin/python crates/models/src/imagenet_classes.py
"""
import os

from torchvision.models._meta import _IMAGENET_CATEGORIES

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "imagenet_classes.txt"), "w") as f:
    f.write("\n".join(_IMAGENET_CATEGORIES) + "\n")
