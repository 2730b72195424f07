#!/usr/bin/python3
"""Writes the TorchScript models the frontend tests capture, with Python's own facts about each.

Usage: make_torchscript_models.py OUTPUT_DIR

For every model NAME it writes
  NAME.pt       the TorchScript module (torch.jit.save)
  NAME.io.pt    torch.save({"input": ..., "output": ...}): an example input and the output of the
                Python model in eval() mode on it (a tuple output is saved as a list)
  NAME.json     {"training": bool, "input_shapes": [...], "parameters": [names],
                 "buffers": [names], "modules": [[qualified name, type(m).__name__], ...]}
                from the Python model's named_parameters / named_buffers / named_modules.

Tracing mode is recorded in "training": models traced in train() mode keep training=True
constants in their graph (aten::batch_norm(..., training=True), aten::dropout(..., train=True))
and the num_batches_tracked.add_(1) update; the saved output is still the eval() output.
The directory holds a stamp with this script's hash, so a second run with an unchanged script
does nothing (ctest runs it as a fixture before every frontend test run).
"""
import hashlib
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

# Small images keep the tests fast; every model here is fully convolutional up to its
# adaptive pooling, so the graph is the same as at 224x224.
IMAGE_SIZE = 64


class TutorialNet(nn.Module):
    """The coremltools LinearQuantizer tutorial network (Fashion-MNIST, 28x28)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 12, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2, 2)
        self.flatten = nn.Flatten()
        self.dense = nn.Linear(2352, 10)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, x):
        return self.softmax(self.dense(self.flatten(self.pool(self.relu(self.conv(x))))))


class Block(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.conv2(y)
        return F.relu(x + y)


class ResidualNet(nn.Module):
    """Residual block, concatenation, mean, flatten/permute/transpose/reshape, layer norm,
    attention-like matmuls, scalar arithmetic and two outputs."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.Hardswish())
        self.block = Block(8)
        self.branch = nn.Conv2d(8, 8, 1)
        self.norm = nn.LayerNorm(16)
        self.act = nn.GELU()
        self.drop = nn.Dropout(0.1)
        self.head = nn.Linear(16 * 16, 10)

    def forward(self, x):
        x = self.stem(x)
        x = self.block(x)
        y = torch.cat([x, self.branch(x)], dim=1)
        pooled = y.mean(dim=(2, 3))
        t = y.flatten(2).permute(0, 2, 1)
        t = self.norm(t)
        attention = torch.matmul(t, t.transpose(1, 2)).softmax(dim=-1)
        t = torch.matmul(attention, t)
        t = self.act(t).transpose(1, 2)
        t = t.view(t.size(0), 16, -1)
        t = self.drop(t.reshape(t.size(0), -1))
        logits = self.head(t) * 0.5 - 1.0
        return logits, pooled / 2.0


class CumulativeAttention(nn.Module):
    """Counts its calls in a buffer, a state change linquant does not capture."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 8)
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    def forward(self, x):
        self.calls.add_(1)  # the unsupported line
        return self.proj(torch.cumsum(x, dim=1))


class GenericNet(nn.Module):
    """Ops linquant has no rule of its own for (run as generic LibTorch operators): shape
    arithmetic on sizes (ShuffleNet's channel shuffle), squeeze/unsqueeze, chunk, a class token
    expanded to the batch, a position table and a layer scale used as values, and an integer
    buffer used as an index."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, padding=1)
        self.layer_scale = nn.Parameter(torch.rand(8, 1, 1) + 0.5)
        self.cls = nn.Parameter(torch.randn(1, 1, 8))
        self.pos = nn.Parameter(torch.randn(1, 17, 8) * 0.1)
        self.register_buffer("index", torch.tensor([3, 1, 2, 0, 5, 4, 7, 6]))
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        b, c, h, w = x.size()
        x = x.view(b, 2, c // 2, h, w).transpose(1, 2).contiguous().view(b, -1, h, w)
        x = torch.relu(self.conv(x)) * self.layer_scale
        x = x[:, self.index]
        first, second = x.chunk(2, dim=1)
        x = torch.cat([second, first], dim=1)
        tokens = x.flatten(2).transpose(1, 2).unsqueeze(0).squeeze(0)
        tokens = torch.cat([self.cls.expand(b, -1, -1), tokens], dim=1) + self.pos
        return self.head(tokens.mean(dim=1))


class SequenceNet(nn.Module):
    """Ops the Core ML export rewrites: a bidirectional GRU (unrolled), a 2-layer LSTM (MIL
    lstm with reordered gates), einsum attention (matmuls), and adaptive pooling to a size
    that does not divide its input (averaging matrices). Input [B, 5, 6]."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(6, 8)
        self.gru = nn.GRU(8, 8, batch_first=True, bidirectional=True)
        self.lstm = nn.LSTM(16, 8, num_layers=2, batch_first=True)
        self.pool = nn.AdaptiveAvgPool1d(3)
        self.head = nn.Linear(24, 4)

    def forward(self, x):
        h = torch.relu(self.proj(x))
        h, _ = self.gru(h)
        h, _ = self.lstm(h)
        scores = torch.einsum("bid,bjd->bij", h, h).softmax(dim=-1)
        h = torch.einsum("bij,bjd->bdi", scores, h)
        return self.head(self.pool(h).flatten(1))


class ResampleNet(nn.Module):
    """Image ops the Core ML export rewrites: GroupNorm, nearest upsampling by 2 and to a
    size that is not a multiple (6 -> 9), bilinear upsampling with and without
    align_corners, pixel_shuffle and max over channels. Input [B, 3, 6, 6]."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.norm = nn.GroupNorm(2, 8)
        self.expand = nn.Conv2d(8, 16, 1)

    def forward(self, x):
        h = F.relu(self.norm(self.conv(x)))
        doubled = F.interpolate(h, scale_factor=2.0, mode="nearest")
        smooth = F.interpolate(h, size=(12, 12), mode="bilinear", align_corners=False)
        odd = F.interpolate(F.interpolate(h, size=(9, 9), mode="nearest"), size=(12, 12),
                            mode="bilinear", align_corners=True)
        h = F.pixel_shuffle(self.expand(doubled + smooth + odd), 2)
        values, _ = h.max(dim=1)
        return values


class PairNet(nn.Module):
    """Two inputs (an image and a feature vector) and a nested output: a tensor and a list of
    two tensors."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(6, 4)

    def forward(self, image, features):
        a = F.relu(self.conv(image)).mean(dim=(2, 3))
        b = self.fc(features)
        return a + b, [a * b, a - b]


def save_pair(directory):
    """PairNet traced at batch 2 (strict=False allows the list output), with the flattened
    outputs at batch 3."""
    model = PairNet().eval()
    traced = (torch.randn(2, 3, 5, 5), torch.randn(2, 6))
    jit = torch.jit.trace(model, traced, strict=False)
    jit.save(os.path.join(directory, "pair_traced.pt"))
    image, features = torch.randn(3, 3, 5, 5), torch.randn(3, 6)
    with torch.no_grad():
        first, (second, third) = model(image, features)
    io = {"image": image, "features": features, "outputs": [first, second, third]}
    torch.save(io, os.path.join(directory, "pair_traced.io.pt"))
    info = {
        "training": False,
        "input_shapes": [list(t.shape) for t in traced],
        "parameters": [name for name, _ in model.named_parameters()],
        "buffers": [name for name, _ in model.named_buffers()],
        "modules": [[name, type(m).__name__] for name, m in model.named_modules()],
    }
    with open(os.path.join(directory, "pair_traced.json"), "w") as f:
        json.dump(info, f, indent=1)


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.attn = CumulativeAttention()

    def forward(self, x):
        x = F.relu(self.conv(x))
        x = x.flatten(2).transpose(1, 2)
        return self.attn(x)


class UnsupportedNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        return self.head(self.encoder(x).mean(dim=1))


def facts(model, example, training):
    model.eval()
    with torch.no_grad():
        output = model(example)
    if isinstance(output, tuple):
        output = list(output)
    info = {
        "training": training,
        "input_shapes": [list(example.shape)],
        "parameters": [name for name, _ in model.named_parameters()],
        "buffers": [name for name, _ in model.named_buffers()],
        "modules": [[name, type(m).__name__] for name, m in model.named_modules()],
    }
    return info, {"input": example, "output": output}


def save(directory, name, model, example, mode):
    """mode: "trace" or "script"; the model is traced/scripted in its current train/eval mode."""
    training = model.training
    with torch.no_grad():
        if mode == "trace":
            # check_trace compares two runs, which differ in train mode (dropout, batch stats).
            jit = torch.jit.trace(model, example, check_trace=not training)
        else:
            jit = torch.jit.script(model)
    jit.save(os.path.join(directory, name + ".pt"))
    info, io = facts(model, example, training)
    torch.save(io, os.path.join(directory, name + ".io.pt"))
    with open(os.path.join(directory, name + ".json"), "w") as f:
        json.dump(info, f, indent=1)


def save_generic(directory):
    """GenericNet traced at batch 2, with outputs at batches 2, 8 and 1, and the trained values
    of the layer scale, class token and position table after one SGD step."""
    model = GenericNet().eval()
    inputs = {n: torch.randn(n, 4, 4, 4) for n in (2, 8, 1)}
    jit = torch.jit.trace(model, inputs[2])
    jit.save(os.path.join(directory, "generic_traced.pt"))
    info, io = facts(model, inputs[2], False)
    with torch.no_grad():
        for n in (8, 1):
            io[f"input{n}"] = inputs[n]
            io[f"output{n}"] = model(inputs[n])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = model(inputs[2]).pow(2).mean()
    loss.backward()
    optimizer.step()
    for name in ("layer_scale", "cls", "pos"):
        io["trained_" + name] = getattr(model, name).detach().clone()
    torch.save(io, os.path.join(directory, "generic_traced.io.pt"))
    with open(os.path.join(directory, "generic_traced.json"), "w") as f:
        json.dump(info, f, indent=1)


class TwinBlock(nn.Module):
    """A residual block; tests/quantizer/cpp_module_test.cpp has the same one in C++."""

    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + x)


class TwinNet(nn.Module):
    """Conv-BN-ReLU, two nested residual blocks, a cat of two branches, functional pooling
    and flatten, Linear-BN1d, dropout and a Linear called twice (shared weights). Its
    activations are functional calls, as a C++ module's parameterless modules are captured."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.stem_bn = nn.BatchNorm2d(8)
        self.block1 = TwinBlock(8)
        self.block2 = TwinBlock(8)
        self.branch_a = nn.Conv2d(8, 4, 1)
        self.branch_b = nn.Conv2d(8, 4, 3, padding=1)
        self.fc1 = nn.Linear(8 * 4 * 4, 16)
        self.fc1_bn = nn.BatchNorm1d(16)
        self.shared = nn.Linear(16, 16)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        x = F.relu(self.stem_bn(self.stem(x)))
        x = self.block2(self.block1(x))
        x = torch.cat([F.relu(self.branch_a(x)), F.relu(self.branch_b(x))], 1)
        x = torch.flatten(F.max_pool2d(x, 2), 1)
        x = F.dropout(F.relu(self.fc1_bn(self.fc1(x))), 0.25, self.training)
        x = F.relu(self.shared(F.relu(self.shared(x))))
        return self.head(x)


def write_all(directory):
    torch.manual_seed(0)
    image = torch.randn(1, 3, IMAGE_SIZE, IMAGE_SIZE)
    save(directory, "tutorial_traced", TutorialNet().eval(), torch.randn(2, 1, 28, 28), "trace")
    save(directory, "resnet18_traced",
         torchvision.models.resnet18(weights=None).eval(), image, "trace")
    save(directory, "mobilenet_v2_traced",
         torchvision.models.mobilenet_v2(weights=None).train(), image, "trace")
    residual = ResidualNet().eval()
    residual_input = torch.randn(2, 3, 8, 8)
    save(directory, "residual_traced", residual, residual_input, "trace")
    save(directory, "residual_scripted", residual, residual_input, "script")
    save(directory, "residual_scripted_train", residual.train(), residual_input, "script")
    save(directory, "unsupported_traced", UnsupportedNet().eval(), torch.randn(2, 3, 8, 8), "trace")
    save(directory, "unsupported_scripted", UnsupportedNet().eval(), torch.randn(2, 3, 8, 8),
         "script")
    save_generic(directory)
    save(directory, "sequence_traced", SequenceNet().eval(), torch.randn(2, 5, 6), "trace")
    save_pair(directory)
    save(directory, "resample_traced", ResampleNet().eval(), torch.randn(2, 3, 6, 6), "trace")
    twin = TwinNet()
    with torch.no_grad():  # BatchNorm statistics other than 0 and 1, so folding shows
        for module in twin.modules():
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    save(directory, "twin_traced", twin.eval(), torch.randn(4, 3, 8, 8), "trace")


MODELS = ["tutorial_traced", "resnet18_traced", "mobilenet_v2_traced", "residual_traced",
          "residual_scripted", "residual_scripted_train", "unsupported_traced",
          "unsupported_scripted", "generic_traced", "sequence_traced", "pair_traced",
          "resample_traced", "twin_traced"]


def main():
    directory = sys.argv[1]
    os.makedirs(directory, exist_ok=True)
    with open(__file__, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    stamp = os.path.join(directory, "stamp")
    complete = all(os.path.exists(os.path.join(directory, name + suffix))
                   for name in MODELS for suffix in (".pt", ".io.pt", ".json"))
    if complete and os.path.exists(stamp) and open(stamp).read() == digest:
        return
    write_all(directory)
    with open(stamp, "w") as f:
        f.write(digest)


if __name__ == "__main__":
    main()
