#!/usr/bin/python3
"""PyTorch 1.13 side of the training-step benchmark: the float eager step and the FX QAT step
(prepare_qat_fx) of one bench/models.py network, on random data, printed as one JSON object.

Usage: /usr/bin/python3 bench/fx_qat_step.py MODEL MODE [--size N] [--steps N] [--warmup N]
MODE: float | fx_coremltools (the qconfig coremltools' LinearQuantizer hands to prepare_qat_fx
by default: symmetric per-channel qint8 weights and symmetric quint8 activations, moving-average
observers, torch.ao FakeQuantize modules) | fx_onednn (PyTorch's default onednn QAT qconfig,
with the fused observer + fake-quant ATen kernel).
Run one mode per process: the reported peak resident memory is the whole process's.
"""
import argparse
import json
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch.ao.quantization import (FakeQuantize, MovingAverageMinMaxObserver,
                                   MovingAveragePerChannelMinMaxObserver, QConfig,
                                   QConfigMapping, get_default_qat_qconfig_mapping)
from torch.ao.quantization.quantize_fx import prepare_qat_fx

import models


def coremltools_qconfig_mapping():
    activation = FakeQuantize.with_args(observer=MovingAverageMinMaxObserver, dtype=torch.quint8,
                                        qscheme=torch.per_tensor_symmetric, quant_min=0,
                                        quant_max=255)
    weight = FakeQuantize.with_args(observer=MovingAveragePerChannelMinMaxObserver,
                                    dtype=torch.qint8, qscheme=torch.per_channel_symmetric,
                                    quant_min=-128, quant_max=127, ch_axis=0)
    return QConfigMapping().set_global(QConfig(activation=activation, weight=weight))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", choices=sorted(models.MODELS))
    parser.add_argument("mode", choices=["float", "fx_coremltools", "fx_onednn"])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    shape = models.input_shape(args.model, args.size)
    model = models.build(args.model).train()
    inputs = torch.randn(shape)
    labels = torch.randint(0, 10, (shape[0],))
    start = time.perf_counter()
    if args.mode != "float":
        mapping = (coremltools_qconfig_mapping() if args.mode == "fx_coremltools"
                   else get_default_qat_qconfig_mapping("onednn"))
        model = prepare_qat_fx(model, mapping, example_inputs=(inputs,))
    prepare_seconds = time.perf_counter() - start
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    times = []
    for step in range(args.warmup + args.steps):
        start = time.perf_counter()
        optimizer.zero_grad()
        loss = F.cross_entropy(model(inputs), labels)
        loss.backward()
        optimizer.step()
        if step >= args.warmup:
            times.append((time.perf_counter() - start) * 1e3)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    json.dump({"side": "pytorch", "model": args.model, "mode": args.mode, "batch": shape[0],
               "input": shape[1:], "threads": args.threads, "steps": args.steps,
               "step_ms_median": statistics.median(times), "step_ms_min": min(times), "step_ms_all": times,
               "prepare_s": prepare_seconds, "peak_rss_mib": peak_mib}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
