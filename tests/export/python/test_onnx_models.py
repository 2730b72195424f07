"""ONNX models written by linquant::onnx::save for real models (tests/export/coreml_save/
export_models.cpp: the tutorial net, conv-bn-relu, resnet18, mobilenet_v2, the residual test net
and the two op zoos; float and every finalized config), checked without trusting the writer:

- onnx.checker (full check) and strict shape inference accept every model;
- every activation quantizer of the finalized model is a QuantizeLinear with its scale and zero
  point, and the int8 weight initializers times their scales give back the finalized weights
  bit for bit: the graph is the finalized model;
- ONNX Runtime runs each one against linquant's LibTorch output for the same input, with float
  biases and no graph optimization (Q/DQ executed as written) and with the default int32 biases
  and ONNX Runtime's fusions (integer kernels), for int8 and for uint8 weight storage; int8's
  integer kernels only on CPUs where they are exact (tests/support/onnxruntime_cpu.py: on x86
  without VNNI they saturate, which is ONNX Runtime's arithmetic, not the model's). Both differ from LibTorch in the last bit of
  some values: QuantizeLinear divides by the scale where PyTorch's fake quantization multiplies
  by its reciprocal, convolutions sum in another order, integer kernels requantize from int32;
  a value at a rounding boundary then lands one step away, and downstream layers carry it on.
  So outputs must be within one step of the output quantizer almost everywhere and within a
  few steps at worst (TOLERANCE);
- in the graph ONNX Runtime optimizes, every quantized conv/linear of the tutorial net,
  resnet18 and mobilenet_v2 has become an integer kernel;
- models with ops the ONNX export does not map yet were refused with a message naming the op.
"""
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "support"))
from onnxruntime_cpu import weight_storages  # noqa: E402

MAPPED = ["tutorial", "conv_bn_relu", "resnet18", "mobilenet_v2", "residual", "op_zoo_2d",
          "op_zoo_1d"]
UNMAPPED = ["sequence", "resample"]
CONFIGS = {
    "tutorial": ["float", "w8", "w4", "lsq"],
    "conv_bn_relu": ["float", "w8", "w4", "w8u", "w4u", "affine"],
    "resnet18": ["float", "w8", "w4", "lsq"],
    "mobilenet_v2": ["float", "w8", "w4"],
    "residual": ["float", "w8", "w4"],
    "op_zoo_2d": ["float", "w8", "w4", "w8u", "w4u", "affine"],
    "op_zoo_1d": ["float", "w8", "w4"],
}
CASES = [(m, c) for m in MAPPED for c in CONFIGS[m]]
INTEGER_KERNELS = {"QLinearConv", "QLinearMatMul", "QGemm", "MatMulInteger", "ConvInteger"}

# Quantized outputs: (max steps, fraction of elements within one step). Measured on these
# random-weight nets: most models exactly equal or within one step; resnet18 up to 3 steps on
# about a tenth of its outputs (20 requantizations in a row). Float outputs computed from
# quantized activations: relative to their largest magnitude.
TOLERANCE = (4.0, 0.80)
FLOAT_OUTPUT_OF_QUANTIZED = 0.1


@pytest.fixture(scope="session")
def onnx_entries(exported_dir):
    with open(os.path.join(exported_dir, "onnx_models.json")) as f:
        entries = json.load(f)
    return {(e["model"], e["config"]): e for e in entries}


@pytest.fixture(scope="session")
def weights_by_model(exported_dir):
    with open(os.path.join(exported_dir, "models.json")) as f:
        entries = json.load(f)
    return {(e["model"], e["config"]): e["weights"] for e in entries if e["weights"]}


def read_f32(directory, item):
    return np.fromfile(os.path.join(directory, item["file"]), np.float32).reshape(item["shape"])


def session(path, level, optimized_path=None):
    options = ort.SessionOptions()
    options.graph_optimization_level = level
    options.intra_op_num_threads = 1
    if optimized_path:
        options.optimized_model_filepath = optimized_path
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def run(entry, directory, path, level):
    s = session(path, level)
    feeds = {i.name: read_f32(directory, item) for i, item in zip(s.get_inputs(), entry["inputs"])}
    return s.run(None, feeds)


def steps_off(entry, directory, outputs):
    """Per output: (max |difference| in output-quantizer steps, fraction within one step) for
    quantized outputs; for float outputs the relative difference."""
    result = []
    for got, item, scale in zip(outputs, entry["outputs"], entry["output_scales"]):
        want = read_f32(directory, item)
        assert got.shape == want.shape
        diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
        if scale is None:
            result.append(("float", float(diff.max() / (np.abs(want).max() + 1e-12))))
        else:
            steps = diff / scale
            # One step, with room for the float rounding of (q - zero_point) * scale.
            result.append(("steps", float(steps.max()), float((steps <= 1.0 + 1e-4).mean())))
    return result


@pytest.mark.parametrize("key", CASES, ids=[f"{m}.{c}" for m, c in CASES])
def test_checker_and_shape_inference_accept(onnx_entries, key):
    entry = onnx_entries[key]
    assert "error" not in entry, entry.get("error")
    for path in (entry["file"], entry["float_bias_file"]):
        model = onnx.load(path)
        onnx.checker.check_model(model, full_check=True)
        inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
        assert inferred.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
        opsets = {o.domain: o.version for o in model.opset_import}
        assert opsets[""] == entry["opset"]


def check_outputs(entry, directory, outputs, quantized):
    for k, off in enumerate(steps_off(entry, directory, outputs)):
        if off[0] == "float":
            limit = FLOAT_OUTPUT_OF_QUANTIZED if quantized else 1e-5
            assert off[1] <= limit, f"output {k}: relative difference {off[1]}"
        else:
            assert off[1] <= TOLERANCE[0] + 1e-4, f"output {k}: {off[1]} steps off"
            assert off[2] >= TOLERANCE[1], f"output {k}: only {off[2]:.3f} within one step"


@pytest.mark.parametrize("key", CASES, ids=[f"{m}.{c}" for m, c in CASES])
def test_qdq_graph_as_written_matches_linquant(onnx_entries, exported_dir, key):
    entry = onnx_entries[key]
    outputs = run(entry, exported_dir, entry["float_bias_file"],
                  ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    check_outputs(entry, exported_dir, outputs, key[1] != "float")


STORAGE_FILE = {"int8": "file", "uint8": "uint8_file"}
KERNEL_CASES = [(m, c, s) for m, c in CASES for s in weight_storages()]


@pytest.mark.parametrize("key", KERNEL_CASES, ids=[f"{m}.{c}.{s}" for m, c, s in KERNEL_CASES])
def test_integer_kernels_match_linquant(onnx_entries, exported_dir, key):
    entry = onnx_entries[key[:2]]
    outputs = run(entry, exported_dir, entry[STORAGE_FILE[key[2]]],
                  ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED)
    check_outputs(entry, exported_dir, outputs, key[1] != "float")


@pytest.mark.parametrize("key", [(m, c) for m, c in CASES if c != "float"],
                         ids=[f"{m}.{c}" for m, c in CASES if c != "float"])
def test_every_activation_quantizer_is_a_quantize_linear(onnx_entries, key):
    entry = onnx_entries[key]
    model = onnx.load(entry["file"])
    initializers = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    quantize = {n.output[0]: n for n in model.graph.node if n.op_type == "QuantizeLinear"}
    assert entry["activation_quantizers"]
    for q in entry["activation_quantizers"]:
        node = quantize.get(q["value"] + "_quantized")
        if node is None:
            # A requantization with the parameters of its input reuses the input's integers.
            assert q["reuses_input"], q
            continue
        scale = initializers[node.input[1]]
        zero_point = initializers[node.input[2]]
        assert scale.dtype == np.float32 and scale == np.float32(q["scale"]), q
        assert int(zero_point) == q["zero_point"], q
        assert zero_point.dtype == (np.int8 if q["quant_min"] < 0 else np.uint8), q


def exported_weighted_ops(model):
    """Conv/Gemm/MatMul nodes whose weight input is a DequantizeLinear of an int8 initializer."""
    initializers = {i.name: i for i in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    count = 0
    for node in model.graph.node:
        if node.op_type not in ("Conv", "Gemm", "MatMul") or len(node.input) < 2:
            continue
        dq = producers.get(node.input[1])
        if dq is not None and dq.op_type == "DequantizeLinear" and dq.input[0] in initializers:
            count += initializers[dq.input[0]].data_type in (onnx.TensorProto.INT8,
                                                              onnx.TensorProto.UINT8)
    return count


@pytest.mark.parametrize("storage", ["int8", "uint8"])
@pytest.mark.parametrize("model_name", ["tutorial", "resnet18", "mobilenet_v2"])
def test_every_quantized_conv_and_linear_runs_an_integer_kernel(onnx_entries, tmp_path,
                                                                 model_name, storage):
    entry = onnx_entries[(model_name, "w8")]
    path = entry[STORAGE_FILE[storage]]
    optimized = tmp_path / "optimized.onnx"
    session(path, ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, str(optimized))
    ops = [n.op_type for n in onnx.load(str(optimized)).graph.node]
    integer = sum(op in INTEGER_KERNELS for op in ops)
    expected = exported_weighted_ops(onnx.load(path))
    assert expected > 0
    assert integer == expected, f"{integer} integer kernels for {expected} quantized ops: {ops}"
    assert not {"Conv", "Gemm", "FusedConv", "FusedGemm"} & set(ops), ops


@pytest.mark.parametrize("storage", ["int8", "uint8"])
@pytest.mark.parametrize("key", [(m, c) for m, c in CASES if c != "float"],
                         ids=[f"{m}.{c}" for m, c in CASES if c != "float"])
def test_integer_weights_give_back_the_finalized_weights(onnx_entries, weights_by_model,
                                                         exported_dir, key, storage):
    entry = onnx_entries[key]
    model = onnx.load(entry[STORAGE_FILE[storage]])
    if storage == "uint8":
        # No signed 8-bit weights remain: they moved to uint8 with their zero points.
        assert not [i.name for i in model.graph.initializer
                    if i.data_type == onnx.TensorProto.INT8 and i.name.endswith("_quantized")]
    initializers = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    weights = weights_by_model[key]
    assert weights
    for w in weights:
        want = read_f32(exported_dir, w)
        name = w["tensor"]
        if name + "_quantized" not in initializers:
            # Per-channel zero points that differ are written dequantized (integer kernels take
            # one zero point); the float initializer must be the weight itself.
            assert len(set(w["zero_point"])) > 1, f"{name}: no integer initializer"
            np.testing.assert_array_equal(initializers[name], want)
            continue
        q = initializers[name + "_quantized"].astype(np.int32)
        scale = initializers[name + "_scale"].astype(np.float32)
        zero_point = initializers[name + "_zero_point"].astype(np.int32)
        assert list(scale) == [np.float32(s) for s in w["scale"]] or scale.size == 1
        shape = [1] * q.ndim
        if w["axis"] >= 0:
            shape[w["axis"]] = -1
        got = (q - zero_point.reshape(shape)).astype(np.float32) * scale.reshape(shape)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("model_name", UNMAPPED)
def test_unmapped_ops_are_refused_by_name(onnx_entries, model_name):
    for config in ("float", "w8"):
        entry = onnx_entries[(model_name, config)]
        assert "has no ONNX mapping yet" in entry["error"]
        assert "op 'aten::" in entry["error"]
