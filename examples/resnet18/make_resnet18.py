#!/usr/bin/python3
"""Writes torchvision's resnet18 (10 classes, random initialization: no weights are
downloaded) as TorchScript, traced in train() mode at 3x32x32 so BatchNorm trains during QAT.

Usage: /usr/bin/python3 examples/resnet18/make_resnet18.py OUTPUT.pt   (Debian's python3-torch)
"""
import sys

import torch
import torchvision

torch.manual_seed(0)
model = torchvision.models.resnet18(num_classes=10)
model.train()
traced = torch.jit.trace(model, torch.randn(2, 3, 32, 32))
traced.save(sys.argv[1])
print(f"wrote {sys.argv[1]}")
