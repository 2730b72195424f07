"""Checks one model of the coverage sweep: does the .mlpackage coverage_driver wrote compute
what the finalized LibTorch model computed?

Owns the Core ML side of the sweep (scripts/coverage_sweep.sh). Run with the project's venv
(coremltools 9.0, numpy; it sees Debian's torch for reading .pt files):

  .venv/bin/python tests/coverage/check_coverage.py MODEL_DIR [MODEL_DIR...]

For each MODEL_DIR (written by tests/coverage/coverage_driver.cpp) it

  1. loads MODEL_DIR/model.mlpackage with coremltools exactly as the export tests do
     (tests/export/python/package_reading.py: MLModel with skip_model_load, then the milproto
     loader, which rebuilds the program and re-runs every op's type inference) and counts the
     program's non-const operations;
  2. runs the export tests' independent numpy evaluator (tests/export/python/
     mil_numpy_evaluator.py, MilProgram) on the batch-1 input, finalized_input.pt (the first
     example of inputs.pt when that is missing, float values rounded to fp16);
  3. compares with finalized_output.pt: max and mean absolute error and, when result.json
     has the scale of the quantizer producing an output, the error in steps of that scale.
     An output passes within 4 steps (quantized; or within twice the model's own noise floor
     when that is larger: how far LibTorch's output moves when the parameters change by the
     program's rounding error, result.json "noise_floor"; plus, for an fp16 output, the half
     ulp by which fp16 misses a multiple of the scale) or within 5e-3 of its largest magnitude
     (float; magnitudes below fp16's smallest normal number, 2^-14, count as 2^-14: fp16
     cannot hold their relative precision);
  4. per op: runs the evaluator on the package's fp32 twin (MODEL_DIR/model_fp32.mlpackage,
     the same model exported with Float32 precision) with every quantize op that stands for
     one of the finalized model's activation quantizers replaced by LibTorch's integers
     (finalized_activations.pt), and compares what each quantize op computed from LibTorch's
     inputs with LibTorch's integers: at most 1 step apart. A random-weight network amplifies
     a one-step rounding difference layer by layer (step 3's floor), and fp16 rounds every
     constant and value; this step sees each lowered op alone, without fp16.

Every failure (missing files, coremltools load error, an op the evaluator lacks, a shape or
value mismatch) is recorded as data in MODEL_DIR/check.json: "status" is "pass", "fail"
(ran, outside the bounds) or "error" (could not run), "failed_step" names the step. The exit
code is 0 when every MODEL_DIR passed, 1 otherwise.
"""
import json
import os
import sys
import time
import traceback

import numpy as np

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "export", "python"))

MAX_STEPS = 4.0       # quantized outputs: error bound in steps of the output quantizer
FLOOR_MARGIN = 2.0    # the noise floor perturbs only parameters, the program also rounds
                      # every activation: the floor is a low estimate
MAX_OP_STEPS = 1.0    # each activation quantizer fed LibTorch's inputs (per_op)
FLOAT_RTOL = 5e-3     # float outputs: error bound relative to the largest reference value,
FP16_TINY = 2.0 ** -14  # ... but at least relative to fp16's smallest normal number
FP16_MAX = 65504.0


def first_line(text):
    lines = [line for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ""


def load_pt(path):
    """A .pt written by torch::jit::pickle_save or torch.save: a tensor, tuple or list, or
    {"inputs": ...} (inputs.pt)."""
    import torch
    value = torch.load(path)
    if isinstance(value, dict):
        value = value["inputs"]
    if isinstance(value, torch.Tensor):
        value = [value]
    return [np.asarray(t.detach().cpu().numpy()) for t in value]


def batch_one_inputs(model_dir):
    path = os.path.join(model_dir, "finalized_input.pt")
    if os.path.exists(path):
        return load_pt(path), "finalized_input.pt"
    inputs = []
    for x in load_pt(os.path.join(model_dir, "inputs.pt")):
        x = x[:1]
        inputs.append(x.astype(np.float16).astype(x.dtype) if x.dtype.kind == "f" else x)
    return inputs, "inputs.pt[:1]"


def read_json(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


class StepFailed(Exception):
    def __init__(self, step, message):
        super().__init__(message)
        self.step = step


def step(name, fn):
    """Runs fn(); any exception becomes a StepFailed naming the step."""
    try:
        return fn()
    except StepFailed:
        raise
    except NotImplementedError as e:  # the evaluator lacks an op or an op variant
        raise StepFailed(name, f"evaluator: {e}") from e
    except Exception as e:
        raise StepFailed(name, f"{type(e).__name__}: {first_line(e) or repr(e)}") from e


def load_package(package, report):
    """coremltools: the spec, then the program rebuilt with type inference."""
    from package_reading import load_program, main_block, non_const_types

    def load():
        spec, program = load_program(package)
        function, block = main_block(spec)
        kinds = non_const_types(block.operations)
        loaded = non_const_types(program.functions["main"].operations)
        counts = {}
        for kind in kinds:
            counts[kind] = counts.get(kind, 0) + 1
        report["coreml"] = {
            "specification_version": spec.specificationVersion,
            "opset": function.opset,
            "non_const_ops": len(kinds),
            "ops": len(block.operations),
            "op_counts": dict(sorted(counts.items())),
            "reloaded_non_const_ops": len(loaded),
            "inputs": [f.name for f in spec.description.input],
            "outputs": [f.name for f in spec.description.output],
        }
        if loaded != kinds:
            raise AssertionError("the milproto loader rebuilt another op sequence")

    step("load", load)


def evaluate(package, inputs, report):
    from mil_numpy_evaluator import MilProgram

    def run():
        program = MilProgram(package)
        if len(program.inputs) != len(inputs):
            raise AssertionError(f"package has {len(program.inputs)} inputs, "
                                 f"the model {len(inputs)}")
        feeds = {name: x for (name, _), x in zip(program.inputs, inputs)}
        return program.run(feeds)

    return step("evaluate", run)


def mil_identifier(name):
    """The exporter's MIL name for an IR value (src/export/coreml/identifier.cpp)."""
    def body(c):
        return c.isascii() and (c.isalnum() or c in "_@")
    out = "".join(c if body(c) else "_" for c in name)
    return out if out and (out[0].isascii() and out[0].isalpha() or out[0] == "_") else "_" + out


def per_op(package, inputs, model_dir, result, report):
    """Every quantize op of the program that stands for an activation quantizer of the
    finalized model is fed LibTorch's values: each of its inputs' quantizers is replaced by
    LibTorch's integers, so the error of each quantizer is that of the ops since the previous
    ones alone, not an error amplified through the whole network. Returns the worst error in
    steps (None when the driver recorded no activations)."""
    from mil_numpy_evaluator import MilProgram, tensor_type

    described = (result or {}).get("activations")
    path = os.path.join(model_dir, "finalized_activations.pt")
    if not described or not os.path.exists(path):
        return None
    values = load_pt(path)
    # The fp32 twin of the package when there is one: constants and arithmetic without fp16's
    # rounding, so that what remains is the mapping of each op.
    twin = os.path.join(os.path.dirname(package), "model_fp32.mlpackage")
    program = MilProgram(twin if os.path.exists(twin) else package)
    report["per_op_package"] = os.path.basename(twin if os.path.exists(twin) else package)
    quantize_shapes = {op.outputs[0].name: tensor_type(op.outputs[0].type)[1]
                       for op in program.block.operations if op.type == "quantize"}
    force, expected = {}, {}
    for entry, x in zip(described, values):
        name = mil_identifier(entry["value"]) + "_quantized"
        if quantize_shapes.get(name) != x.shape:
            continue

        def integers(p, x=x, name=name):
            q = np.round(x.astype(np.float64) / float(p["scale"])) + float(p.get("zero_point", 0))
            expected[name] = q
            return q
        force[name] = integers
    computed = {}
    feeds = {name: x for (name, _), x in zip(program.inputs, inputs)}
    program.run(feeds, force=force, computed=computed)
    worst, worst_name = 0.0, None
    for name, q in expected.items():
        error = float(np.abs(computed[name].astype(np.float64) - q).max()) if q.size else 0.0
        if error > worst or worst_name is None:
            worst, worst_name = error, name
    report["per_op"] = {"quantizers": len(described), "checked": len(expected),
                        "max_steps": worst, "worst": worst_name, "bound_steps": MAX_OP_STEPS}
    return worst


def compare(got, expected, result, report):
    """Fills report["outputs"]; True when every output is within its bound."""
    if len(got) != len(expected):
        raise StepFailed("compare", f"package has {len(got)} outputs, the model {len(expected)}")
    quantizers = (result or {}).get("output_quantizers") or []
    ok = True
    report["outputs"] = []
    for k, ((name, value), want) in enumerate(zip(got.items(), expected)):
        fp16_output = np.asarray(value).dtype == np.float16
        value = np.asarray(value).astype(np.float32)
        want = np.asarray(want).astype(np.float32)
        entry = {"name": name, "shape": list(value.shape), "expected_shape": list(want.shape)}
        report["outputs"].append(entry)
        if value.shape != want.shape:
            entry.update(passed=False, problem="shape mismatch")
            ok = False
            continue
        finite = bool(np.isfinite(value).all())
        error = np.abs(value - want)
        largest = float(np.abs(want).max()) if want.size else 0.0
        entry.update(max_abs_error=float(error.max()) if error.size else 0.0,
                     mean_abs_error=float(error.mean()) if error.size else 0.0,
                     largest_expected=largest, finite=finite)
        quantizer = quantizers[k] if k < len(quantizers) else None
        floors = (result or {}).get("noise_floor") or []
        if quantizer and quantizer.get("scale"):
            scale = float(quantizer["scale"])
            floor = float(floors[k]) / scale if k < len(floors) else 0.0
            # An fp16 output holds a multiple of the scale only to half an fp16 ulp.
            rounding = largest * 2.0 ** -11 / scale if fp16_output else 0.0
            entry.update(scale=scale, max_steps=entry["max_abs_error"] / scale,
                         mean_steps=entry["mean_abs_error"] / scale, noise_floor_steps=floor,
                         fp16_rounding_steps=rounding,
                         bound_steps=max(MAX_STEPS, FLOOR_MARGIN * floor) + rounding)
            passed = finite and entry["max_steps"] <= entry["bound_steps"]
        else:
            bound = FLOAT_RTOL * max(largest, FP16_TINY)
            entry.update(bound_abs=bound)
            passed = finite and entry["max_abs_error"] <= bound
        entry["passed"] = bool(passed)
        if not finite:
            entry["problem"] = "non-finite values"
            if largest > FP16_MAX:
                entry["problem"] += f" (the reference reaches {largest:.3g}, beyond fp16's range)"
        ok = ok and passed
    return ok


def check(model_dir):
    model_dir = os.path.abspath(model_dir)
    package = os.path.join(model_dir, "model.mlpackage")
    result = read_json(os.path.join(model_dir, "result.json"))
    report = {"model": os.path.basename(model_dir), "package": package, "status": "error",
              "failed_step": None, "error": None, "seconds": {}}
    try:
        def preconditions():
            missing = [f for f in ("model.mlpackage", "finalized_output.pt")
                       if not os.path.exists(os.path.join(model_dir, f))]
            if missing:
                stage = (result or {}).get("failed_stage")
                why = f" (coverage_driver failed in {stage})" if stage else ""
                raise FileNotFoundError(f"no {', '.join(missing)}{why}")
        step("precondition", preconditions)

        start = time.time()
        load_package(package, report)
        report["seconds"]["load"] = time.time() - start

        inputs, source = step("precondition", lambda: batch_one_inputs(model_dir))
        expected = step("precondition",
                        lambda: load_pt(os.path.join(model_dir, "finalized_output.pt")))
        report["input_source"] = source
        report["inputs"] = [{"shape": list(x.shape), "dtype": str(x.dtype)} for x in inputs]

        start = time.time()
        got = evaluate(package, inputs, report)
        report["seconds"]["evaluate"] = time.time() - start

        passed = step("compare", lambda: compare(got, expected, result, report))
        start = time.time()
        local = step("per_op", lambda: per_op(package, inputs, model_dir, result, report))
        report["seconds"]["per_op"] = time.time() - start
        if local is not None and local > MAX_OP_STEPS:
            passed = False
        report["status"] = "pass" if passed else "fail"
        if not passed:
            report["failed_step"] = "compare"
            bad = [o for o in report["outputs"] if not o.get("passed")]
            o = bad[0] if bad else None
            if o is None:
                worst = report["per_op"]
                report["error"] = (f"per op: {worst['worst']} {worst['max_steps']:.0f} steps "
                                   f"(bound {MAX_OP_STEPS:.0f})")
            elif "max_steps" in o:
                report["error"] = (f"{o['name']}: max error {o['max_steps']:.2f} steps "
                                   f"(bound {o['bound_steps']:.2f})")
            elif "max_abs_error" in o:
                report["error"] = (f"{o['name']}: max error {o['max_abs_error']:.3g} "
                                   f"(bound {o['bound_abs']:.3g})")
                if o.get("problem"):
                    report["error"] += f": {o['problem']}"
            else:
                report["error"] = f"{o['name']}: {o.get('problem')}"
    except StepFailed as e:
        report["failed_step"] = e.step
        report["error"] = str(e)
        cause = e.__cause__
        if cause is not None:
            report["traceback"] = "".join(
                traceback.format_exception(type(cause), cause, cause.__traceback__))[-4000:]
    except Exception as e:  # a bug here must not stop the sweep either
        report["failed_step"] = "checker"
        report["error"] = f"{type(e).__name__}: {first_line(e)}"
        report["traceback"] = traceback.format_exc()[-4000:]

    # The headline numbers for the sweep's table: the worst output.
    outputs = report.get("outputs") or []
    steps = [o["max_steps"] for o in outputs if "max_steps" in o]
    floors = [o["noise_floor_steps"] for o in outputs if "noise_floor_steps" in o]
    report["noise_floor_steps"] = max(floors) if floors else None
    errors = [o["max_abs_error"] for o in outputs if "max_abs_error" in o]
    report["max_steps"] = max(steps) if steps else None
    report["max_abs_error"] = max(errors) if errors else None
    with open(os.path.join(model_dir, "check.json"), "w") as f:
        json.dump(report, f, indent=1)
    return report


def check_all(argv, check_one, doc, label="", accepted=("pass",)):
    """Runs check_one on every MODEL_DIR in argv, one summary line each; exit code 0 when
    every report's status is in `accepted` (shared with check_onnx.py)."""
    if not argv or argv[0] in ("-h", "--help"):
        print(doc)
        return 0 if argv else 2
    ok = True
    for model_dir in argv:
        report = check_one(model_dir)
        line = f"{report['model']}{label}: {report['status']}"
        if report["error"]:
            line += f" at {report['failed_step']}: {report['error']}"
        elif report.get("max_steps") is not None:
            line += f" (max error {report['max_steps']:.2f} steps)"
        elif report.get("max_abs_error") is not None:
            line += f" (max abs error {report['max_abs_error']:.3g})"
        print(line, flush=True)
        ok = ok and report["status"] in accepted
    return 0 if ok else 1


def main(argv):
    return check_all(argv, check, __doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
