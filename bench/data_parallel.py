#!/usr/bin/env python3
"""Data-parallel training throughput on this machine: the Fashion-MNIST tutorial
(`linquant train --quick`: one float and one QAT epoch on 12000 images) and resnet18 QAT at
3x224x224 (`linquant quantize`, batch 32), each run as 1 process with 1 thread, 1 process with
2 threads, and 2 worker processes (--nproc 2) with 1 thread each; then the all-reduce times of
the collectives those runs make (linquant_bench_allreduce between 2 processes). Prints a
Markdown table and writes the raw numbers to OUT/data_parallel.json.

    python3 bench/data_parallel.py BUILD_DIR OUT [--repetitions N] [--resnet-steps N]

Run it on an idle machine (bench/data_parallel.sh builds what it needs, then calls this).
"""
import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile

MODES = (("1 process, 1 thread", 1, 1), ("1 process, 2 threads", 1, 2),
         ("2 processes, 1 thread each", 2, 1))


def seconds(text):
    total = 0.0
    for value, unit in re.findall(r"([\d.]+)\s*(h|min|s)\b", text):
        total += float(value) * {"h": 3600, "min": 60, "s": 1}[unit]
    return total


def check(done, command):
    if done.returncode != 0:
        sys.exit(f"data_parallel: {' '.join(command)} failed:\n{done.stderr[-2000:]}")


def tutorial(binary, processes, threads):
    """Images per second of the float and the QAT epoch."""
    with tempfile.TemporaryDirectory() as scratch:
        command = [binary, "train", "--quick", "--threads", str(threads), "--nproc",
                   str(processes), "-o", os.path.join(scratch, "run")]
        done = subprocess.run(command, capture_output=True, text=True)
        check(done, command)
        metrics = json.load(open(os.path.join(scratch, "run", "metrics.json")))
    images = metrics["data"]["train_images"]
    times = metrics["times_seconds"]
    return {"float_img_s": images / times["float training"],
            "qat_img_s": images / times["QAT training"],
            "finalized_accuracy": metrics["test_accuracy"]["finalized"]}


def resnet18(binary, model, processes, threads, steps, batch):
    """Images per second of QAT (all steps, the first included)."""
    with tempfile.TemporaryDirectory() as scratch:
        command = [binary, "quantize", "--model", model, "--input-shape", "3,224,224", "--steps",
                   str(steps), "--batch-size", str(batch), "--eval-size", str(batch), "--threads",
                   str(threads), "--nproc", str(processes), "-o", os.path.join(scratch, "m.pt")]
        done = subprocess.run(command, capture_output=True, text=True)
        check(done, command)
    phase = re.search(r"^  QAT training\s+(.*)$", done.stdout, re.M)
    activations = len(re.findall(r"\|\s+activation\s+\|", done.stdout))
    return {"qat_img_s": steps * batch / seconds(phase.group(1)),
            "activation_quantizers": activations}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def allreduce(binary, sizes):
    port = str(free_port())
    workers = []
    for rank in range(2):
        env = dict(os.environ, WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank),
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=port, OMP_NUM_THREADS="1")
        workers.append(subprocess.Popen([binary, *map(str, sizes)], env=env,
                                        stdout=subprocess.PIPE, text=True))
    out = [w.communicate(timeout=600)[0] for w in workers]
    if any(w.returncode for w in workers):
        sys.exit("data_parallel: linquant_bench_allreduce failed")
    return [json.loads(line) for line in out[0].splitlines()]


def spread(values):
    digits = 0 if max(values) >= 100 else 1
    low, high = f"{min(values):.{digits}f}", f"{max(values):.{digits}f}"
    return low if low == high else f"{low}-{high}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("build_dir")
    parser.add_argument("out")
    parser.add_argument("--repetitions", type=int, default=2)
    parser.add_argument("--resnet-steps", type=int, default=6)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    binary = os.path.join(args.build_dir, "src", "apps", "linquant")
    model = os.path.join(args.build_dir, "bench", "models", "resnet18.pt")
    results = {"loadavg_before": os.getloadavg(), "runs": []}
    for repetition in range(args.repetitions):
        for name, processes, threads in MODES:
            print(f"== repetition {repetition + 1}: {name}", file=sys.stderr)
            row = {"mode": name, "processes": processes, "threads": threads}
            row["tutorial"] = tutorial(binary, processes, threads)
            row["resnet18"] = resnet18(binary, model, processes, threads, args.resnet_steps,
                                       args.batch)
            results["runs"].append(row)
    # Parameters of the two models (the gradient all-reduce) and a small collective (a
    # BatchNorm's sums or an observer's range).
    sizes = {"tutorial gradients": 23650, "resnet18 gradients": 11689512, "small (64 floats)": 64}
    results["allreduce"] = dict(zip(sizes, allreduce(
        os.path.join(args.build_dir, "bench", "linquant_bench_allreduce"), sizes.values())))
    with open(os.path.join(args.out, "data_parallel.json"), "w") as f:
        json.dump(results, f, indent=2)

    print("| run | tutorial float (img/s) | tutorial QAT (img/s) | resnet18 QAT 224² (img/s) |")
    print("|---|---:|---:|---:|")
    for name, _, _ in MODES:
        rows = [r for r in results["runs"] if r["mode"] == name]
        print(f"| {name} | {spread([r['tutorial']['float_img_s'] for r in rows])} | "
              f"{spread([r['tutorial']['qat_img_s'] for r in rows])} | "
              f"{spread([r['resnet18']['qat_img_s'] for r in rows])} |")
    print("\n| all-reduce between 2 processes | bytes | median ms |")
    print("|---|---:|---:|")
    for name, r in results["allreduce"].items():
        print(f"| {name} | {r['bytes']} | {r['median_ms']:.3f} |")
    quantizers = statistics.median(r["resnet18"]["activation_quantizers"] for r in results["runs"])
    print(f"\nresnet18 activation quantizers (one small all-reduce each per training forward): "
          f"{quantizers:.0f}")
    print(f"load average before: {results['loadavg_before']}")


if __name__ == "__main__":
    main()
