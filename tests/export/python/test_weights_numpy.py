"""Independent checks of the weight bytes: sample (d) evaluated in numpy from weights read back
through coremltools' protobuf classes and blob reader, and a standalone blob file with one blob
of every type the writer supports."""
import numpy as np

from coremltools.libmilstoragepython import _BlobStorageReader

from package_reading import load_program, main_block, parse_blob_file, reader, unpack_nibbles


def _const_value_by_name(block, name):
    (op,) = [op for op in block.operations if op.type == "const" and op.outputs[0].name == name]
    return op.attributes["val"]


def _read_blob_tensor(package, value):
    tensor_type = value.type.tensorType
    shape = [d.constant.size for d in tensor_type.dimensions]
    assert tensor_type.dataType == 11  # FLOAT32
    assert value.WhichOneof("value") == "blobFileValue"
    data = reader(package).read_float_data(value.blobFileValue.offset)
    return np.asarray(data, np.float32).reshape(shape)


def test_float_linear_evaluates_like_the_writer_inputs(samples):
    sample = samples["float_linear"]
    package = sample["path"]
    spec, program = load_program(package)
    _, block = main_block(spec)
    (linear,) = [op for op in block.operations if op.type == "linear"]
    weight_name = linear.inputs["weight"].arguments[0].name
    bias_name = linear.inputs["bias"].arguments[0].name
    weight = _read_blob_tensor(package, _const_value_by_name(block, weight_name))
    bias = _read_blob_tensor(package, _const_value_by_name(block, bias_name))
    assert weight.shape == (12, 10) and bias.shape == (12,)

    x = np.array(sample["x"], np.float32).reshape(3, 10)
    given_weight = np.array(sample["weight"], np.float32).reshape(12, 10)
    given_bias = np.array(sample["bias"], np.float32)
    from_package = np.maximum(x @ weight.T + bias, 0)
    from_writer_inputs = np.maximum(x @ given_weight.T + given_bias, 0)
    np.testing.assert_array_equal(from_package, from_writer_inputs)
    assert (from_package > 0).any() and (from_package == 0).any()  # relu did something

    # The loaded PyMIL program holds the same constants.
    ops = {op.op_type: op for op in program.functions["main"].operations}
    np.testing.assert_array_equal(ops["linear"].weight.val, given_weight)
    np.testing.assert_array_equal(ops["linear"].bias.val, given_bias)


def test_standalone_blob_file_reads_back(samples):
    blob_file = samples["blob_file"]
    path = blob_file["path"]
    blobs = blob_file["blobs"]
    parsed = parse_blob_file(path)
    assert parsed["version"] == 2
    assert parsed["count"] == blob_file["count"] == 7  # the repeated int8 blob is stored once
    assert parsed["end"] == parsed["size"]
    assert blobs["int8_again"]["offset"] == blobs["int8"]["offset"]
    metas = [b["meta"] for b in parsed["blobs"]]
    assert all(m % 64 == 0 for m in metas)
    assert sorted({b["offset"] for b in blobs.values()}) == metas

    storage = _BlobStorageReader(path)
    fp16 = storage.read_fp16_data(blobs["fp16"]["offset"])
    np.testing.assert_array_equal(np.asarray(fp16, np.uint16), blobs["fp16"]["values"])
    np.testing.assert_array_equal(storage.read_float_data(blobs["fp32"]["offset"]),
                                  np.array(blobs["fp32"]["values"], np.float32))
    np.testing.assert_array_equal(storage.read_uint8_data(blobs["uint8"]["offset"]),
                                  blobs["uint8"]["values"])
    np.testing.assert_array_equal(storage.read_int8_data(blobs["int8"]["offset"]),
                                  blobs["int8"]["values"])
    for key, signed in [("int4_odd", True), ("int4_even", True), ("uint4_odd", False)]:
        read = storage.read_int4_data if signed else storage.read_uint4_data
        np.testing.assert_array_equal(np.asarray(read(blobs[key]["offset"]), np.int16),
                                      blobs[key]["values"], err_msg=key)

    by_meta = {b["meta"]: b for b in parsed["blobs"]}
    codes = {"fp16": 1, "fp32": 2, "uint8": 3, "int8": 4, "int4_odd": 8, "int4_even": 8,
             "uint4_odd": 11}
    for key, code in codes.items():
        blob = by_meta[blobs[key]["offset"]]
        assert blob["dtype"] == code, key
        count = len(blobs[key]["values"])
        if code in (8, 11):
            assert blob["size"] == (count + 1) // 2
            assert blob["padding"] == (4 if count % 2 else 0)
            np.testing.assert_array_equal(unpack_nibbles(blob["payload"], count, code == 8),
                                          blobs[key]["values"])
        else:
            assert blob["padding"] == 0
    # int4 [1, -2, 3, -8, 7]: bytes 0xE1, 0x83, 0x07 (low nibble first), 4 padding bits.
    assert by_meta[blobs["int4_odd"]["offset"]]["payload"] == bytes([0xE1, 0x83, 0x07])
