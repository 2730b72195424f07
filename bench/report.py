#!/usr/bin/python3
"""Turns the raw results of bench/run.sh into the performance tables (Markdown, as in the
README) and RESULTS_DIR/summary.json, with every ratio the performance targets are stated in.

Usage: /usr/bin/python3 bench/report.py RESULTS_DIR
Reads kernels.json (Google Benchmark), train_steps.jsonl, pipeline.jsonl and machine.json.
"""
import collections
import json
import os
import statistics
import sys


def load_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as source:
        return [json.loads(line) for line in source if line.strip()]


def kernel_times(path):
    """{(variant, tensor, pass): median real time in ms}"""
    with open(path) as source:
        doc = json.load(source)
    times = {}
    for bench in doc["benchmarks"]:
        if bench.get("aggregate_name", "median") != "median":
            continue
        # name: variant/tensor/pass/real_time[_median]
        variant, tensor, pass_ = bench["run_name"].split("/")[:3]
        scale = {"ms": 1.0, "us": 1e-3, "ns": 1e-6}[bench["time_unit"]]
        times[(variant, tensor, pass_)] = bench["real_time"] * scale
    return times


def kernel_table(times):
    lines = ["| tensor | kernel | forward ms | / ReLU | forward+backward ms | / ReLU |",
             "|---|---|---:|---:|---:|---:|"]
    ratios = {}
    tensors = sorted({t for _, t, _ in times})
    variants = []
    for variant, _, _ in times:
        if variant not in variants:
            variants.append(variant)
    for tensor in tensors:
        relu = {p: times.get(("relu", tensor, p)) for p in ("fwd", "fwd_bwd")}
        for variant in variants:
            row = [tensor, variant]
            for pass_ in ("fwd", "fwd_bwd"):
                t = times.get((variant, tensor, pass_))
                ratio = t / relu[pass_] if t and relu[pass_] else None
                ratios[f"{variant}/{tensor}/{pass_}"] = ratio
                row += [f"{t:.3f}" if t else "-", f"{ratio:.2f}x" if ratio else "-"]
            lines.append("| " + " | ".join(row) + " |")
    return lines, ratios


def step_summary(rows):
    """{(side, model, mode): {"step_ms": median over repetitions, "peak_rss_mib": max}}"""
    grouped = collections.defaultdict(list)
    for row in rows:
        grouped[(row["side"], row["model"], row["mode"])].append(row)
    return {key: {"step_ms": statistics.median(r["step_ms_median"] for r in group),
                  "fastest_step_ms": min(r["step_ms_min"] for r in group),
                  "peak_rss_mib": max(r["peak_rss_mib"] for r in group),
                  "batch": group[0]["batch"], "input": group[0]["input"],
                  "repetitions": len(group)}
            for key, group in grouped.items()}


def step_table(summary):
    lines = ["| model (batch, input) | LibTorch float | linquant QAT | QAT / float | "
             "linquant QAT, observers off | PyTorch float | FX QAT (coremltools config) | "
             "FX QAT (onednn default) | linquant QAT / fastest FX QAT | QAT / float, fastest steps | "
             "peak MiB float / QAT |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    ratios = {}
    models = []
    for _, model, _ in summary:
        if model not in models:
            models.append(model)
    for model in models:
        get = lambda side, mode: summary.get((side, model, mode))
        float_, qat, frozen = get("linquant", "float"), get("linquant", "qat"), get("linquant", "qat_frozen")
        py_float, fx_ct, fx_onednn = get("pytorch", "float"), get("pytorch", "fx_coremltools"), get("pytorch", "fx_onednn")
        if not (float_ and qat):
            continue
        fx = [r["step_ms"] for r in (fx_ct, fx_onednn) if r]
        entry = {
            "qat_over_float": qat["step_ms"] / float_["step_ms"],
            "qat_frozen_over_float": frozen["step_ms"] / float_["step_ms"] if frozen else None,
            "qat_over_fastest_fx": qat["step_ms"] / min(fx) if fx else None,
            "qat_peak_over_float_peak": qat["peak_rss_mib"] / float_["peak_rss_mib"],
            "fastest_qat_over_fastest_float": qat["fastest_step_ms"] / float_["fastest_step_ms"],
        }
        ratios[model] = entry
        ms = lambda r: f"{r['step_ms']:.0f} ms" if r else "-"
        shape = "x".join(str(d) for d in float_["input"])
        lines.append(
            f"| {model} ({float_['batch']}, {shape}) | {ms(float_)} | {ms(qat)} | "
            f"{entry['qat_over_float']:.2f}x | {ms(frozen)}"
            + (f" ({entry['qat_frozen_over_float']:.2f}x)" if frozen else "")
            + f" | {ms(py_float)} | {ms(fx_ct)} | {ms(fx_onednn)} | "
            + (f"{entry['qat_over_fastest_fx']:.2f}x" if fx else "-")
            + f" | {entry['fastest_qat_over_fastest_float']:.2f}x"
            + f" | {float_['peak_rss_mib']:.0f} / {qat['peak_rss_mib']:.0f} "
              f"({entry['qat_peak_over_float_peak']:.2f}x) |")
    return lines, ratios


def pipeline_table(rows):
    lines = ["| model | load .pt s | capture + prepare s | finalize s | Core ML export s | "
             "prepare + finalize + export s | package MiB |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['load_s']:.2f} | {r['prepare_s']:.2f} | "
                     f"{r['finalize_s']:.2f} | {r['export_s']:.2f} | "
                     f"{r['prepare_finalize_export_s']:.2f} | {r['package_mib']:.1f} |")
    return lines


def quantize_table(rows):
    lines = ["| model | input | steps x batch | first step after s | steps/s | wall s | peak MiB |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['input']} | {r['steps']} x {r['batch']} | "
                     f"{r['first_step_s']:.2f} | {r['steps_per_s']:.2f} | {r['wall_s']:.1f} | "
                     f"{r['peak_rss_mib']:.0f} |")
    return lines


def targets(kernel_ratios, step_ratios, pipeline_rows, quantize_rows=()):
    checks = []

    def check(name, value, limit):
        checks.append({"target": name, "value": value, "limit": limit,
                       "met": value is not None and value <= limit})

    for tensor in ("act4.7M", "weight1.2M"):
        check(f"observer + fake quant forward / ReLU forward ({tensor})",
              kernel_ratios.get(f"linquant_observer_fake_quant_avx2/{tensor}/fwd"), 2.0)
        check(f"observer + fake quant fwd+bwd / ReLU fwd+bwd ({tensor})",
              kernel_ratios.get(f"linquant_observer_fake_quant_avx2/{tensor}/fwd_bwd"), 1.2)
    for tensor in ("act4.7M", "weight1.2M"):
        vanilla = kernel_ratios.get(f"linquant_fake_quant_avx2/{tensor}/fwd_bwd")
        for scheme in ("symmetric", "affine"):
            learnable = kernel_ratios.get(f"linquant_learnable_{scheme}_avx2/{tensor}/fwd_bwd")
            check(f"learnable ({scheme}) fwd+bwd / fake quant fwd+bwd ({tensor})",
                  learnable / vanilla if learnable and vanilla else None, 1.5)
    for model, r in step_ratios.items():
        check(f"{model}: QAT step / float step", r["qat_over_float"], 1.05)
        check(f"{model}: QAT step / fastest PyTorch FX QAT step", r["qat_over_fastest_fx"], 0.7)
        check(f"{model}: QAT peak memory / float peak memory", r["qat_peak_over_float_peak"], 1.2)
    for r in pipeline_rows:
        if r["model"] == "resnet50":
            check("resnet50: prepare + finalize + export seconds", r["prepare_finalize_export_s"], 5.0)
    for r in quantize_rows:
        if r["input"] == "3,224,224":
            check(f"linquant quantize {r['model']} at {r['input']}: peak MiB",
                  r["peak_rss_mib"], 2048)
            check(f"linquant quantize {r['model']} at {r['input']}: s to the first step",
                  r["first_step_s"], 2.0)
    lines = ["| target | measured | limit | met |", "|---|---:|---:|---|"]
    for c in checks:
        value = "-" if c["value"] is None else f"{c['value']:.2f}"
        lines.append(f"| {c['target']} | {value} | {c['limit']} | {'yes' if c['met'] else 'NO'} |")
    return lines, checks


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    results = sys.argv[1]
    kernel_lines, kernel_ratios = kernel_table(kernel_times(os.path.join(results, "kernels.json")))
    step_lines, step_ratios = step_table(step_summary(load_jsonl(os.path.join(results, "train_steps.jsonl"))))
    pipeline_rows = load_jsonl(os.path.join(results, "pipeline.jsonl"))
    quantize_path = os.path.join(results, "quantize.jsonl")
    quantize_rows = load_jsonl(quantize_path) if os.path.exists(quantize_path) else []
    target_lines, checks = targets(kernel_ratios, step_ratios, pipeline_rows, quantize_rows)
    machine = {}
    if os.path.exists(os.path.join(results, "machine.json")):
        with open(os.path.join(results, "machine.json")) as source:
            machine = json.load(source)
        machine["loadavg_after"] = os.getloadavg()

    print("Fake quantization against ReLU on the same tensor (2 threads, median of 3):\n")
    print("\n".join(kernel_lines))
    print("\nTraining step (forward, loss, backward, SGD update; median over steps and repetitions,"
          "\nand the ratio of the fastest steps, which this VM's scheduling noise touches least):\n")
    print("\n".join(step_lines))
    print("\nFrom a TorchScript file to a W8A8 Core ML package (iOS17):\n")
    print("\n".join(pipeline_table(pipeline_rows)))
    if quantize_rows:
        print("\n`linquant quantize` end to end (Fashion-MNIST resized per batch):\n")
        print("\n".join(quantize_table(quantize_rows)))
    print("\nTargets:\n")
    print("\n".join(target_lines))
    if machine:
        print(f"\nLoad average before/after: {machine.get('loadavg_before')} / "
              f"{[round(x, 2) for x in machine['loadavg_after']]}")
    with open(os.path.join(results, "summary.json"), "w") as out:
        json.dump({"machine": machine, "kernel_ratios": kernel_ratios, "steps": step_ratios,
                   "pipeline": pipeline_rows, "quantize": quantize_rows, "targets": checks},
                  out, indent=1)


if __name__ == "__main__":
    main()
