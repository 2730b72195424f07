"""Checks the ONNX side of one model of the coverage sweep: is MODEL_DIR/model.onnx (written by
coverage_driver with linquant::onnx::save when the model's ops have an ONNX mapping) a valid
ONNX model, and does ONNX Runtime compute from it what the finalized LibTorch model computed?
The driver also writes model.uint8.onnx (8-bit weights stored as uint8); ONNX Runtime's integer
kernels run that one on every CPU and model.onnx (int8 weights) where they are exact for int8
weights (tests/support/onnxruntime_cpu.py).

  .venv/bin/python tests/coverage/check_onnx.py MODEL_DIR [MODEL_DIR...]

For each MODEL_DIR: onnx.checker (full check) and strict shape inference; ONNX Runtime with its
QDQ fusions (integer kernels) on the batch-1 input (finalized_input.pt); the outputs compared
with finalized_output.pt under the bounds check_coverage.py uses for Core ML (4 steps of the
output quantizer or twice the model's noise floor; float outputs within 5e-3 of their largest
magnitude). Writes MODEL_DIR/onnx_check.json: "status" is "pass", "fail", "error", or
"unmapped" when the exporter refused the model for an op without an ONNX mapping (the driver's
message is kept). Exit code 0 unless a model failed or could not be checked.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from onnxruntime_cpu import weight_storages  # noqa: E402
from check_coverage import (StepFailed, batch_one_inputs, check_all, compare, load_pt,
                            read_json, step)


def check(model_dir):
    report = {"model": os.path.basename(os.path.normpath(model_dir)), "status": "error",
              "failed_step": None, "error": None}
    start = time.monotonic()
    try:
        result = read_json(os.path.join(model_dir, "result.json")) or {}
        onnx_result = result.get("onnx") or {}
        if "error" in onnx_result:
            report.update(status="unmapped", error=onnx_result["error"])
            return report
        if "file" not in onnx_result:
            raise StepFailed("precondition", "the driver wrote no ONNX model")
        import numpy as np
        import onnx
        import onnxruntime as ort

        path = onnx_result["file"]
        paths = {"int8": path, "uint8": onnx_result.get("uint8_file")}

        def validate():
            model = onnx.load(path)
            onnx.checker.check_model(model, full_check=True)
            onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
            report["nodes"] = len(model.graph.node)
        step("checker", validate)

        def run(model_path):
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
            session = ort.InferenceSession(model_path, options,
                                           providers=["CPUExecutionProvider"])
            inputs, _ = batch_one_inputs(model_dir)
            feeds = {i.name: np.asarray(x) for i, x in zip(session.get_inputs(), inputs)}
            names = [o.name for o in session.get_outputs()]
            return dict(zip(names, session.run(None, feeds)))
        expected = step("reference", lambda: load_pt(
            os.path.join(model_dir, "finalized_output.pt")))
        report["status"] = "pass"
        steps = []
        for storage in weight_storages():
            if not paths[storage]:
                raise StepFailed("precondition", f"the driver wrote no {storage}-weight model")
            got = step("onnxruntime", lambda: run(paths[storage]))
            ok = step("compare", lambda: compare(got, expected, result, report))
            steps += [o["max_steps"] for o in report["outputs"] if "max_steps" in o]
            if not ok and report["status"] == "pass":
                report["status"] = "fail"
                report["failed_step"] = "compare"
                report["error"] = f"outputs outside their bounds ({storage} weights)"
        report["max_steps"] = max(steps) if steps else None
    except StepFailed as e:
        report.update(status="error", failed_step=e.step, error=str(e))
    finally:
        report["seconds"] = round(time.monotonic() - start, 2)
        with open(os.path.join(model_dir, "onnx_check.json"), "w") as f:
            json.dump(report, f, indent=1)
    return report


def main(argv):
    return check_all(argv, check, __doc__, label=" onnx", accepted=("pass", "unmapped"))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
