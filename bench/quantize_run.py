#!/usr/bin/env python3
"""Times one `linquant quantize` run end to end and prints one JSON line: time to the first
training step (the setup, data and prepare phases the command reports), QAT steps per second,
wall time and the process's peak resident memory.

    python3 bench/quantize_run.py LINQUANT_BIN MODEL.pt C,H,W STEPS BATCH
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

PHASES_BEFORE_FIRST_STEP = ("setup", "data", "prepare")


def seconds(text):
    """'0.53 s', '1 min 14 s' or '2 h 3 min 4 s' -> seconds."""
    total = 0.0
    for value, unit in re.findall(r"([\d.]+)\s*(h|min|s)\b", text):
        total += float(value) * {"h": 3600, "min": 60, "s": 1}[unit]
    return total


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    binary, model, shape, steps, batch = sys.argv[1:]
    with tempfile.TemporaryDirectory() as scratch:
        command = [binary, "quantize", "--model", model, "--input-shape", shape, "--steps", steps,
                   "--batch-size", batch, "--eval-size", batch, "-o",
                   os.path.join(scratch, "model.pt")]
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   text=True)
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
    if status != 0:
        sys.exit(f"quantize_run: {' '.join(command)} failed:\n{output}")
    phases = {}
    for line in output.splitlines():
        match = re.match(r"^  (setup|data|prepare|QAT training|evaluation|finalize|save)\s+(.*)$",
                         line)
        if match:
            phases[match.group(1)] = seconds(match.group(2))
    first_step = sum(phases.get(p, 0.0) for p in PHASES_BEFORE_FIRST_STEP)
    qat = phases.get("QAT training")
    print(json.dumps({
        "model": os.path.splitext(os.path.basename(model))[0], "input": shape,
        "steps": int(steps), "batch": int(batch), "first_step_s": round(first_step, 3),
        "steps_per_s": round(int(steps) / qat, 3) if qat else None,
        "wall_s": round(wall, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024.0, 1),
        "phases_s": phases}))


if __name__ == "__main__":
    main()
