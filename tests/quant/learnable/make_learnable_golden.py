#!/usr/bin/python3
"""Reference for linquant's learnable fake quantization (LSQ / LSQ+, coremltools'
LearnableFakeQuantize, reference section 4.2), written from that description with plain torch
1.13 tensor ops and autograd; coremltools is not imported.

Usage: /usr/bin/python3 tests/quant/learnable/make_learnable_golden.py OUT.pt

ctest runs it as a fixture: the gradients of scale and zero point are ATen sums, whose order
depends on the vector width ATen picks for this CPU, so the reference is made on the machine
that checks it (tests/quant/learnable_golden_test.cpp).

One case = one quantizer (observer, range, scheme, per-tensor or per-channel axis) and a
sequence of steps. Each step sets the observer and fake-quant flags, runs the forward pass on x,
back-propagates grad_output, records y, the gradients of x, scale and zero point, then applies
an SGD update (p -= lr * grad) to scale and (affine) zero point and records the parameters.
OUT.pt is a dict name -> dict of tensors:
  meta: int64 [observer, range, scheme, ch_axis, steps] (indices into the lists below)
  x{k}, grad_output{k}, flags{k} (uint8 [observer_on, fake_quant_on]), lr{k} (float64 [1])
  y{k}, grad_x{k}, grad_scale{k}, grad_zero_point{k} (absent when the parameter has none),
  scale{k}, zero_point{k} (after the update)
"""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden"))
from make_quant_golden import QRANGE, RANGE_NAMES, observer_spec, tie_tensor  # noqa: E402

OBSERVERS = ["moving_average_min_max", "min_max", "ema_min_max"]
SCHEMES = ["symmetric", "affine"]


def make_observer(observer, range_name, scheme, ch_axis):
    cls, kwargs = observer_spec(observer, range_name, scheme, ch_axis)
    return cls(**kwargs)


class LearnableFakeQuantize(torch.nn.Module):
    """Reference section 4.2, op for op."""

    def __init__(self, observer, range_name, scheme, ch_axis, channels):
        super().__init__()
        self.qmin, self.qmax = QRANGE[range_name]
        self.signed = self.qmin < 0
        self.symmetric = scheme == "symmetric"
        self.ch_axis = ch_axis
        self.observer = make_observer(observer, range_name, scheme, ch_axis)
        self.shape = [1] if ch_axis < 0 else [channels]
        self.scale = torch.nn.Parameter(torch.ones(self.shape))
        self.zero_point = torch.nn.Parameter(torch.zeros(self.shape),
                                             requires_grad=not self.symmetric)
        self.eps = torch.tensor([torch.finfo(torch.float32).eps])
        self.observer_on = True
        self.fake_quant_on = True

    def forced_zero_point(self):
        if self.symmetric:
            if self.signed:
                return torch.zeros_like(self.zero_point.data)
            middle = 128 if (self.qmin, self.qmax) == (0, 255) else (self.qmin + self.qmax) // 2
            return torch.full_like(self.zero_point.data, float(middle))
        return self.zero_point.data.round().clamp(self.qmin, self.qmax)

    def broadcast(self, t, x):
        if self.ch_axis < 0:
            return t
        view = [1] * x.dim()
        view[self.ch_axis] = -1
        return t.reshape(view)

    def forward(self, x):
        if self.observer_on:
            self.observer(x.detach())
            s, z = self.observer.calculate_qparams()
            self.scale.data.copy_(s.reshape(self.shape))
            self.zero_point.data.copy_(z.to(torch.float32).reshape(self.shape))
        if not self.fake_quant_on:
            return x + 0 * self.broadcast(self.scale, x) + 0 * self.broadcast(self.zero_point, x)
        self.scale.data.clamp_(min=float(self.eps))
        self.zero_point.data.copy_(self.forced_zero_point())
        per_element = x.numel() / (x.shape[self.ch_axis] if self.ch_axis >= 0 else 1)
        g = 1.0 / math.sqrt(per_element * self.qmax)
        scale = self.broadcast(self.scale, x)
        sg = scale * g
        s = (scale - sg).detach() + sg
        zero_point = self.broadcast(self.zero_point, x)
        z = (zero_point.round() - zero_point).detach() + zero_point
        if not self.symmetric:
            zg = z * g
            z = (z - zg).detach() + zg
        k = 0 if (self.symmetric and self.signed) else 1
        t = x / s + z if k else x / s
        t = (t.round() - t).detach() + t
        t = torch.clamp(t, self.qmin, self.qmax)
        return (t - z) * s if k else t * s


def steps_for(gen, shape, ch_axis, range_name, scheme, pattern):
    """(observer_on, fake_quant_on, x, grad_output, lr) per step. Patterns: 'train' (observer
    and fake quant, then fake quant alone: the milestones), 'phases' (every flag combination),
    'ties' (values on the grid of power-of-two scales, .5 ties included), 'saturate' (beyond
    the range after the observer froze)."""
    def normal(scale=1.0):
        return torch.randn(shape, generator=gen) * scale

    def grad():
        return torch.randn(shape, generator=gen)

    channels = shape[ch_axis] if ch_axis >= 0 else 1
    if pattern == "train":
        flags = [(1, 1), (1, 1), (0, 1), (0, 1), (0, 1)]
        return [(o, f, normal(1.5), grad(), 0.01) for o, f in flags]
    if pattern == "phases":
        flags = [(1, 0), (0, 0), (1, 1), (0, 1), (1, 0), (0, 1)]
        return [(o, f, normal(), grad(), 0.05) for o, f in flags]
    scales = [2.0 ** int(torch.randint(-4, 2, (1,), generator=gen)) for _ in range(channels)]
    if pattern == "ties":
        return [(1, 1, tie_tensor(gen, range_name, scheme, shape, ch_axis, scales=scales),
                 grad(), 0.0),
                (0, 1, tie_tensor(gen, range_name, scheme, shape, ch_axis, beyond=True,
                                  scales=scales), grad(), 0.001)]
    assert pattern == "saturate"
    return [(1, 1, normal(), grad(), 0.0), (0, 1, normal(8.0), grad(), 0.02),
            (0, 1, normal(8.0), grad(), 0.02)]


SHAPES = [([64], -1), ([4, 3, 5, 5], -1), ([6, 3, 3, 3], 0), ([2, 5, 4, 4], 1), ([8, 12], 0),
          ([3, 7], 1)]
PATTERNS = ["train", "phases", "ties", "saturate"]


def cases():
    """Every observer x range x scheme, each with two shapes (per tensor and per channel) and
    one pattern, chosen in turn; plus all shapes and patterns for the default settings."""
    k = 0
    for observer in OBSERVERS:
        for range_name in RANGE_NAMES:
            for scheme in SCHEMES:
                for variant in range(5):
                    shape, axis = SHAPES[(k + variant) % len(SHAPES)]
                    pattern = PATTERNS[(k // 2 + variant) % len(PATTERNS)]
                    yield observer, range_name, scheme, shape, axis, pattern
                    k += 1
    for shape, axis in SHAPES:
        for pattern in PATTERNS:
            for scheme in SCHEMES:
                yield "moving_average_min_max", "quint8", scheme, shape, axis, pattern


def run(observer, range_name, scheme, shape, axis, pattern, seed):
    gen = torch.Generator().manual_seed(seed)
    channels = shape[axis] if axis >= 0 else 1
    fq = LearnableFakeQuantize(observer, range_name, scheme, axis, channels)
    record = {"meta": torch.tensor([OBSERVERS.index(observer), RANGE_NAMES.index(range_name),
                                    SCHEMES.index(scheme), axis, 0], dtype=torch.int64)}
    steps = steps_for(gen, shape, axis, range_name, scheme, pattern)
    for i, (obs_on, fq_on, x, g, lr) in enumerate(steps):
        fq.observer_on, fq.fake_quant_on = bool(obs_on), bool(fq_on)
        for p in (fq.scale, fq.zero_point):
            p.grad = None
        xin = x.clone().requires_grad_(True)
        y = fq(xin)
        y.backward(g)
        record.update({f"x{i}": x, f"grad_output{i}": g, f"lr{i}": torch.tensor([lr], dtype=torch.float64),
                       f"flags{i}": torch.tensor([obs_on, fq_on], dtype=torch.uint8),
                       f"y{i}": y.detach().clone(), f"grad_x{i}": xin.grad.clone()})
        if fq.scale.grad is not None:
            record[f"grad_scale{i}"] = fq.scale.grad.clone()
        if fq.zero_point.grad is not None:
            record[f"grad_zero_point{i}"] = fq.zero_point.grad.clone()
        with torch.no_grad():
            for p in (fq.scale, fq.zero_point):
                if p.grad is not None:
                    p.add_(p.grad, alpha=-lr)
        record[f"scale{i}"] = fq.scale.detach().clone()
        record[f"zero_point{i}"] = fq.zero_point.detach().clone()
    record["meta"][4] = len(steps)
    return record


def main(argv):
    if len(argv) != 1:
        print(__doc__)
        return 2
    torch.set_num_threads(1)
    out = {}
    for n, (observer, range_name, scheme, shape, axis, pattern) in enumerate(cases()):
        name = f"{n:03d}_{observer}_{range_name}_{scheme}_{'x'.join(map(str, shape))}_ax{axis}_{pattern}"
        out[name] = run(observer, range_name, scheme, shape, axis, pattern, seed=1000 + n)
    os.makedirs(os.path.dirname(os.path.abspath(argv[0])), exist_ok=True)
    torch.save(out, argv[0])
    print(f"wrote {len(out)} cases to {argv[0]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
