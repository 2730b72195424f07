"""ONNX through the CLI: `export --format onnx` of a float TorchScript model (checked against
PyTorch's own output through ONNX Runtime) and of quantized models (W8A8 and 4-bit weights,
opsets), `inspect` of .onnx files, and the refusals (opset range, 4-bit weights below opset 21,
an existing file). The trained tutorial's model.onnx is checked in test_train_quick.py."""
import subprocess
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from conftest import check_refused, leftovers, run


def ort_session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def torch_output(torchscript, x):
    """The traced model's output for x, computed by Debian's python3-torch."""
    code = ("import sys, numpy, torch\n"
            "x = torch.from_numpy(numpy.load(sys.argv[2]))\n"
            "numpy.save(sys.argv[3], torch.jit.load(sys.argv[1])(x).detach().numpy())\n")
    folder = Path(torchscript).parent
    np.save(folder / "x.npy", x)
    subprocess.run(["/usr/bin/python3", "-c", code, str(torchscript), str(folder / "x.npy"),
                    str(folder / "y.npy")], check=True, timeout=300)
    return np.load(folder / "y.npy")


def test_float_torchscript_to_onnx_matches_pytorch(tutorial_torchscript, tmp_path):
    done = run("export", tutorial_torchscript, "--format", "onnx", "--input-shape", "4,1,28,28",
               "-o", tmp_path / "float")
    assert done.returncode == 0, done.stderr
    path = tmp_path / "float.onnx"
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert not {n.op_type for n in model.graph.node} & {"QuantizeLinear", "DequantizeLinear"}
    x = np.random.default_rng(0).standard_normal((4, 1, 28, 28)).astype(np.float32)
    got = ort_session(path).run(None, {model.graph.input[0].name: x})[0]
    np.testing.assert_allclose(got, torch_output(tutorial_torchscript, x), rtol=1e-5, atol=1e-5)


def quantized(tutorial_torchscript, small_data, folder, *extra):
    out = folder / "model.pt"
    done = run("quantize", "--model", tutorial_torchscript, "--data", small_data, "--steps", "4",
               "--calibrate", "-o", out, *extra)
    assert done.returncode == 0, done.stderr[-2000:]
    return out


def test_quantized_export_inspect_and_refusals(tutorial_torchscript, small_data, tmp_path):
    saved = quantized(tutorial_torchscript, small_data, tmp_path)
    done = run("export", saved, "--format", "onnx", "--input-shape", "8,1,28,28",
               "-o", tmp_path / "w8a8.onnx")
    assert done.returncode == 0, done.stderr
    assert "ONNX opset 13" in done.stdout
    model = onnx.load(str(tmp_path / "w8a8.onnx"))
    onnx.checker.check_model(model, full_check=True)
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [8, 1, 28, 28]
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("QuantizeLinear") == 5 and "Conv" in ops and "Gemm" in ops

    inspected = run("inspect", tmp_path / "w8a8.onnx", "--graph")
    assert inspected.returncode == 0, inspected.stderr
    for text in ["ONNX model", "opset 13", "input  input: float [8, 1, 28, 28]",
                 "QuantizeLinear x5", "int8 23.6 kB", "Conv "]:
        assert text in inspected.stdout, (text, inspected.stdout)

    check_refused(run("export", saved, "--format", "onnx", "-o", tmp_path / "w8a8.onnx"),
                  tmp_path, "already exists", "--overwrite")
    check_refused(run("export", saved, "--format", "onnx", "--opset", "12",
                      "-o", tmp_path / "old.onnx"), tmp_path, "--opset 12", "13 to 21")
    assert not (tmp_path / "old.onnx").exists()

    not_onnx = tmp_path / "fake.onnx"
    not_onnx.write_bytes(b"\x00\x01garbage")
    check_refused(run("inspect", not_onnx), tmp_path, "not an ONNX model")


def test_4bit_weights_need_opset_21(tutorial_torchscript, small_data, tmp_path):
    config = tmp_path / "w4.yaml"
    config.write_text("global_config:\n  weight_dtype: qint4\n")
    saved = quantized(tutorial_torchscript, small_data, tmp_path, "--config", config)
    check_refused(run("export", saved, "--format", "onnx", "-o", tmp_path / "w4.onnx"),
                  tmp_path, "4 bits", "opset 21")
    assert not (tmp_path / "w4.onnx").exists() and leftovers(tmp_path) == []
    done = run("export", saved, "--format", "onnx", "--opset", "21", "-o", tmp_path / "w4.onnx")
    assert done.returncode == 0, done.stderr
    model = onnx.load(str(tmp_path / "w4.onnx"))
    onnx.checker.check_model(model, full_check=True)
    int4 = {i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.INT4}
    # The conv and linear weights and their zero points.
    assert int4 == {"0.weight_quantized", "0.weight_zero_point", "4.weight_quantized",
                    "4.weight_zero_point"}
    x = np.zeros((1, 1, 28, 28), np.float32)
    assert ort_session(tmp_path / "w4.onnx").run(None, {"input": x})[0].shape == (1, 10)


def dequantized_weights(path):
    """(q - zero_point) * scale of every integer weight initializer, by weight name."""
    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    weights = {}
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear" or not node.input[0].endswith("weight_quantized"):
            continue
        q, scale, zero_point = (inits[name] for name in node.input[:3])
        shape = [1] * q.ndim
        shape[0] = -1  # per output channel
        weights[node.input[0]] = (q.dtype, (q.astype(np.int32) - zero_point.astype(np.int32)
                                            .reshape(shape)) * scale.reshape(shape))
    return weights


def test_uint8_weight_storage(tutorial_torchscript, small_data, tmp_path):
    saved = quantized(tutorial_torchscript, small_data, tmp_path)
    for storage in ("int8", "uint8"):
        done = run("export", saved, "--format", "onnx", "--onnx-weights", storage,
                   "-o", tmp_path / f"{storage}.onnx")
        assert done.returncode == 0, done.stderr
        assert f"{storage} weights" in done.stdout
    signed = dequantized_weights(tmp_path / "int8.onnx")
    unsigned = dequantized_weights(tmp_path / "uint8.onnx")
    assert sorted(signed) == sorted(unsigned) == ["0.weight_quantized", "4.weight_quantized"]
    for name, (dtype, values) in unsigned.items():
        assert dtype == np.uint8 and signed[name][0] == np.int8, name
        np.testing.assert_array_equal(values, signed[name][1])  # the same weights
    check_refused(run("export", saved, "--format", "onnx", "--onnx-weights", "int16",
                      "-o", tmp_path / "bad.onnx"), tmp_path, "--onnx-weights")
