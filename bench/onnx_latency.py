"""ONNX Runtime int8 (linquant's QDQ export) against ONNX Runtime float and LibTorch float:
inference latency of the tutorial net, resnet18 and mobilenet_v2 at batch 1 and 64, the same
thread count everywhere, median of repeated runs in one session. Run by bench/onnx_latency.sh.

Usage: .venv/bin/python bench/onnx_latency.py BENCH_BINARY OUT_DIR [--size PIXELS] [--threads N]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402  (bench/models.py: the benchmark networks)

INTEGER_KERNELS = {"QLinearConv", "QLinearMatMul", "QGemm", "MatMulInteger", "ConvInteger"}


def tutorial_net():
    """coremltools' LinearQuantizer tutorial network (Fashion-MNIST, 1x28x28)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 12, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
                         nn.Flatten(), nn.Linear(2352, 10), nn.LogSoftmax(1))


def trace_eval(name, out_dir, size):
    """The model traced in eval mode (BatchNorm with running statistics, as inference runs)."""
    if name == "tutorial":
        model, shape = tutorial_net(), [1, 1, 28, 28]
    else:
        model, shape = models.build(name), [1, 3, size, size]
    path = os.path.join(out_dir, f"{name}.pt")
    with torch.no_grad():
        torch.jit.trace(model.eval(), torch.randn(shape), check_trace=False).save(path)
    return path, shape[1:]


def ort_median_ms(path, threads, seconds, min_runs):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    x = np.random.default_rng(0).standard_normal(inp.shape).astype(np.float32)
    for _ in range(2):
        session.run(None, {inp.name: x})
    times = []
    begin = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - begin < seconds:
        start = time.perf_counter()
        session.run(None, {inp.name: x})
        times.append(1000.0 * (time.perf_counter() - start))
    return statistics.median(times)


def integer_kernels(path, tmp):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = tmp
    ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(tmp).graph.node]
    return sum(op in INTEGER_KERNELS for op in ops), sorted(set(ops) - INTEGER_KERNELS)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bench_binary")
    parser.add_argument("out_dir")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    work = os.path.join(args.out_dir, "onnx_models")
    os.makedirs(work, exist_ok=True)
    rows = []
    for name in ["tutorial", "resnet18", "mobilenet_v2"]:
        path, chw = trace_eval(name, work, args.size)
        print(f"== {name}: export and LibTorch float timing", file=sys.stderr)
        done = subprocess.run([args.bench_binary, path, "--input", ",".join(map(str, chw)),
                               "--out", work, "--threads", str(args.threads)],
                              check=True, capture_output=True, text=True)
        info = json.loads(done.stdout.strip().splitlines()[-1])
        kernels, other_ops = integer_kernels(info["files"]["int8"]["b1"],
                                             os.path.join(work, f"{name}.optimized.onnx"))
        for batch in ("b1", "b64"):
            print(f"== {name} {batch}: ONNX Runtime int8 and float", file=sys.stderr)
            seconds = args.seconds if batch == "b1" else 2 * args.seconds
            min_runs = 20 if batch == "b1" else 3
            int8 = ort_median_ms(info["files"]["int8"][batch], args.threads, seconds, min_runs)
            fp32 = ort_median_ms(info["files"]["float"][batch], args.threads, seconds, min_runs)
            torch_ms = info["libtorch_float_ms"][batch]
            rows.append({"model": name, "input": chw, "batch": int(batch[1:]),
                         "libtorch_float_ms": torch_ms, "ort_float_ms": fp32, "ort_int8_ms": int8,
                         "ort_float_ratio": fp32 / torch_ms, "ort_int8_ratio": int8 / torch_ms,
                         "int8_vs_ort_float": int8 / fp32, "integer_kernels": kernels,
                         "other_ops": other_ops})
    result = {"threads": args.threads, "size": args.size, "onnxruntime": ort.__version__,
              "loadavg": os.getloadavg(), "rows": rows}
    with open(os.path.join(args.out_dir, "onnx_latency.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(f"ONNX Runtime {ort.__version__}, {args.threads} threads, medians; ratios to LibTorch "
          f"float (lower is faster)\n")
    print("| model | input | batch | LibTorch float | ORT float | ORT int8 | int8 / ORT float |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        shape = "x".join(map(str, r["input"]))
        print(f"| {r['model']} | {shape} | {r['batch']} | {r['libtorch_float_ms']:.2f} ms | "
              f"{r['ort_float_ms']:.2f} ms ({r['ort_float_ratio']:.2f}x) | "
              f"{r['ort_int8_ms']:.2f} ms ({r['ort_int8_ratio']:.2f}x) | "
              f"{r['int8_vs_ort_float']:.2f} |")
    print()
    for r in rows[::2]:
        print(f"{r['model']}: {r['integer_kernels']} integer kernels; other ops after ORT's "
              f"optimization: {', '.join(r['other_ops'])}")


if __name__ == "__main__":
    main()
