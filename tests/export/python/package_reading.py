"""Reading back what linquant wrote, through coremltools and through a struct-level parser of
the blob file that is independent of both linquant and coremltools."""
import os
import struct

import numpy as np

import coremltools as ct
from coremltools.converters.mil.frontend.milproto.load import load as load_milproto
from coremltools.libmilstoragepython import _BlobStorageReader

CONV_SAMPLES = ["ios17_fp16", "ios17_fp32", "ios18_int4"]
ALL_PACKAGES = CONV_SAMPLES + ["float_linear"]

EXPECTED_OPS = {
    "ios17_fp16": ["constexpr_affine_dequantize", "quantize", "dequantize", "conv", "relu",
                   "quantize", "dequantize"],
    "ios17_fp32": ["constexpr_affine_dequantize", "quantize", "dequantize", "conv", "relu",
                   "quantize", "dequantize"],
    "ios18_int4": ["constexpr_blockwise_shift_scale", "quantize", "dequantize", "conv", "relu",
                   "quantize", "dequantize"],
    "float_linear": ["linear", "relu"],
}
EXPECTED_VERSION = {"iOS15": (6, "CoreML5"), "iOS16": (7, "CoreML6"), "iOS17": (8, "CoreML7"),
                    "iOS18": (9, "CoreML8")}

COREML_DIR = os.path.join("Data", "com.apple.CoreML")


def weights_dir(package):
    return os.path.join(package, COREML_DIR, "weights")


def weight_file(package):
    return os.path.join(weights_dir(package), "weight.bin")


def load_model(package):
    return ct.models.MLModel(package, skip_model_load=True)


def load_program(package):
    spec = load_model(package).get_spec()
    return spec, load_milproto(spec, spec.specificationVersion, weights_dir(package))


def main_block(spec):
    function = spec.mlProgram.functions["main"]
    return function, function.block_specializations[function.opset]


def non_const_types(operations):
    """Op types without the consts, for protobuf ops (.type) and loaded PyMIL ops (.op_type)."""
    kinds = [getattr(op, "op_type", None) or op.type for op in operations]
    return [kind for kind in kinds if kind != "const"]


def blob_offsets(value_spec):
    """The metadata offsets of every blob a MILSpec.Value (or op) refers to."""
    if value_spec.WhichOneof("value") == "blobFileValue":
        assert value_spec.blobFileValue.fileName == "@model_path/weights/weight.bin"
        return [value_spec.blobFileValue.offset]
    return []


def all_blob_values(spec):
    """(op name, parameter, Value) of every value in the main block that lives in weight.bin."""
    _, block = main_block(spec)
    found = []
    for op in block.operations:
        for key, value in op.attributes.items():
            if value.WhichOneof("value") == "blobFileValue":
                found.append((op, key, value))
        for key, argument in op.inputs.items():
            for binding in argument.arguments:
                if binding.WhichOneof("binding") == "value" and \
                        binding.value.WhichOneof("value") == "blobFileValue":
                    found.append((op, key, binding.value))
    return found


def op_param_value(op, param):
    """A constexpr parameter: an attribute up to iOS17, an input bound to a value from iOS18."""
    if param in op.attributes:
        return op.attributes[param]
    (binding,) = op.inputs[param].arguments
    assert binding.WhichOneof("binding") == "value"
    return binding.value


def parse_blob_file(path):
    """Walks a MIL blob storage v2 file with nothing but struct: header, then metadata records
    at 64-byte-aligned offsets each followed by its payload."""
    data = open(path, "rb").read()
    count, version = struct.unpack_from("<II", data, 0)
    assert data[8:64] == bytes(56), "reserved header bytes must be zero"
    blobs = []
    position = 64
    for _ in range(count):
        meta = (position + 63) // 64 * 64
        assert data[position:meta] == bytes(meta - position), "alignment gap must be zero"
        sentinel, dtype, size, offset, padding = struct.unpack_from("<IIQQQ", data, meta)
        assert data[meta + 32:meta + 64] == bytes(32), "reserved metadata bytes must be zero"
        blobs.append({"meta": meta, "sentinel": sentinel, "dtype": dtype, "size": size,
                      "offset": offset, "padding": padding,
                      "payload": data[offset:offset + size]})
        position = offset + size
    return {"count": count, "version": version, "blobs": blobs, "end": position, "size": len(data)}


def unpack_nibbles(payload, count, signed):
    raw = np.frombuffer(payload, np.uint8)
    values = np.empty(raw.size * 2, np.int16)
    values[0::2] = raw & 0x0F
    values[1::2] = raw >> 4
    values = values[:count]
    if signed:
        values = np.where(values >= 8, values - 16, values)
    return values


def reader(package):
    return _BlobStorageReader(weight_file(package))
