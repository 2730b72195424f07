#!/usr/bin/python3
"""Golden numerics for linquant's quant layer, produced by PyTorch's own observers and FakeQuantize.

This script owns tests/quant/golden/quant_golden.json, which tests/quant/golden_sweep_test.cpp
replays against the C++ API and compares bit for bit.

Run it with Debian's interpreter (python3-torch 1.13; the pyenv python3 has no torch):

    /usr/bin/python3 tests/quant/golden/make_quant_golden.py

It is deterministic: every case seeds its own generator from a CRC of its name, so adding a case
does not change the others, and rerunning rewrites an identical file.

The fake quantizers are built exactly as coremltools builds them (quantization/_qconfig_mapping.py):
    FakeQuantize.with_args(observer=<class>, dtype=torch.qint8|torch.quint8,
                           qscheme=torch.per_{tensor,channel}_{symmetric,affine},
                           [ch_axis=k for per-channel], [quant_min/quant_max only for 4-bit])
with qint4 = qint8 storage and range -8..7, quint4 = quint8 storage and range 0..15, and no other
observer arguments (so averaging_constant 0.01 and eps = float32 epsilon are torch's defaults).
Observers: MovingAverage(PerChannel)MinMaxObserver, (PerChannel)MinMaxObserver and, because the real
coremltools EMAMinMaxObserver needs torch >= 2.1, EmaMinMaxObserver below, written from
coremltools' rule with torch float32 ops.

Cases avoid NaN and +/-inf inputs (linquant documents its own choice there) and any input whose
x / scale leaves the int64 range: torch's kernels cast nearbyint(x / scale) to int64 without a
check, which is undefined behaviour (on x86 a huge positive x lands on quant_min). The generator
asserts both.

JSON format (one file, no NaN anywhere: json.dump(allow_nan=False)):

  {"generator": "tests/quant/golden/make_quant_golden.py", "torch_version": "1.13.0a0",
   "fake_quantize_cases": [
     {"name": "unique_name",                    # [A-Za-z0-9_] only: it names a GoogleTest param
      "range": "qint8"|"quint8"|"qint4"|"quint4",      # linquant::QuantRange factory
      "scheme": "symmetric"|"affine",
      "observer": "moving_average_min_max"|"min_max"|"ema_min_max",
      "ch_axis": -1 | k,                         # -1 per tensor, else the channel axis (k >= 0)
      "steps": [                                 # 1 to 4 forward calls on the same FakeQuantize
        {"observer_enabled": bool, "fake_quant_enabled": bool,   # flags set before the call
         "x": T, "grad_output": T,               # input and the upstream gradient (same shape)
         "expect": {"y": T, "grad_x": T,         # forward output; x.grad after y.backward(grad_output)
                    "scale": [f...], "zero_point": [i...],   # module buffers after the call
                    "min_val": [f...], "max_val": [f...]}}]}],  # observer buffers, flattened
   "qparams_cases": [
     {"name": ..., "range": ..., "scheme": ..., "min_val": f, "max_val": f,
      "scale": f, "zero_point": i}              # calculate_qparams() of an observer holding min/max
     or, where torch refuses the range (min > max), "error": true instead of scale/zero_point]}

  T is {"shape": [d...], "data": [f...]}, data flattened in row-major order.
  Every float is a float32 value written as the shortest decimal whose nearest double, rounded to
  float32, gives back exactly that float32 (checked here), so a reader parses it as a double and
  casts to float. -0.0 is written as -0.0 (the masked gradient of a negative upstream value is
  -0.0 in torch, and the test compares bit patterns). Non-finite observer buffers (a per-tensor
  observer that has never observed holds min_val = inf, max_val = -inf) are the strings "inf" and
  "-inf". A never-observed per-channel torch observer holds empty buffers: [].
"""

import json
import math
import os
import struct
import sys
import time
import warnings
import zlib

import torch
from torch.ao.quantization import (
    FakeQuantize,
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    MovingAveragePerChannelMinMaxObserver,
    PerChannelMinMaxObserver,
)
from torch.ao.quantization.observer import UniformQuantizationObserverBase

OUT_NAME = "quant_golden.json"
GENERATOR = "tests/quant/golden/make_quant_golden.py"

RANGE_NAMES = ["qint8", "quint8", "qint4", "quint4"]
SCHEMES = ["symmetric", "affine"]
OBSERVERS = ["moving_average_min_max", "min_max", "ema_min_max"]
OBS_SHORT = {"moving_average_min_max": "mam", "min_max": "mm", "ema_min_max": "ema"}
SCHEME_SHORT = {"symmetric": "sym", "affine": "aff"}

# quant_min/quant_max are passed only for the narrowed 4-bit ranges, as coremltools does.
RANGE_KWARGS = {
    "qint8": dict(dtype=torch.qint8),
    "quint8": dict(dtype=torch.quint8),
    "qint4": dict(dtype=torch.qint8, quant_min=-8, quant_max=7),
    "quint4": dict(dtype=torch.quint8, quant_min=0, quant_max=15),
}
QRANGE = {"qint8": (-128, 127), "quint8": (0, 255), "qint4": (-8, 7), "quint4": (0, 15)}


class EmaMinMaxObserver(UniformQuantizationObserverBase):
    """coremltools' EMAMinMaxObserver rule, for torch 1.13.

    min/max start as scalar inf/-inf; the first observation takes the tensor's (per-channel)
    min/max; later ones blend v = v * ema_ratio + cur * (1.0 - ema_ratio) with Python floats,
    which torch applies as float32 scalars. qparams come from torch's own _calculate_qparams,
    which already applies the symmetric zero-point rules coremltools re-applies (0 for qint8, 128
    for full-range quint8, (quant_min + quant_max) // 2 for a narrowed quint8). Unlike coremltools,
    per-channel qparams are not squeezed, so one channel keeps shape [1] like the torch observers.
    """

    def __init__(self, dtype=torch.quint8, qscheme=torch.per_tensor_affine, reduce_range=False,
                 quant_min=None, quant_max=None, ch_axis=-1, ema_ratio=0.9):
        super().__init__(dtype=dtype, qscheme=qscheme, reduce_range=reduce_range,
                         quant_min=quant_min, quant_max=quant_max)
        self.ch_axis = ch_axis
        self.ema_ratio = ema_ratio
        self.register_buffer("min_val", torch.tensor(float("inf")))
        self.register_buffer("max_val", torch.tensor(float("-inf")))

    def forward(self, x):
        if x.numel() == 0:
            return x
        xd = x.detach().to(self.min_val.dtype)
        if self.ch_axis == -1:
            cur_min, cur_max = torch.aminmax(xd)
        else:
            order = list(range(xd.dim()))
            order[0], order[self.ch_axis] = self.ch_axis, 0
            cur_min, cur_max = torch.aminmax(torch.flatten(xd.permute(order), start_dim=1), dim=1)
        if self.max_val.numel() <= 1 and bool(self.max_val.isinf()):
            self.min_val = cur_min
            self.max_val = cur_max
        else:
            self.min_val = self.min_val * self.ema_ratio + cur_min * (1.0 - self.ema_ratio)
            self.max_val = self.max_val * self.ema_ratio + cur_max * (1.0 - self.ema_ratio)
        return x

    def calculate_qparams(self):
        scale, zero_point = self._calculate_qparams(self.min_val, self.max_val)
        return scale, zero_point.to(torch.int32)


OBSERVER_CLASSES = {  # (per-tensor, per-channel)
    "moving_average_min_max": (MovingAverageMinMaxObserver, MovingAveragePerChannelMinMaxObserver),
    "min_max": (MinMaxObserver, PerChannelMinMaxObserver),
    "ema_min_max": (EmaMinMaxObserver, EmaMinMaxObserver),
}


def observer_spec(observer, range_name, scheme, ch_axis):
    """The torch observer class and its arguments for one quantizer configuration."""
    per_channel = ch_axis >= 0
    qscheme = {
        (False, "symmetric"): torch.per_tensor_symmetric,
        (False, "affine"): torch.per_tensor_affine,
        (True, "symmetric"): torch.per_channel_symmetric,
        (True, "affine"): torch.per_channel_affine,
    }[(per_channel, scheme)]
    kwargs = dict(RANGE_KWARGS[range_name], qscheme=qscheme)
    if per_channel:
        kwargs["ch_axis"] = ch_axis
    return OBSERVER_CLASSES[observer][1 if per_channel else 0], kwargs


def make_fake_quantize(observer, range_name, scheme, ch_axis):
    cls, kwargs = observer_spec(observer, range_name, scheme, ch_axis)
    return FakeQuantize.with_args(observer=cls, **kwargs)()


# ---- JSON encoding -------------------------------------------------------------------------

def f32_bits(v):
    return struct.unpack("<I", struct.pack("<f", v))[0]


def short_f32(v):
    """The shortest decimal whose double rounds back to the float32 value v (v is exact)."""
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    assert not math.isnan(v), "NaN in a golden file"
    want = f32_bits(v)
    for digits in range(1, 10):
        d = float("%.*g" % (digits, v))
        if f32_bits(d) == want:
            return d
    assert f32_bits(v) == want
    return v


def enc_tensor(t):
    t = t.detach()
    assert t.dtype == torch.float32, t.dtype
    return {"shape": list(t.shape), "data": [short_f32(v) for v in t.flatten().tolist()]}


def enc_floats(t):
    return [short_f32(v) for v in t.detach().to(torch.float32).flatten().tolist()]


def enc_ints(t):
    return [int(v) for v in t.detach().flatten().tolist()]


# ---- input builders -------------------------------------------------------------------------

def gen_for(name):
    g = torch.Generator()
    g.manual_seed(zlib.crc32(name.encode()))
    return g


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def normal(gen, shape, mean=0.0, std=1.0):
    return torch.randn(shape, generator=gen) * std + mean


def uniform(gen, shape, lo, hi):
    return torch.rand(shape, generator=gen) * (hi - lo) + lo


def upstream_grad(gen, shape):
    # Multiples of 1/8 in [-4, 4]: short in JSON, about half negative, so the masked positions
    # also check the sign of the zero torch produces (dy * mask gives -0.0 for negative dy).
    return torch.randint(-32, 33, shape, generator=gen).to(torch.float32) / 8.0


def tie_values(gen, range_name, scheme, scale, count, beyond=False):
    """count values on the grid of a power-of-two scale, mostly exact .5 ties after x / scale.

    symmetric: |x / scale| <= half-range, and one element sits on +/- the half-range itself,
    so an observer that sees them derives exactly this scale (absmax / half = scale).
    affine: x / scale in [-m, width - m] with both ends present, so scale = width * scale / width
    exactly and the zero point is quant_min + m with no rounding.
    beyond=True widens the draw past the range (for a step whose observer is off) to put ties on
    and past the clamp boundaries.
    """
    qmin, qmax = QRANGE[range_name]
    width = qmax - qmin
    if scheme == "symmetric":
        half = width / 2.0
        lo, hi = -half, half
    else:
        m = int(torch.randint(0, width + 1, (1,), generator=gen))
        lo, hi = float(-m), float(width - m)
    if beyond:
        lo, hi = lo - 3.0, hi + 3.0
    # multiples of 0.5 in [lo, hi]: about half of them are exact ties
    n_half = int((hi - lo) * 2)
    picks = torch.randint(0, n_half + 1, (count,), generator=gen).tolist()
    vals = [lo + 0.5 * k for k in picks]
    if not beyond:
        # pin the extremes that define the range, and the ties right at the clamp boundaries
        if scheme == "symmetric":
            sign = 1.0 if int(torch.randint(0, 2, (1,), generator=gen)) else -1.0
            vals[0] = sign * hi
            if count > 1:
                vals[1] = -sign * (hi - 1.0)
        else:
            vals[0] = lo
            if count > 1:
                vals[1] = hi
        if count > 3:
            vals[2] = lo + 0.5
            vals[3] = hi - 0.5
    perm = torch.randperm(count, generator=gen).tolist()
    return torch.tensor([vals[i] * scale for i in perm], dtype=torch.float32)


def tie_tensor(gen, range_name, scheme, shape, ch_axis, beyond=False, scales=None):
    """A tensor of tie values; per channel each slice has its own power-of-two scale."""
    if ch_axis < 0:
        s = scales[0]
        return tie_values(gen, range_name, scheme, s, numel(shape), beyond).reshape(shape)
    x = torch.zeros(shape)
    for c in range(shape[ch_axis]):
        sl = x.select(ch_axis, c)
        sl.copy_(tie_values(gen, range_name, scheme, scales[c], sl.numel(), beyond)
                 .reshape(sl.shape))
    return x


# ---- running one case through torch ---------------------------------------------------------

MAX_Q = 2.0 ** 62  # keep nearbyint(x / scale) well inside int64 (see the module docstring)


def run_case(case, inputs):
    """inputs: list of (observer_enabled, fake_quant_enabled, x, grad_output)."""
    fq = make_fake_quantize(case["observer"], case["range"], case["scheme"], case["ch_axis"])
    steps = []
    for obs_on, fq_on, x, g in inputs:
        assert x.dtype == torch.float32 and torch.isfinite(x).all(), case["name"]
        assert g.shape == x.shape
        fq.enable_observer(obs_on)
        fq.enable_fake_quant(fq_on)
        xin = x.clone().requires_grad_(True)
        y = fq(xin)
        y.backward(g)
        if fq_on and x.numel() > 0:
            scale = fq.scale
            if case["ch_axis"] >= 0:
                view = [1] * x.dim()
                view[case["ch_axis"]] = -1
                scale = scale.reshape(view)
            ratio = (x.abs() / scale).max().item()
            assert ratio < MAX_Q, (case["name"], ratio)
        app = fq.activation_post_process
        steps.append({
            "observer_enabled": obs_on,
            "fake_quant_enabled": fq_on,
            "x": enc_tensor(x),
            "grad_output": enc_tensor(g),
            "expect": {
                "y": enc_tensor(y),
                "grad_x": enc_tensor(xin.grad),
                "scale": enc_floats(fq.scale),
                "zero_point": enc_ints(fq.zero_point),
                "min_val": enc_floats(app.min_val),
                "max_val": enc_floats(app.max_val),
            },
        })
    out = dict(case)
    out["steps"] = steps
    return out


# ---- the sweep ------------------------------------------------------------------------------

PER_TENSOR_SHAPES = [[1], [7], [3, 5], [1, 1, 1, 1], [13], [2, 3, 4, 5], [5, 1], [3, 7, 2],
                     [4, 6], [8, 3, 3, 3], [2, 9], [11, 1]]
PER_CHANNEL_SHAPES = [([3, 5], 0), ([3, 5], 1), ([3, 2, 2, 3], 0), ([2, 3, 2, 2], 1),
                      ([2, 2, 5, 2], 2), ([2, 3, 4, 5], 3), ([8, 3, 3, 3], 0), ([5, 1], 1),
                      ([5, 1], 0), ([1, 1, 1, 1], 2), ([3, 7, 2], 1), ([4, 3, 5], 2),
                      ([6, 2], 1), ([1, 4], 1), ([3, 1, 4], 1), ([2, 5, 3], 2)]
# Ties need a few elements per slice to pin both range ends.
TIE_SHAPES_PT = [[7], [3, 5], [2, 3, 4, 5], [4, 6], [13], [3, 7, 2]]
TIE_SHAPES_PC = [([4, 6], 0), ([3, 8], 1), ([2, 3, 4, 5], 1), ([3, 4, 5], 2),
                 ([2, 3, 4, 5], 3), ([5, 2, 4], 0)]


def shape_tag(shape):
    return "x".join(str(d) for d in shape) if shape else "scalar"


def base_name(kind, observer, range_name, scheme, shape, ch_axis):
    where = "pt" if ch_axis < 0 else "ch%d" % ch_axis
    return "%s_%s_%s_%s_%s_%s" % (kind, OBS_SHORT[observer], range_name, SCHEME_SHORT[scheme],
                                  where, shape_tag(shape))


class Sweep:
    def __init__(self):
        self.cases = []
        self.names = set()

    def add(self, kind, observer, range_name, scheme, shape, ch_axis, build):
        """build(gen) -> list of (observer_enabled, fake_quant_enabled, x, grad_output)."""
        name = base_name(kind, observer, range_name, scheme, shape, ch_axis)
        assert name not in self.names, name
        assert all(c.isalnum() or c == "_" for c in name), name
        self.names.add(name)
        gen = gen_for(name)
        case = {"name": name, "range": range_name, "scheme": scheme, "observer": observer,
                "ch_axis": ch_axis}
        self.cases.append(run_case(case, build(gen)))


def steps_of(gen, shape, specs):
    """specs: list of (observer_enabled, fake_quant_enabled, x_fn(gen, shape))."""
    return [(o, f, xf(gen, shape), upstream_grad(gen, shape)) for o, f, xf in specs]


def core_cases(sweep):
    """Every observer x range x scheme x {per tensor, per channel}, four input kinds each."""
    pt_i = pc_i = tie_i = 0
    for observer in OBSERVERS:
        for range_name in RANGE_NAMES:
            for scheme in SCHEMES:
                for per_channel in (False, True):
                    if per_channel:
                        shape, axis = PER_CHANNEL_SHAPES[pc_i % len(PER_CHANNEL_SHAPES)]
                        shape2, axis2 = PER_CHANNEL_SHAPES[(pc_i + 7) % len(PER_CHANNEL_SHAPES)]
                        tshape, taxis = TIE_SHAPES_PC[tie_i % len(TIE_SHAPES_PC)]
                        pc_i += 1
                    else:
                        shape = PER_TENSOR_SHAPES[pt_i % len(PER_TENSOR_SHAPES)]
                        shape2 = PER_TENSOR_SHAPES[(pt_i + 5) % len(PER_TENSOR_SHAPES)]
                        tshape = TIE_SHAPES_PT[tie_i % len(TIE_SHAPES_PT)]
                        axis = axis2 = taxis = -1
                        pt_i += 1
                    tie_i += 1
                    args = (observer, range_name, scheme)

                    # normal data, three observed steps with drifting mean and spread
                    sweep.add("normal", *args, shape, axis, lambda g, s=shape: steps_of(g, s, [
                        (True, True, lambda g, s: normal(g, s)),
                        (True, True, lambda g, s: normal(g, s, 0.3, 1.5)),
                        (True, True, lambda g, s: normal(g, s, -0.2, 0.7)),
                    ]))

                    # uniform, lopsided ranges (affine zero points away from the middle)
                    sweep.add("uniform", *args, shape2, axis2, lambda g, s=shape2: steps_of(g, s, [
                        (True, True, lambda g, s: uniform(g, s, -0.5, 2.0)),
                        (True, True, lambda g, s: uniform(g, s, -1.5, 0.75)),
                    ]))

                    # exact .5 ties on a power-of-two grid, then ties on and past the clamp
                    # boundaries with the observer off (the scale stays the same)
                    def ties(g, s=tshape, a=taxis, rn=range_name, sc=scheme):
                        channels = 1 if a < 0 else s[a]
                        scales = [2.0 ** -int(torch.randint(0, 6, (1,), generator=g))
                                  for _ in range(channels)]
                        x1 = tie_tensor(g, rn, sc, s, a, False, scales)
                        x2 = tie_tensor(g, rn, sc, s, a, True, scales)
                        return [(True, True, x1, upstream_grad(g, s)),
                                (False, True, x2, upstream_grad(g, s))]
                    sweep.add("ties", *args, tshape, taxis, ties)

                    # saturation: observe, then far-out values with the observer off, then a
                    # wider observed step (moving averages clip it, min/max takes it)
                    def saturate(g, s=shape):
                        x2 = normal(g, s, 0.0, 6.0)
                        flat = x2.view(-1)
                        if flat.numel() > 1:
                            flat[0] = 1.0e6
                            flat[-1] = -3.0e5
                        return [(True, True, normal(g, s), upstream_grad(g, s)),
                                (False, True, x2, upstream_grad(g, s)),
                                (True, True, normal(g, s, 0.5, 4.0), upstream_grad(g, s))]
                    sweep.add("saturate", *args, shape, axis, saturate)


SPECIAL_KINDS = {
    # kind: list of x builders, one per step (all observed, fake quant on)
    "const_pos": [lambda g, s: torch.full(s, 0.37), lambda g, s: torch.full(s, 0.5)],
    "const_neg": [lambda g, s: torch.full(s, -2.5), lambda g, s: torch.full(s, -1.25)],
    "zeros": [lambda g, s: torch.zeros(s), lambda g, s: torch.zeros(s)],
    "all_pos": [lambda g, s: uniform(g, s, 0.1, 3.0), lambda g, s: uniform(g, s, 0.5, 1.0)],
    "all_neg": [lambda g, s: uniform(g, s, -3.0, -0.1), lambda g, s: uniform(g, s, -1.0, -0.5)],
    "tiny": [lambda g, s: normal(g, s, 0.0, 1e-30), lambda g, s: normal(g, s, 0.0, 1e-40)],
    "huge": [lambda g, s: normal(g, s, 0.0, 1e30), lambda g, s: normal(g, s, 1e29, 2e30)],
    "mixed": [lambda g, s: mixed_magnitudes(g, s), lambda g, s: mixed_magnitudes(g, s)],
}


def mixed_magnitudes(gen, shape):
    """Huge, tiny (some subnormal), zero and ordinary values side by side."""
    x = normal(gen, shape)
    pick = torch.randint(0, 4, shape, generator=gen)
    x = torch.where(pick == 0, x * 1e30, x)
    x = torch.where(pick == 1, x * 1e-38, x)
    x = torch.where(pick == 2, torch.zeros(shape), x)
    return x


def special_cases(sweep):
    """Constant, zero, one-signed, tiny and huge tensors for each observer, per tensor and per
    channel, with the range and scheme rotating through all eight combinations."""
    combos = [(r, s) for r in RANGE_NAMES for s in SCHEMES]
    i = 0
    for kind, builders in SPECIAL_KINDS.items():
        for observer in OBSERVERS:
            for per_channel in (False, True):
                range_name, scheme = combos[i % len(combos)]
                if per_channel:
                    shape, axis = PER_CHANNEL_SHAPES[(i * 3) % len(PER_CHANNEL_SHAPES)]
                else:
                    shape, axis = PER_TENSOR_SHAPES[(i * 5) % len(PER_TENSOR_SHAPES)], -1
                i += 1
                specs = [(True, True, b) for b in builders]
                sweep.add(kind, observer, range_name, scheme, shape, axis,
                          lambda g, s=shape, sp=specs: steps_of(g, s, sp))


def single_step_cases(sweep):
    """One call on a fresh quantizer: what a freshly prepared model's first batch sees."""
    i = 0
    for observer in OBSERVERS:
        for range_name in RANGE_NAMES:
            for scheme in SCHEMES:
                if i % 2:
                    shape, axis = PER_CHANNEL_SHAPES[(i * 5) % len(PER_CHANNEL_SHAPES)]
                else:
                    shape, axis = PER_TENSOR_SHAPES[(i * 7) % len(PER_TENSOR_SHAPES)], -1
                i += 1
                sweep.add("single", observer, range_name, scheme, shape, axis,
                          lambda g, s=shape: steps_of(g, s, [
                              (True, True, lambda g, s: normal(g, s, 0.1, 2.0))]))


def sequence_cases(sweep):
    """Flag toggles, long sequences, shape changes and empty tensors."""
    combos = [(r, s) for r in RANGE_NAMES for s in SCHEMES]
    counter = [0]

    def pick(offset):
        # rotate through range x scheme; the offset decorrelates it from the observer loop
        range_name, scheme = combos[(counter[0] + offset) % len(combos)]
        counter[0] += 1
        return range_name, scheme

    def n(mean, std):
        return lambda g, s: normal(g, s, mean, std)

    for observer in OBSERVERS:
        for per_channel in (False, True):
            if per_channel:
                shapes = [([3, 5], 0), ([2, 3, 4, 5], 1), ([4, 3, 5], 2), ([3, 7, 2], 2),
                          ([2, 3, 4, 5], 3)]
                # a never-observed per-channel quantizer still has one scale, so with fake quant
                # on from the start the channel dim must be 1 (torch checks the sizes)
                cold = ([5, 1], 1)
            else:
                shapes = [([3, 5], -1), ([2, 3, 4, 5], -1), ([7], -1), ([1], -1), ([4, 6], -1)]
                cold = ([3, 5], -1)

            # observer on for two steps, then frozen while fake quant continues
            s, a = shapes[0]
            sweep.add("obs_on_off", observer, *pick(0), s, a, lambda g, s=s: steps_of(g, s, [
                (True, True, n(0, 1)), (True, True, n(0.5, 2)),
                (False, True, n(0, 3)), (False, True, n(-1, 1))]))

            # fake quant off while observing, then on
            s, a = shapes[1]
            sweep.add("fq_off_on", observer, *pick(1), s, a, lambda g, s=s: steps_of(g, s, [
                (True, False, n(0, 1)), (True, False, n(0.2, 0.5)), (True, True, n(0, 1))]))

            # fake quant before any observation (scale 1, zero point 0), then observed
            s, a = cold
            sweep.add("cold_start", observer, *pick(2), s, a, lambda g, s=s: steps_of(g, s, [
                (False, True, n(0, 40)), (True, True, n(0, 1)), (False, True, n(0, 1))]))

            # everything off: identity, buffers untouched
            s, a = shapes[2]
            sweep.add("all_off", observer, *pick(3), s, a, lambda g, s=s: steps_of(g, s, [
                (False, False, n(0, 1)), (False, False, n(1, 1))]))

            # four observed steps: the moving averages compound
            s, a = shapes[3]
            sweep.add("four_steps", observer, *pick(4), s, a, lambda g, s=s: steps_of(g, s, [
                (True, True, n(0, 1)), (True, True, n(1, 0.5)), (True, True, n(-2, 3)),
                (True, True, n(0, 0.1))]))

            # observing turned back on after a pause
            s, a = shapes[4]
            sweep.add("obs_pause", observer, *pick(5), s, a, lambda g, s=s: steps_of(g, s, [
                (True, True, n(0, 1)), (False, True, n(0, 5)), (True, True, n(0, 5))]))

        # per tensor only: the input shape may change between calls, and may be empty
        def varying(g):
            specs = [([3, 5], (True, True)), ([7], (True, True)), ([2, 3, 4, 5], (True, True)),
                     ([1], (True, True))]
            return [(o, f, normal(g, s, 0.1 * k, 1.0 + k), upstream_grad(g, s))
                    for k, (s, (o, f)) in enumerate(specs)]
        sweep.add("varying_shapes", observer, *pick(6), [3, 5], -1, varying)

        def empty_first(g):
            return [(True, True, torch.zeros([0]), torch.zeros([0])),
                    (True, True, normal(g, [6]), upstream_grad(g, [6])),
                    (True, True, torch.zeros([0, 3]), torch.zeros([0, 3])),
                    (True, True, normal(g, [6], 1.0, 1.0), upstream_grad(g, [6]))]
        sweep.add("empty_steps", observer, *pick(7), [0], -1, empty_first)

        # per channel: empty input before any observation (fake quant must be off: torch
        # rejects one default scale for three channels), and an empty step after observing
        def empty_pc_cold(g):
            return [(True, False, torch.zeros([0, 3]), torch.zeros([0, 3])),
                    (True, True, normal(g, [2, 3]), upstream_grad(g, [2, 3]))]
        sweep.add("empty_cold", observer, *pick(0), [0, 3], 1, empty_pc_cold)

        def empty_pc_mid(g):
            return [(True, True, normal(g, [2, 3]), upstream_grad(g, [2, 3])),
                    (True, True, torch.zeros([0, 3]), torch.zeros([0, 3])),
                    (True, True, normal(g, [4, 3], 0.5, 2.0), upstream_grad(g, [4, 3]))]
        sweep.add("empty_mid", observer, *pick(1), [2, 3], 1, empty_pc_mid)


# ---- qparams only ---------------------------------------------------------------------------

QPARAM_RANGES = [  # (label, min, max)
    ("pm1", -1.0, 1.0),
    ("both_pos", 0.5, 2.0),
    ("both_neg", -3.0, -0.25),
    ("equal_pos", 0.7, 0.7),
    ("equal_neg", -0.7, -0.7),
    ("zeros", 0.0, 0.0),
    ("neg_zero_max", -0.0, 0.0),
    ("huge", -1e30, 1e30),
    ("huge_lopsided", -1e30, 3e-3),
    ("tiny", -1e-30, 1e-30),
    ("subnormal", -1e-40, 2e-41),
    ("near_eps", -1.2e-7 * 127.5, 1.1e-7 * 127.5),
    ("lopsided_neg", -5.3, 0.01),
    ("lopsided_pos", -0.01, 5.3),
    ("pow2", -16.0, 15.9375),
]


def qparams_cases():
    out = []
    gen = gen_for("qparams")
    pairs = [(label, lo, hi) for label, lo, hi in QPARAM_RANGES]
    for k in range(8):  # random ranges: the divisions and roundings land anywhere
        a = float(torch.randn(1, generator=gen) * 3)
        b = float(torch.randn(1, generator=gen) * 3)
        pairs.append(("random%d" % k, min(a, b), max(a, b)))
    pairs = [(label, f32(lo), f32(hi)) for label, lo, hi in pairs]
    for range_name in RANGE_NAMES:
        for scheme in SCHEMES:
            per_tensor = make_fake_quantize("min_max", range_name, scheme, -1).activation_post_process
            per_channel = make_fake_quantize("min_max", range_name, scheme, 0).activation_post_process
            # the per-channel observer computes every pair at once; it must agree with the
            # per-tensor one, so one scalar compute_qparam serves both in C++
            per_channel.min_val.resize_(len(pairs)).copy_(torch.tensor([p[1] for p in pairs]))
            per_channel.max_val.resize_(len(pairs)).copy_(torch.tensor([p[2] for p in pairs]))
            ch_scale, ch_zp = per_channel.calculate_qparams()
            for j, (label, lo, hi) in enumerate(pairs):
                per_tensor.min_val.copy_(torch.tensor(lo))
                per_tensor.max_val.copy_(torch.tensor(hi))
                scale, zp = per_tensor.calculate_qparams()
                assert scale.shape == (1,) and zp.shape == (1,)
                assert f32_bits(scale.item()) == f32_bits(ch_scale[j].item()), (range_name, label)
                assert zp.item() == ch_zp[j].item(), (range_name, label)
                out.append({"name": "%s_%s_%s" % (range_name, SCHEME_SHORT[scheme], label),
                            "range": range_name, "scheme": scheme,
                            "min_val": short_f32(lo), "max_val": short_f32(hi),
                            "scale": short_f32(scale.item()), "zero_point": int(zp.item())})
            # torch asserts min <= max; linquant throws QuantError
            per_tensor.min_val.copy_(torch.tensor(1.0))
            per_tensor.max_val.copy_(torch.tensor(-1.0))
            try:
                per_tensor.calculate_qparams()
                raise SystemExit("torch accepted min > max")
            except AssertionError:
                pass
            out.append({"name": "%s_%s_min_above_max" % (range_name, SCHEME_SHORT[scheme]),
                        "range": range_name, "scheme": scheme, "min_val": 1.0, "max_val": -1.0,
                        "error": True})
    return out


def f32(v):
    return struct.unpack("<f", struct.pack("<f", v))[0]


def main():
    start = time.time()
    warnings.simplefilter("ignore")  # "must run observer before calling calculate_qparams"
    torch.set_num_threads(1)
    sweep = Sweep()
    core_cases(sweep)
    special_cases(sweep)
    single_step_cases(sweep)
    sequence_cases(sweep)
    qcases = qparams_cases()
    assert len({c["name"] for c in qcases}) == len(qcases)
    doc = {"generator": GENERATOR, "torch_version": torch.__version__,
           "fake_quantize_cases": sweep.cases, "qparams_cases": qcases}
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), OUT_NAME)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, allow_nan=False, separators=(",", ":"))
        f.write("\n")
    os.replace(tmp, path)
    steps = sum(len(c["steps"]) for c in sweep.cases)
    print("%s: %d fake-quantize cases (%d steps), %d qparams cases, %d bytes, %.1f s"
          % (path, len(sweep.cases), steps, len(qcases), os.path.getsize(path),
             time.time() - start))


if __name__ == "__main__":
    sys.exit(main())
