"""`linquant train --quick` end to end on Debian's Fashion-MNIST: every output file, sane
accuracies, packages coremltools can read, the ONNX model run by ONNX Runtime at the finalized
accuracy, and inspect/export on what it wrote."""
import gzip
import json
import os
import sys
import time

import numpy as np

import pytest

from conftest import FASHION_MNIST, leftovers, load_package, run

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from onnxruntime_cpu import weight_storages  # noqa: E402


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    if not (FASHION_MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.fail(f"{FASHION_MNIST} is missing: install dataset-fashion-mnist (scripts/setup.sh)")
    parent = tmp_path_factory.mktemp("train")
    out = parent / "tutorial"
    start = time.monotonic()
    done = run("train", "--quick", "--threads", "2", "-o", out)
    seconds = time.monotonic() - start
    assert done.returncode == 0, done.stderr[-3000:]
    return {"out": out, "parent": parent, "done": done, "seconds": seconds}


def test_quick_run_is_under_a_minute(quick_run):
    assert quick_run["seconds"] < 60, f"--quick took {quick_run['seconds']:.1f} s"


def test_output_files(quick_run):
    out = quick_run["out"]
    for name in ["model.mlpackage", "model_float16.mlpackage", "model.onnx", "quantized_model.pt", "metrics.json",
                 "report.txt", "report.json", "config.yaml", "curves.dat", "curves.gp", "curves.png"]:
        assert (out / name).exists(), name
    assert leftovers(quick_run["parent"]) == []


def test_metrics(quick_run):
    metrics = json.loads((quick_run["out"] / "metrics.json").read_text())
    acc = metrics["test_accuracy"]
    # One epoch on 12000 images already passes 75 %; QAT keeps training.
    assert acc["float"] > 75
    assert acc["fake_quant"] > 75
    assert acc["finalized"] > 75
    # finalize() freezes what fake quantization simulated: the two agree closely.
    assert abs(acc["finalized"] - acc["fake_quant"]) < 0.5
    assert metrics["data"]["train_images"] == 12000
    assert metrics["data"]["test_images"] == 10000
    sizes = metrics["sizes_bytes"]
    assert 0 < sizes["w8a8_package"] < sizes["float16_package"]
    for phase in ["data", "float training", "QAT training", "finalize", "evaluation", "export"]:
        assert phase in metrics["times_seconds"], phase
    assert metrics["curves"]["float_train"] and metrics["curves"]["qat_train"]


def test_report(quick_run):
    rows = json.loads((quick_run["out"] / "report.json").read_text())
    kinds = {row["type"] for row in rows}
    assert kinds == {"weight", "activation"}
    assert "qmin" in (quick_run["out"] / "report.txt").read_text()


def test_table_on_stdout(quick_run):
    stdout = quick_run["done"].stdout
    for text in ["float", "fake quant (prepared, eval)", "finalized W8A8", "Wall time per phase", "fp16,", "W8A8,"]:
        assert text in stdout, text


def test_progress_lines_on_stderr(quick_run):
    stderr = quick_run["done"].stderr
    assert "float 1/1" in stderr and "QAT 1/1" in stderr
    assert "ETA" in stderr and "img/s" in stderr and "acc" in stderr
    assert "\r" not in stderr  # not a terminal: plain lines


def test_packages_load_in_coremltools(quick_run):
    assert load_package(quick_run["out"] / "model.mlpackage") == 8
    assert load_package(quick_run["out"] / "model_float16.mlpackage") == 8


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = [int.from_bytes(data[4 + 4 * k:8 + 4 * k], "big") for k in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


@pytest.mark.parametrize("storage", weight_storages())
def test_onnx_model_runs_at_the_finalized_accuracy(quick_run, storage):
    """ONNX Runtime (integer kernels) on all 10000 test images, normalized as metrics.json says,
    agrees with the finalized LibTorch model's accuracy within 0.1 point: model.onnx (int8
    weights) where ONNX Runtime's int8-weight kernels are exact on this CPU, and the saved model
    exported with uint8 weights everywhere (tests/support/onnxruntime_cpu.py)."""
    import onnxruntime as ort

    model = quick_run["out"] / "model.onnx"
    if storage == "uint8":
        model = quick_run["parent"] / "model_uint8.onnx"
        done = run("export", quick_run["out"] / "quantized_model.pt", "--format", "onnx",
                   "--onnx-weights", "uint8", "--overwrite", "-o", model)
        assert done.returncode == 0, done.stderr
        assert "uint8 weights" in done.stdout
    metrics = json.loads((quick_run["out"] / "metrics.json").read_text())
    norm = metrics["data"]["input_normalization"]
    images = read_idx(FASHION_MNIST / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(FASHION_MNIST / "t10k-labels-idx1-ubyte.gz")
    # The same float32 operations as the trainer: pixel / 255, minus mean, divided by std.
    x = (images.astype(np.float32) / np.float32(255) - np.float32(norm["mean"])) / np.float32(norm["std"])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    correct = 0
    for k in range(len(labels)):  # the exported model has the saved batch of 1
        y = session.run(None, {name: x[k:k + 1, None]})[0]
        correct += int(np.argmax(y) == labels[k])
    accuracy = 100.0 * correct / len(labels)
    assert abs(accuracy - metrics["test_accuracy"]["finalized"]) <= 0.1, (accuracy, metrics["test_accuracy"])
    assert metrics["sizes_bytes"]["w8a8_onnx"] > 0


def test_inspect_package(quick_run):
    done = run("inspect", quick_run["out"] / "model.mlpackage", "--graph")
    assert done.returncode == 0, done.stderr
    for text in ["specification version 8", "constexpr_affine_dequantize", "quantize", "dequantize", "conv",
                 "weight.bin"]:
        assert text in done.stdout, text


def test_inspect_saved_model(quick_run):
    done = run("inspect", quick_run["out"] / "quantized_model.pt")
    assert done.returncode == 0, done.stderr
    assert "rebuilt and checked bit for bit" in done.stdout
    assert "torch.qint8" in done.stdout and "activation_post_process_0" in done.stdout


def test_export_saved_model_matches_train_export(quick_run, tmp_path):
    done = run("export", quick_run["out"] / "quantized_model.pt", "--format", "coreml", "--target", "ios17",
               "--precision", "fp16", "-o", tmp_path / "again.mlpackage")
    assert done.returncode == 0, done.stderr
    model = "Data/com.apple.CoreML/model.mlmodel"
    weights = "Data/com.apple.CoreML/weights/weight.bin"
    for name in [model, weights]:
        assert (tmp_path / "again.mlpackage" / name).read_bytes() == (quick_run["out"] / "model.mlpackage" / name).read_bytes()


def test_export_ios18_fp32(quick_run, tmp_path):
    done = run("export", quick_run["out"] / "quantized_model.pt", "--target", "ios18", "--precision", "fp32",
               "-o", tmp_path / "ios18.mlpackage")
    assert done.returncode == 0, done.stderr
    assert load_package(tmp_path / "ios18.mlpackage") == 9


def test_existing_output_needs_overwrite(quick_run):
    done = run("train", "--quick", "-o", quick_run["out"])
    assert done.returncode == 2
    assert "--overwrite" in done.stderr
