"""`linquant quantize --input-shape` adapts each batch (channel repeat, bilinear resize) instead of
the whole data set up front. Checked against PyTorch: after one calibration epoch with a min/max
observer, the model input's quantizer holds the range of every training image normalized and
resized by torch's own interpolate, so its scale and zero point must equal those of PyTorch's
MinMaxObserver fed the same images."""
import subprocess

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

from conftest import run

SHAPE = (3, 40, 36)  # more rows and columns than the 28x28 images: both directions resample


def read_idx_images(path):
    data = path.read_bytes()
    n, h, w = (int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(3))
    return np.frombuffer(data[16:], dtype=np.uint8).reshape(n, h, w)


def reference_input_qparams(images):
    x = torch.from_numpy(images.copy()).unsqueeze(1).to(torch.float32).div_(255.0)
    as_double = x.to(torch.float64)
    mean = np.float32(as_double.mean().item())
    std = np.float32(as_double.std().item())
    x = x.sub_(float(mean)).div_(float(std))
    x = F.interpolate(x, size=SHAPE[1:], mode="bilinear", align_corners=False)
    x = x.expand(-1, SHAPE[0], -1, -1)
    observer = torch.ao.quantization.MinMaxObserver(dtype=torch.quint8,
                                                    qscheme=torch.per_tensor_symmetric)
    observer(x)
    scale, zero_point = observer.calculate_qparams()
    return float(scale), int(zero_point)


def test_batches_are_resized_as_pytorch_resizes_them(small_data, tmp_path):
    model = tmp_path / "rgb.pt"
    code = (
        "import sys, torch\n"
        "torch.manual_seed(0)\n"
        "m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(),\n"
        "    torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 10))\n"
        f"torch.jit.trace(m.eval(), torch.randn(1, {', '.join(map(str, SHAPE))})).save(sys.argv[1])\n"
    )
    subprocess.run(["/usr/bin/python3", "-c", code, str(model)], check=True, timeout=300)
    config = tmp_path / "min_max.yaml"
    config.write_text("global_config:\n  activation_observer: min_max\n")
    # 512 training images in 8 batches of 64: one epoch, every image observed once.
    out = tmp_path / "rgb_calibrated.pt"
    done = run("quantize", "--model", model, "--data", small_data, "--config", config,
               "--input-shape", ",".join(map(str, SHAPE)), "--calibrate", "--steps", "8",
               "--batch-size", "64", "-o", out)
    assert done.returncode == 0, done.stderr[-2000:]
    exported = run("export", out, "--format", "onnx", "-o", tmp_path / "rgb.onnx")
    assert exported.returncode == 0, exported.stderr

    graph = onnx.load(tmp_path / "rgb.onnx").graph
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim][1:] == list(SHAPE)
    initializers = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    first = [n for n in graph.node
             if n.op_type == "QuantizeLinear" and n.input[0] == graph.input[0].name]
    assert len(first) == 1
    scale = float(initializers[first[0].input[1]])
    zero_point = int(initializers[first[0].input[2]])

    want_scale, want_zero_point = reference_input_qparams(
        read_idx_images(small_data / "train-images-idx3-ubyte"))
    assert np.float32(scale) == np.float32(want_scale), (scale, want_scale)
    assert zero_point == want_zero_point


def test_channels_that_cannot_be_repeated_are_refused(tutorial_torchscript, small_data, tmp_path):
    # One-channel images can feed any channel count; the error names what was asked for.
    done = run("quantize", "--model", tutorial_torchscript, "--data", small_data,
               "--input-shape", "1,28", "--steps", "1", "-o", tmp_path / "x.pt")
    assert done.returncode == 2 and "C,H,W" in done.stderr
