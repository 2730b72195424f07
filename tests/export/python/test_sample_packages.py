"""The sample packages written by write_sample_packages, read back by coremltools 9.0 (model
spec, MIL program with type inference, blob reader, model package manifest) and by a plain
struct parser of the blob file."""
import json
import os
import re

import numpy as np
import pytest

from coremltools.converters.mil.mil import types
from coremltools.converters.mil.frontend.milproto.helper import proto_to_types
from coremltools.libmodelpackage import ModelPackage

from package_reading import (ALL_PACKAGES, CONV_SAMPLES, EXPECTED_OPS, EXPECTED_VERSION,
                             all_blob_values, load_model, load_program, main_block,
                             non_const_types, op_param_value, parse_blob_file, reader,
                             unpack_nibbles, weight_file)

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def fp_dtype(sample):
    return np.float16 if sample["precision"] == "fp16" else np.float32


@pytest.mark.parametrize("name", ALL_PACKAGES)
def test_model_spec_loads(samples, name):
    sample = samples[name]
    model = load_model(sample["path"])
    spec = model.get_spec()
    spec_version, opset = EXPECTED_VERSION[sample["target"]]
    assert spec.specificationVersion == spec_version
    assert spec.WhichOneof("Type") == "mlProgram"
    assert spec.mlProgram.version == 1
    assert list(spec.mlProgram.functions.keys()) == ["main"]
    function, _ = main_block(spec)
    assert function.opset == opset
    assert list(function.block_specializations.keys()) == [opset]

    array_type = {"fp16": 65552, "fp32": 65568}[sample["precision"]]
    (feature_in,) = spec.description.input
    (feature_out,) = spec.description.output
    assert feature_in.name == sample["input"]
    assert feature_out.name == sample["output"]
    assert feature_in.type.multiArrayType.dataType == array_type
    assert feature_out.type.multiArrayType.dataType == array_type
    if name == "float_linear":
        assert list(feature_in.type.multiArrayType.shape) == [3, 10]
        assert list(feature_out.type.multiArrayType.shape) == [3, 12]
    else:
        assert feature_in.name == "input_1"  # sanitized from "input.1"
        assert list(feature_in.type.multiArrayType.shape) == [1, 3, 8, 8]
        assert list(feature_out.type.multiArrayType.shape) == [1, 8, 8, 8]
    # The interface matches the function signature.
    assert [i.name for i in function.inputs] == [feature_in.name]

    metadata = model.user_defined_metadata
    assert "linquant.version" in metadata and metadata["linquant.version"]
    assert not any(k.startswith("com.github.apple.coremltools") for k in metadata)
    build_info = spec.mlProgram.attributes["buildInfo"]
    assert build_info.type.WhichOneof("type") == "dictionaryType"
    keys = {p.key.immediateValue.tensor.strings.values[0]
            for p in build_info.immediateValue.dictionary.values}
    assert "linquant-version" in keys


@pytest.mark.parametrize("name", ALL_PACKAGES)
def test_milproto_load_reruns_type_inference(samples, name):
    spec, program = load_program(samples[name]["path"])
    function = program.functions["main"]
    assert non_const_types(function.operations) == EXPECTED_OPS[name]
    _, block = main_block(spec)
    assert non_const_types(block.operations) == EXPECTED_OPS[name]

    # The loader checks ordinary ops' declared output types; check constexpr ops too, and that
    # every op carries a unique "name" attribute equal to its output.
    vars_by_name = {}
    for op in function.operations:
        for out in op.outputs:
            vars_by_name[out.name] = out
    names = []
    for op in block.operations:
        assert op.attributes["name"].immediateValue.tensor.strings.values[0] == op.outputs[0].name
        names.append(op.outputs[0].name)
        for out in op.outputs:
            declared = proto_to_types(out.type)
            assert types.is_compatible_type(vars_by_name[out.name].sym_type, declared), out.name
    assert len(names) == len(set(names))
    for identifier in names + [i.name for i in spec.description.input]:
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_@]*", identifier), identifier
    assert [v.name for v in function.outputs] == [samples[name]["output"]]


@pytest.mark.parametrize("name", CONV_SAMPLES)
def test_quantized_weight_payload_roundtrips(samples, name):
    sample = samples[name]
    spec, program = load_program(sample["path"])
    _, block = main_block(spec)
    constexpr = block.operations[0]
    int4 = constexpr.type == "constexpr_blockwise_shift_scale"
    data_value = op_param_value(constexpr, "data" if int4 else "quantized_data")
    tensor_type = data_value.type.tensorType
    assert list(d.constant.size for d in tensor_type.dimensions) == [8, 3, 3, 3]
    offset = data_value.blobFileValue.offset
    assert offset == 64  # the only blob: right after the header

    expected = np.array(sample["weight"], np.int8)
    if int4:
        assert tensor_type.dataType == 25  # INT4
        payload = reader(sample["path"]).read_int4_data(offset)
    else:
        assert tensor_type.dataType == 21  # INT8
        payload = reader(sample["path"]).read_int8_data(offset)
    np.testing.assert_array_equal(np.asarray(payload, np.int8), expected)

    # The loaded constexpr op decompresses to scale * (q - zero point) with the scales rounded
    # to the program precision exactly as numpy rounds them.
    dtype = fp_dtype(sample)
    scale = np.array(sample["weight_scale"], np.float32).astype(dtype)
    op = next(o for o in program.functions["main"].operations if o.op_type.startswith("constexpr_"))
    q = expected.reshape(8, 3, 3, 3).astype(np.float32)
    if int4:
        zero = np.array(sample["offset"], np.float32).reshape(8, 1, 1, 1)
        np.testing.assert_array_equal(op.scale.val.reshape(8), scale)
        np.testing.assert_array_equal(op.offset.val.reshape(8), np.array(sample["offset"]))
        assert op.offset.val.dtype == np.int8  # int4 offset: packed immediate bytes read back
    else:
        zero = np.zeros((8, 1, 1, 1), np.float32)
        np.testing.assert_array_equal(op.scale.val, scale)
        np.testing.assert_array_equal(op.zero_point.val, np.zeros(8, np.int8))
        assert op.axis.val == 0
    np.testing.assert_array_equal(op.quantized_data.val if not int4 else op.data.val,
                                  expected.reshape(8, 3, 3, 3))
    expected_weight = (scale.reshape(8, 1, 1, 1) * (q - zero).astype(dtype)).astype(dtype)
    np.testing.assert_array_equal(op.materialized_val_inference(), expected_weight)


@pytest.mark.parametrize("name", CONV_SAMPLES)
def test_activation_qparams_and_bias(samples, name):
    sample = samples[name]
    _, program = load_program(sample["path"])
    dtype = fp_dtype(sample)
    ops = [o for o in program.functions["main"].operations if o.op_type != "const"]
    q_in, dq_in, conv, _, q_out, dq_out = ops[1:]
    assert q_in.output_dtype.val == "int8" and q_in.zero_point is None
    assert q_out.output_dtype.val == "uint8"
    assert q_in.scale.val == np.float32(sample["in_scale"]).astype(dtype)
    assert dq_in.scale.val.dtype == dtype and q_out.scale.val.dtype == dtype
    assert dq_out.scale.val == np.float32(sample["out_scale"]).astype(dtype)
    if sample["out_zero_point"]:
        assert q_out.zero_point.val == sample["out_zero_point"]
        assert q_out.zero_point.val.dtype == np.uint8
        assert dq_out.zero_point.val == sample["out_zero_point"]
    else:
        assert q_out.zero_point is None and dq_out.zero_point is None
    np.testing.assert_array_equal(conv.bias.val, np.array(sample["bias"], np.float32).astype(dtype))
    assert conv.pad_type.val == "custom"
    np.testing.assert_array_equal(conv.pad.val, [1, 1, 1, 1])
    assert conv.groups.val == 1


@pytest.mark.parametrize("name", ALL_PACKAGES)
def test_weight_file_layout(samples, name):
    package = samples[name]["path"]
    spec, _ = load_program(package)
    parsed = parse_blob_file(weight_file(package))
    assert parsed["version"] == 2
    assert parsed["end"] == parsed["size"], "no bytes after the last payload"
    referenced = sorted({v.blobFileValue.offset for _, _, v in all_blob_values(spec)})
    assert parsed["count"] == len(referenced)
    assert [b["meta"] for b in parsed["blobs"]] == referenced
    for blob in parsed["blobs"]:
        assert blob["meta"] % 64 == 0
        assert blob["sentinel"] == 0xDEADBEEF
        assert blob["offset"] == blob["meta"] + 64
    if name == "ios17_fp16":
        # Same size coremltools writes for this model: 64 + 64 + 216.
        assert parsed["size"] == 344
        assert parsed["blobs"][0]["dtype"] == 4 and parsed["blobs"][0]["size"] == 216
    if name == "ios18_int4":
        assert parsed["blobs"][0]["dtype"] == 8  # Int4
        assert parsed["blobs"][0]["size"] == 108 and parsed["blobs"][0]["padding"] == 0
        np.testing.assert_array_equal(
            unpack_nibbles(parsed["blobs"][0]["payload"], 216, signed=True),
            samples[name]["weight"])


@pytest.mark.parametrize("name", ALL_PACKAGES)
def test_manifest_and_layout(samples, name):
    package = samples[name]["path"]
    assert package.endswith(".mlpackage")
    assert sorted(os.listdir(package)) == ["Data", "Manifest.json"]
    assert sorted(os.listdir(os.path.join(package, "Data"))) == ["com.apple.CoreML"]
    coreml = os.path.join(package, "Data", "com.apple.CoreML")
    assert sorted(os.listdir(coreml)) == ["model.mlmodel", "weights"]
    assert os.listdir(os.path.join(coreml, "weights")) == ["weight.bin"]
    # No temporary directories left next to the package.
    assert not [e for e in os.listdir(os.path.dirname(package)) if ".tmp-" in e or ".old-" in e]

    text = open(os.path.join(package, "Manifest.json")).read()
    manifest = json.loads(text)
    assert text.splitlines()[1].startswith('    "fileFormatVersion"'), "4-space indent"
    assert list(manifest.keys()) == sorted(manifest.keys())
    assert manifest["fileFormatVersion"] == "1.0.0"
    entries = manifest["itemInfoEntries"]
    assert len(entries) == 2
    by_name = {entry["name"]: (identifier, entry) for identifier, entry in entries.items()}
    model_id, model_entry = by_name["model.mlmodel"]
    weights_id, weights_entry = by_name["weights"]
    assert manifest["rootModelIdentifier"] == model_id
    assert model_entry == {"author": "com.apple.CoreML",
                           "description": "CoreML Model Specification",
                           "name": "model.mlmodel", "path": "com.apple.CoreML/model.mlmodel"}
    assert weights_entry == {"author": "com.apple.CoreML", "description": "CoreML Model Weights",
                             "name": "weights", "path": "com.apple.CoreML/weights"}
    assert UUID4.match(model_id) and UUID4.match(weights_id) and model_id != weights_id

    # Core ML's own package reader (libmodelpackage) accepts it.
    assert ModelPackage.isValid(package)
    opened = ModelPackage(package)
    assert opened.getRootModel().path().endswith("com.apple.CoreML/model.mlmodel")
    assert opened.findItemByNameAuthor("weights", "com.apple.CoreML").path().endswith(
        "com.apple.CoreML/weights")


def test_packages_get_fresh_identifiers(samples):
    ids = set()
    for name in ALL_PACKAGES:
        with open(os.path.join(samples[name]["path"], "Manifest.json")) as f:
            ids.update(json.load(f)["itemInfoEntries"].keys())
    assert len(ids) == 2 * len(ALL_PACKAGES)
