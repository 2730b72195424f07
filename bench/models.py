#!/usr/bin/python3
"""The benchmark networks, shared by the Python side (fx_qat_step.py imports build()) and the
C++ side, which reads the TorchScript files this script writes.

Usage: /usr/bin/python3 bench/models.py OUTPUT_DIR [--size PIXELS]
Writes OUTPUT_DIR/NAME.pt for every model in MODELS, traced in train() mode (so BatchNorm
trains when the C++ side runs the module) with random weights: nothing is downloaded.
A stamp file skips the work when the script and the size are unchanged.
"""
import argparse
import hashlib
import os
import sys

import torch
import torch.nn as nn
import torchvision


class TutorialCNN(nn.Module):
    """The tutorial-size CNN of the LibTorch reference measurements (Fashion-MNIST, 28x28):
    conv-bn-relu x2, max pool, linear-relu, linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.relu2 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(64 * 14 * 14, 128)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.pool(self.relu2(self.bn2(self.conv2(x))))
        return self.fc2(self.relu3(self.fc1(self.flatten(x))))


# name -> (constructor, channels, image size or None for the --size option, batch size)
MODELS = {
    "tutorial_cnn": (TutorialCNN, 1, 28, 128),
    "resnet18": (lambda: torchvision.models.resnet18(num_classes=1000), 3, None, 32),
    "mobilenet_v2": (lambda: torchvision.models.mobilenet_v2(num_classes=1000), 3, None, 32),
    "resnet50": (lambda: torchvision.models.resnet50(num_classes=1000), 3, None, 32),
}


def build(name):
    torch.manual_seed(0)
    return MODELS[name][0]()


def input_shape(name, size):
    _, channels, fixed, batch = MODELS[name]
    side = fixed or size
    return [batch, channels, side, side]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output_dir")
    parser.add_argument("--size", type=int, default=224, help="image side of the ImageNet models")
    args = parser.parse_args()
    os.makedirs(args.output_dir, exist_ok=True)
    with open(__file__, "rb") as source:
        stamp = hashlib.sha256(source.read() + str(args.size).encode()).hexdigest()
    stamp_path = os.path.join(args.output_dir, "models.stamp")
    if os.path.exists(stamp_path) and open(stamp_path).read() == stamp:
        return
    for name in MODELS:
        model = build(name).train()
        shape = input_shape(name, args.size)
        shape[0] = 2
        with torch.no_grad():
            traced = torch.jit.trace(model, torch.randn(shape), check_trace=False)
        traced.save(os.path.join(args.output_dir, name + ".pt"))
        print(f"wrote {name}.pt ({shape[1]}x{shape[2]}x{shape[3]})", file=sys.stderr)
    with open(stamp_path, "w") as out:
        out.write(stamp)


if __name__ == "__main__":
    main()
