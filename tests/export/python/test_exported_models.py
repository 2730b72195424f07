"""Packages written by linquant::coreml::save for real models (tests/export/coreml_save/
export_models.cpp: tutorial net, conv-bn-relu, resnet18, mobilenet_v2, the residual, sequence
and resample test nets; fp16
float, W8A8 iOS17/iOS18, W4 iOS18 and a few fp32 / iOS15 variants), checked without trusting
the writer:

- coremltools 9.0 loads every package (MLModel with skip_model_load, and the milproto loader
  that rebuilds the program and re-runs every op's type inference);
- an independent numpy evaluator (mil_numpy_evaluator.py) runs each program on the saved
  inputs and must reproduce the LibTorch output of the model it came from;
- the op sequences of conv-bn-relu and the tutorial net are coremltools' (reference 6.5);
- the integer weight payloads times their scales give back the finalized weights bit for bit.

The packages come from LINQUANT_EXPORTED_MODELS (ctest sets it after running export_models);
run by hand, the newest build's export_models is run into a temporary directory (conftest.py).
"""
import json
import os
import sys

import numpy as np
import pytest

from coremltools.proto import MIL_pb2

from mil_numpy_evaluator import MilProgram, decode_value
from package_reading import EXPECTED_VERSION, load_model, load_program, non_const_types


MODELS = ["tutorial", "conv_bn_relu", "resnet18", "mobilenet_v2", "residual", "op_zoo_2d",
          "op_zoo_1d", "sequence", "resample"]
BASE_VARIANTS = ["float_fp16_ios17", "w8a8_ios17", "w8a8_ios18", "w4_ios18"]
EXTRA_VARIANTS = {
    "tutorial": ["w8a8_ios17_fp32", "float_fp32_ios17", "float_fp16_ios15", "lsq_ios17"],
    "conv_bn_relu": ["w8a8_ios17_fp32", "float_fp32_ios17"],
    "resnet18": ["w8a8_ios17_fp32", "float_fp32_ios17", "lsq_ios17"],
    "op_zoo_2d": ["w8a8_ios18_fp32", "float_fp32_ios17"],
    "op_zoo_1d": ["w8a8_ios18_fp32", "float_fp32_ios17"],
}
# Unsigned weights (quint8, quint4) and the affine scheme, on two small nets.
UNSIGNED_AND_AFFINE = ["w8u_ios17_fp32", "w8u_ios18", "w4u_ios18_fp32", "affine_ios17_fp32",
                       "affine_ios18"]
for _model in ("conv_bn_relu", "op_zoo_2d"):
    EXTRA_VARIANTS[_model] = EXTRA_VARIANTS[_model] + UNSIGNED_AND_AFFINE
PACKAGES = [(m, v) for m in MODELS for v in BASE_VARIANTS + EXTRA_VARIANTS.get(m, [])]
QUANTIZED = [(m, v) for (m, v) in PACKAGES if not v.startswith("float")]

# Reference 6.5: nn.Sequential(conv, bn, relu), default config, iOS17.
CONV_BN_RELU_OPS = ["constexpr_affine_dequantize", "quantize", "dequantize", "conv", "relu",
                    "quantize", "dequantize"]
# The tutorial net: weights first; the flatten between two quantizers that share parameters
# runs on the integer tensor (quantize -> reshape -> dequantize) as coremltools' does;
# log_softmax is x - reduce_log_sum_exp(x) (coremltools: log(softmax(x)), which underflows in
# fp16).
TUTORIAL_OPS = ["constexpr_affine_dequantize", "constexpr_affine_dequantize", "quantize",
                "dequantize", "conv", "relu", "quantize", "dequantize", "max_pool", "quantize",
                "reshape", "dequantize", "linear", "reduce_log_sum_exp", "sub", "quantize",
                "dequantize"]

# Tolerances. Float programs: relative to the largest reference value. Quantized programs:
# in steps (LSB) of the quantizer that produced the output: tiny float differences (fp16
# arithmetic and scales, or just another summation order) move values across rounding
# boundaries, and in deep nets one moved value shifts many downstream ones by a step or two.
FLOAT_RTOL = {"fp32": 1e-5, "fp16": 5e-3}
MAX_LSB = {"fp32": 3.0, "fp16": 8.0}
MEAN_LSB = {"fp32": 1.0, "fp16": 2.0}


@pytest.fixture(scope="session")
def exported(exported_dir):
    with open(os.path.join(exported_dir, "models.json")) as f:
        entries = json.load(f)
    return exported_dir, {(e["model"], e["variant"]): e for e in entries}


@pytest.fixture
def entry(exported, request):
    _, entries = exported
    key = request.param
    assert key in entries, f"export_models wrote no {key}"
    return entries[key]


def read_f32(exported, item):
    directory, _ = exported
    return np.fromfile(os.path.join(directory, item["file"]), np.float32).reshape(item["shape"])


def by_output(program):
    return {op.outputs[0].name: op for op in program.block.operations}


@pytest.mark.parametrize("entry", PACKAGES, indirect=True, ids=lambda k: ".".join(k))
def test_package_loads_with_coremltools(entry):
    model = load_model(entry["package"])
    spec = model.get_spec()
    version, opset = EXPECTED_VERSION[entry["target"]]
    assert spec.specificationVersion == version
    function = spec.mlProgram.functions["main"]
    assert function.opset == opset

    # Re-runs type inference of every op; any inconsistency raises.
    spec, program = load_program(entry["package"])
    loaded = non_const_types(program.functions["main"].operations)
    assert loaded == non_const_types(function.block_specializations[opset].operations)

    # The model interface: fp16 for fp16 programs from iOS16 on, else fp32 (casts inside).
    fp16_io = entry["precision"] == "fp16" and entry["target"] not in ("iOS15",)
    array_type = 65552 if fp16_io else 65568
    for feature, item in zip(spec.description.input, entry["inputs"]):
        assert feature.type.multiArrayType.dataType == array_type
        assert list(feature.type.multiArrayType.shape) == item["shape"]
    for feature, item in zip(spec.description.output, entry["outputs"]):
        assert feature.type.multiArrayType.dataType == array_type
        assert list(feature.type.multiArrayType.shape) == item["shape"]
    assert len(spec.description.output) == len(entry["outputs"])


def _lsb(program, name):
    """The step of the quantizer a float output comes from: the scale of the nearest
    dequantize upstream (None for a float path)."""
    ops = by_output(program)
    todo, seen = [name], set()
    while todo:
        var = todo.pop(0)
        if var in seen or var not in ops:
            continue
        seen.add(var)
        op = ops[var]
        if op.type == "dequantize":
            scale_var = op.inputs["scale"].arguments[0].name
            return float(decode_value(ops[scale_var].attributes["val"], program.blobs))
        for argument in op.inputs.values():
            todo += [b.name for b in argument.arguments if b.WhichOneof("binding") == "name"]
    return None


@pytest.mark.parametrize("entry", PACKAGES, indirect=True, ids=lambda k: ".".join(k))
def test_numpy_evaluation_matches_libtorch(exported, entry, record_property):
    program = MilProgram(entry["package"])
    feeds = {name: read_f32(exported, item)
             for (name, _), item in zip(program.inputs, entry["inputs"])}
    outputs = program.run(feeds)
    assert len(outputs) == len(entry["outputs"])
    precision = entry["precision"]
    report = []
    for (name, got), item in zip(outputs.items(), entry["outputs"]):
        expected = read_f32(exported, item)
        got = got.astype(np.float32)
        assert got.shape == expected.shape
        assert np.isfinite(got).all(), f"{name}: non-finite values"
        error = np.abs(got - expected)
        step = _lsb(program, name) if entry["quantized"] else None
        if step is None:
            bound = FLOAT_RTOL[precision] * max(1.0, float(np.abs(expected).max()))
            report.append(f"{name}: max error {error.max():.3g} (bound {bound:.3g})")
            assert error.max() <= bound, report[-1]
        else:
            in_steps = error / step
            report.append(f"{name}: max error {error.max():.3g} = {in_steps.max():.2f} LSB, "
                          f"mean {in_steps.mean():.3f} LSB (LSB {step:.3g})")
            assert in_steps.max() <= MAX_LSB[precision], report[-1]
            assert in_steps.mean() <= MEAN_LSB[precision], report[-1]
    record_property("errors", "; ".join(report))
    print(f"{entry['model']}.{entry['variant']}: " + "; ".join(report))


@pytest.mark.parametrize("entry",
                         [("conv_bn_relu", "w8a8_ios17"), ("conv_bn_relu", "w8a8_ios17_fp32")],
                         indirect=True, ids=lambda k: ".".join(k))
def test_conv_bn_relu_program_is_coremltools(entry):
    program = MilProgram(entry["package"])
    assert program.op_types() == CONV_BN_RELU_OPS
    ops = [op for op in program.block.operations if op.type != "const"]
    outputs = by_output(program)
    quantize_in, quantize_out = ops[1], ops[5]
    # quint8 zero point 128 -> int8 without zero point; affine zero point 0 after relu -> uint8.
    assert quantize_in.outputs[0].type.tensorType.dataType == MIL_pb2.INT8
    assert quantize_out.outputs[0].type.tensorType.dataType == MIL_pb2.UINT8
    for op in ops:
        assert "zero_point" not in op.inputs
    dtype = outputs[quantize_in.inputs["output_dtype"].arguments[0].name]
    assert decode_value(dtype.attributes["val"], program.blobs) == "int8"
    conv = ops[3]
    pad_type = outputs[conv.inputs["pad_type"].arguments[0].name]
    assert decode_value(pad_type.attributes["val"], program.blobs) == "custom"
    weight = ops[0]
    assert weight.attributes["quantized_data"].type.tensorType.dataType == MIL_pb2.INT8
    assert weight.attributes["zero_point"].type.tensorType.dataType == MIL_pb2.INT8
    scale_type = MIL_pb2.FLOAT16 if entry["precision"] == "fp16" else MIL_pb2.FLOAT32
    assert weight.attributes["scale"].type.tensorType.dataType == scale_type


@pytest.mark.parametrize("entry", [("conv_bn_relu", "w8a8_ios18"), ("conv_bn_relu", "w4_ios18")],
                         indirect=True, ids=lambda k: ".".join(k))
def test_conv_bn_relu_ios18_uses_blockwise_shift_scale(entry):
    program = MilProgram(entry["package"])
    assert program.op_types() == ["constexpr_blockwise_shift_scale"] + CONV_BN_RELU_OPS[1:]
    assert program.opset == "CoreML8"
    weight = program.block.operations[0]
    data = weight.inputs["data"].arguments[0].value.type.tensorType
    scale = weight.inputs["scale"].arguments[0].value.type.tensorType
    want = MIL_pb2.INT4 if entry["config"] == "w4" else MIL_pb2.INT8
    assert data.dataType == want
    assert [d.constant.size for d in scale.dimensions] == [8, 1, 1, 1]
    assert "offset" not in weight.inputs  # symmetric: every zero point is 0


@pytest.mark.parametrize("entry", [("tutorial", "w8a8_ios17"), ("tutorial", "w8a8_ios17_fp32")],
                         indirect=True, ids=lambda k: ".".join(k))
def test_tutorial_program_is_coremltools(entry):
    program = MilProgram(entry["package"])
    assert program.op_types() == TUTORIAL_OPS
    reshape = [op for op in program.block.operations if op.type == "reshape"][0]
    assert reshape.outputs[0].type.tensorType.dataType == MIL_pb2.UINT8


@pytest.mark.parametrize("entry", [("tutorial", "w8a8_ios18"), ("tutorial", "w4_ios18")],
                         indirect=True, ids=lambda k: ".".join(k))
def test_tutorial_ios18_program(entry):
    program = MilProgram(entry["package"])
    assert program.op_types() == ["constexpr_blockwise_shift_scale"] * 2 + TUTORIAL_OPS[2:]


def _param_getter(op):
    """A constexpr parameter by name: an attribute up to iOS17, an input bound to a value from
    iOS18; None when absent."""
    def param(name):
        if name in op.attributes:
            return op.attributes[name]
        if name in op.inputs:
            return op.inputs[name].arguments[0].value
        return None
    return param


@pytest.mark.parametrize("entry", QUANTIZED, indirect=True, ids=lambda k: ".".join(k))
def test_integer_payload_times_scale_is_the_finalized_weight(exported, entry):
    program = MilProgram(entry["package"])
    ops = by_output(program)
    assert entry["weights"], "no quantized weights listed"
    fp16 = entry["precision"] == "fp16"
    kept = {}
    program.run({name: np.zeros(shape, np.float32) for name, (_, shape) in program.inputs},
                keep=kept)
    for weight in entry["weights"]:
        op = ops[weight["constexpr"]]
        expected = read_f32(exported, weight)
        param = _param_getter(op)
        scale = np.array(weight["scale"], np.float32)
        zero_point = np.array(weight["zero_point"], np.float32)
        axis = weight["axis"]
        shape = [1] * expected.ndim
        if axis >= 0:
            shape[axis] = scale.size
        if op.type == "constexpr_affine_dequantize":
            assert entry["target"] == "iOS17" and weight["bits"] == 8
            data = decode_value(param("quantized_data"), program.blobs)
            stored_zp = decode_value(param("zero_point"), program.blobs)
            assert stored_zp.dtype == data.dtype, "zero point has the data's type"
            stored_scale = decode_value(param("scale"), program.blobs)
            assert int(decode_value(param("axis"), program.blobs)) == max(axis, 0)
        else:
            assert op.type == "constexpr_blockwise_shift_scale" and entry["target"] == "iOS18"
            data = decode_value(param("data"), program.blobs)
            stored_scale = decode_value(param("scale"), program.blobs)
            assert stored_scale.ndim == data.ndim
            offset = param("offset")
            assert (offset is not None) == bool(np.any(zero_point != 0)), "offset iff a zp != 0"
            stored_zp = decode_value(offset, program.blobs) if offset is not None else \
                np.zeros(zero_point.shape, data.dtype)
            declared = param("data").type.tensorType.dataType
            if weight["bits"] == 4:
                assert declared in (MIL_pb2.INT4, MIL_pb2.UINT4), "4-bit weights stay 4-bit"
        assert data.dtype in (np.int8, np.uint8)
        assert np.array_equal(np.asarray(stored_zp, np.float32).reshape(-1), zero_point), \
            "stored zero points"
        # The payload on the finalized grid: (q - zp) * scale in float32 is the weight, exactly.
        rebuilt = (data.astype(np.float32) - zero_point.reshape(shape)) * scale.reshape(shape)
        assert rebuilt.shape == expected.shape
        assert np.array_equal(rebuilt, expected), \
            f"{weight['node']}: max deviation {np.abs(rebuilt - expected).max()}"
        # Stored scales are the finalized ones in the program's precision.
        want_scale = scale.astype(np.float16) if fp16 else scale
        assert np.array_equal(np.asarray(stored_scale).reshape(-1), want_scale.reshape(-1))
        # And the decompressed constant the program uses equals the weight (exactly for fp32).
        used = kept[weight["constexpr"]].astype(np.float32)
        if fp16:
            np.testing.assert_allclose(used, expected, rtol=2e-3, atol=1e-7)
        else:
            assert np.array_equal(used, expected)


@pytest.mark.parametrize("entry", QUANTIZED, indirect=True, ids=lambda k: ".".join(k))
def test_quantize_dequantize_pairs_are_consistent(entry):
    program = MilProgram(entry["package"])
    ops = by_output(program)

    def const(op, name):
        if name not in op.inputs:
            return None
        return decode_value(ops[op.inputs[name].arguments[0].name].attributes["val"], program.blobs)

    quantizes = [op for op in program.block.operations if op.type == "quantize"]
    assert quantizes
    for op in program.block.operations:
        if op.type != "dequantize":
            continue
        # Walk back through integer reshapes to the quantize that made the integers.
        source = ops[op.inputs["input"].arguments[0].name]
        while source.type == "reshape":
            source = ops[source.inputs["x"].arguments[0].name]
        assert source.type == "quantize", f"{op.outputs[0].name} dequantizes a {source.type}"
        assert const(op, "scale") == const(source, "scale")
        zp_q, zp_d = const(source, "zero_point"), const(op, "zero_point")
        assert (zp_q is None) == (zp_d is None)
        if zp_q is not None:
            assert zp_q == zp_d and zp_q != 0  # zero point 0 is always dropped
        dtype = source.outputs[0].type.tensorType.dataType
        assert dtype in (MIL_pb2.INT8, MIL_pb2.UINT8)


def test_summary(exported, capsys):
    """Op counts, package sizes and export times of every package (the numbers in the issue's
    closing note), written next to the packages as summary.md."""
    directory, entries = exported
    lines = ["| model | variant | ops (non-const) | consts | package bytes | export ms |",
             "|---|---|---|---|---|---|"]
    for (model, variant) in PACKAGES:
        e = entries[(model, variant)]
        program = MilProgram(e["package"])
        types = program.op_types(consts=True)
        lines.append(f"| {model} | {variant} | {len(types) - types.count('const')} | "
                     f"{types.count('const')} | {e['package_bytes']} | {e['export_ms']:.0f} |")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(directory, "summary.md"), "w") as f:
        f.write(text)
    with capsys.disabled():
        sys.stdout.write("\n" + text)
