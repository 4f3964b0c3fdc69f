#!/usr/bin/env python3
"""torchvision's AutoAugment policy tables, for policy.rs's auto_augment_tables_are_torchvisions.

    .venv/bin/python crates/augment/tests/auto_augment.py > crates/augment/tests/auto_augment.json
"""
import json

from torchvision.transforms.v2 import AutoAugment, AutoAugmentPolicy

print(json.dumps({p.value: AutoAugment(p)._policies
                  for p in [AutoAugmentPolicy.IMAGENET, AutoAugmentPolicy.CIFAR10, AutoAugmentPolicy.SVHN]}))
