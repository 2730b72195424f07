"""The coverage sweep's report: one Markdown table row per model, and OUT_DIR/summary.json.

Owns the summary of scripts/coverage_sweep.sh. Reads, for every model folder of OUT_DIR,
meta.json or trace_error.txt (tests/coverage/coverage_models.py), result.json
(tests/coverage/coverage_driver.cpp), driver_run.json (the sweep: the driver's exit code, wall
time and timeout) and check.json
(tests/coverage/check_coverage.py). Plain Python, no third-party modules.

  coverage_table.py OUT_DIR [MODELS] [--require-pass]
      MODELS: comma-separated (default: every folder); --require-pass: exit 1 unless every
      model was checked (the fast subset in ctest)
"""
import json
import os
import sys

# How far a model can get, in order; "checked" is a passing Core ML check.
LADDER = ["traced", "load", "capture", "prepare", "qat", "finalize", "export", "output",
          "checked"]
SIGNALS = {4: "SIGILL", 6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 11: "SIGSEGV"}


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_text(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def first_line(text):
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def short(text, limit=110):
    text = first_line(text).replace("|", "\\|")
    return text if len(text) <= limit else text[:limit - 3] + "..."


def shape_text(meta):
    if not meta:
        return ""
    return "; ".join("x".join(str(d) for d in i["shape"]) +
                     ("" if i["dtype"] == "float32" else f" {i['dtype']}")
                     for i in meta["inputs"])


def driver_outcome(result, run):
    """(last stage passed, text for the table) from result.json and driver_run.json."""
    if run is None and result is None:
        return None, "driver not run"
    run = run or {}
    code = run.get("exit_code")
    reached = (result or {}).get("stage_reached", "none")
    running = (result or {}).get("running")
    if reached == "done":
        return "output", "done"
    if result and result.get("failed_stage"):
        return reached, f"{result['failed_stage']}: {short(result.get('error'))}"
    where = f" in {running}" if running else ""
    timeout = run.get("timeout")
    if code == 124 or (timeout and run.get("seconds", 0) >= timeout):
        return reached, f"timeout{where} (after {timeout} s)"
    if code == 127 or run.get("missing"):
        return None, "driver not found"
    if code is not None and code > 128:
        return reached, f"crashed{where}: {SIGNALS.get(code - 128, f'signal {code - 128}')}"
    return reached, f"exit code {code}{where}"


def check_outcome(check):
    if not check:
        return None, ""
    if check["status"] == "error" and check.get("failed_step") == "precondition":
        return False, ""  # the driver's column already says why
    if check["status"] in ("pass", "fail"):
        if check.get("max_steps") is not None:
            text = f"{check['max_steps']:.2f} steps"
            if check.get("noise_floor_steps"):
                text += f" (floor {check['noise_floor_steps']:.0f})"
            per_op = check.get("per_op")
            if per_op:
                text += f"; per op {per_op['max_steps']:.0f} ({per_op['checked']} quantizers)"
        elif check.get("max_abs_error") is not None:
            text = f"{check['max_abs_error']:.2g} abs (float)"
        else:
            text = ""
        if check["status"] == "fail":
            text = f"FAIL: {short(check.get('error'), 90)}"
        return check["status"] == "pass", text
    return False, f"{check.get('failed_step')}: {short(check.get('error'), 70)}"


def onnx_outcome(onnx_check):
    """(failed, cell text) for the ONNX column: unmapped models are not failures."""
    if not onnx_check:
        return False, ""
    status = onnx_check.get("status")
    if status == "pass":
        steps = onnx_check.get("max_steps")
        return False, "pass" + (f" ({steps:.2f} steps)" if steps is not None else "")
    if status == "unmapped":
        text = str(onnx_check.get("error", ""))
        op = text.split("op '")[1].split("'")[0] if "op '" in text else short(text, 50)
        return False, f"unmapped: {op}"
    return True, f"{status.upper()}: {short(onnx_check.get('error'), 60)}"


def row(out_dir, name):
    directory = os.path.join(out_dir, name)
    meta = read_json(os.path.join(directory, "meta.json"))
    trace_error = read_text(os.path.join(directory, "trace_error.txt"))
    result = read_json(os.path.join(directory, "result.json"))
    check = read_json(os.path.join(directory, "check.json"))
    onnx_check = read_json(os.path.join(directory, "onnx_check.json"))
    run = read_json(os.path.join(directory, "driver_run.json"))

    record = {"model": name, "meta": meta, "result": result, "check": check,
              "onnx_check": onnx_check, "driver_run": run}
    if not meta:
        record["reached"] = "none"
        record["table"] = [name, "", "", "", "", f"not traced: {short(trace_error)}", "", "", "",
                           ""]
        return record

    reached, stage_text = driver_outcome(result, run)
    passed, check_text = check_outcome(check)
    reached = reached if reached in LADDER else "traced"
    if passed:
        reached = "checked"
    record["reached"] = reached
    record["onnx_failed"], onnx_text = onnx_outcome(onnx_check)

    prepared = (result or {}).get("prepared") or {}
    seconds = (result or {}).get("seconds") or {}
    coreml = (check or {}).get("coreml") or {}
    captured = str(prepared.get("nodes_without_quantizers", ""))
    generic = (prepared.get("nodes_by_op") or {}).get("torch_op")
    if generic:  # operators run as LibTorch runs them, left in float
        captured += f" ({generic} torch_op)"
    quantizers = (f"{prepared['weight_quantizers']}/{prepared['activation_quantizers']}"
                  if "weight_quantizers" in prepared else "")
    capture_prepare = ""
    if "capture" in seconds:
        capture_prepare = f"{seconds['capture'] + seconds.get('prepare', 0.0):.1f}"
    record["table"] = [
        name, shape_text(meta),
        f"{meta['torchscript_nodes']} ({meta['num_aten_ops']})",
        captured, quantizers, stage_text,
        str(coreml.get("non_const_ops", "")), check_text, onnx_text, capture_prepare,
    ]
    return record


HEADER = ["model", "input", "TorchScript nodes (aten ops)", "captured nodes",
          "W/A quantizers", "stage reached / error", "Core ML ops", "evaluator error",
          "ONNX Runtime error", "capture+prepare s"]


def main(argv):
    if not argv:
        print(__doc__)
        return 2
    require_pass = "--require-pass" in argv
    argv = [a for a in argv if a != "--require-pass"]
    out_dir = argv[0]
    names = [n for n in (argv[1] if len(argv) > 1 else "").split(",") if n]
    if not names:
        names = sorted(d for d in os.listdir(out_dir)
                       if os.path.isdir(os.path.join(out_dir, d)))
    records = [row(out_dir, name) for name in names]

    print("| " + " | ".join(HEADER) + " |")
    print("|" + "---|" * len(HEADER))
    for record in records:
        print("| " + " | ".join(record.pop("table")) + " |")
    counts = {stage: sum(1 for r in records if r["reached"] in LADDER and
                         LADDER.index(r["reached"]) >= LADDER.index(stage))
              for stage in LADDER}
    print()
    print(f"{len(records)} models: " + ", ".join(f"{counts[s]} {s}" for s in LADDER) +
          " (each count includes the models that got further)")
    print("captured nodes: the prepared graph's nodes without its fake quantizers (of which "
          "generic torch_op nodes); "
          "W/A: weight/activation quantizers; evaluator error: the numpy evaluator of the "
          ".mlpackage vs LibTorch's finalized model on the batch-1 input, in steps of the "
          "output quantizer (pass <= 4, or <= twice the floor: how far LibTorch's own output "
          "moves when the parameters change by the program's rounding error) or absolute for "
          "float outputs; per op: the largest error of any activation quantizer of the package "
          "when its inputs are LibTorch's values (pass <= 1 step); ONNX Runtime error: "
          "model.onnx run by ONNX Runtime (integer kernels) vs the same reference and bounds, "
          "or the op the ONNX export does not map yet.")
    summary = {"out_dir": os.path.abspath(out_dir), "models": records, "counts": counts,
               "ladder": LADDER}
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    failed = [r["model"] for r in records
              if r["reached"] != LADDER[-1] or r.get("onnx_failed")]
    if require_pass and failed:
        print("not checked: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
