"""An ML Program interpreter in numpy that trusts nothing linquant wrote.

It parses Data/com.apple.CoreML/model.mlmodel with coremltools' generated protobuf classes,
reads weights/weight.bin with struct (header, 0xDEADBEEF metadata records, payloads), and runs
the main block op by op from the MIL op definitions (coremltools' mil/ops/defs docstrings):
no linquant code and no coremltools op implementation is used. Every value is kept in its
declared MIL dtype, so fp16 programs round after every op as fp16 hardware would; arithmetic
itself runs in float32. Every op's result is checked against the type the program declares.
"""
import math
import os
import struct

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from coremltools.proto import MIL_pb2, Model_pb2

MODEL_FILE = os.path.join("Data", "com.apple.CoreML", "model.mlmodel")
WEIGHT_FILE = os.path.join("Data", "com.apple.CoreML", "weights", "weight.bin")
WEIGHT_REFERENCE = "@model_path/weights/weight.bin"

NUMPY_DTYPE = {
    MIL_pb2.BOOL: np.bool_, MIL_pb2.FLOAT16: np.float16, MIL_pb2.FLOAT32: np.float32,
    MIL_pb2.FLOAT64: np.float64, MIL_pb2.INT4: np.int8, MIL_pb2.INT8: np.int8,
    MIL_pb2.INT16: np.int16, MIL_pb2.INT32: np.int32, MIL_pb2.INT64: np.int64,
    MIL_pb2.UINT4: np.uint8, MIL_pb2.UINT8: np.uint8, MIL_pb2.UINT16: np.uint16,
    MIL_pb2.UINT32: np.uint32, MIL_pb2.UINT64: np.uint64,
}
# MILBlob BlobDataType codes -> MIL dtypes.
BLOB_DTYPE = {1: MIL_pb2.FLOAT16, 2: MIL_pb2.FLOAT32, 3: MIL_pb2.UINT8, 4: MIL_pb2.INT8,
              6: MIL_pb2.INT16, 7: MIL_pb2.UINT16, 8: MIL_pb2.INT4, 11: MIL_pb2.UINT4,
              14: MIL_pb2.INT32, 15: MIL_pb2.UINT32}
STRING_DTYPE = {"fp16": np.float16, "fp32": np.float32, "int32": np.int32, "int8": np.int8,
                "uint8": np.uint8, "bool": np.bool_}


def tensor_type(value_type):
    t = value_type.tensorType
    shape = tuple(int(d.constant.size) for d in t.dimensions)
    assert len(shape) == t.rank, "rank and dimensions disagree"
    return t.dataType, shape


def unpack_sub_byte(raw, count, signed):
    """4-bit elements, element i in the low nibble of byte i // 2 when i is even."""
    data = np.frombuffer(raw, np.uint8)
    assert data.size == (count + 1) // 2, "packed int4 size"
    values = np.empty(data.size * 2, np.int16)
    values[0::2] = data & 0x0F
    values[1::2] = data >> 4
    values = values[:count]
    if signed:
        values = np.where(values >= 8, values - 16, values)
        return values.astype(np.int8)
    return values.astype(np.uint8)


def decode_raw(raw, dtype, count):
    if dtype in (MIL_pb2.INT4, MIL_pb2.UINT4):
        return unpack_sub_byte(raw, count, dtype == MIL_pb2.INT4)
    array = np.frombuffer(raw, NUMPY_DTYPE[dtype])
    assert array.size == count, f"{array.size} elements stored, {count} declared"
    return array


class BlobFile:
    """weight.bin, storage format version 2, parsed with struct."""

    def __init__(self, path):
        self.data = open(path, "rb").read() if os.path.exists(path) else b""
        if self.data:
            count, version = struct.unpack_from("<II", self.data, 0)
            assert version == 2, f"blob storage version {version}"
            self.count = count

    def read(self, offset):
        assert offset % 64 == 0, "blob metadata must be 64-byte aligned"
        sentinel, code, size, data_offset, padding = struct.unpack_from("<IIQQQ", self.data, offset)
        assert sentinel == 0xDEADBEEF, f"bad sentinel at {offset}"
        assert data_offset == offset + 64, "payload must follow its metadata"
        assert data_offset + size <= len(self.data), "payload beyond the end of weight.bin"
        return code, self.data[data_offset:data_offset + size], padding


def decode_value(value, blobs):
    dtype, shape = tensor_type(value.type)
    count = int(np.prod(shape)) if shape else 1
    kind = value.WhichOneof("value")
    if kind == "immediateValue":
        tensor = value.immediateValue.tensor
        which = tensor.WhichOneof("value")
        if which == "strings":
            strings = list(tensor.strings.values)
            return strings[0] if shape == () else strings
        if which == "bytes":
            array = decode_raw(tensor.bytes.values, dtype, count)
        else:
            source = {"floats": (tensor.floats.values, np.float32),
                      "ints": (tensor.ints.values, np.int64),
                      "longInts": (tensor.longInts.values, np.int64),
                      "doubles": (tensor.doubles.values, np.float64),
                      "bools": (tensor.bools.values, np.bool_)}[which]
            array = np.array(source[0], source[1])
            if which == "floats":
                assert dtype == MIL_pb2.FLOAT32, "floats hold fp32 only"
            array = array.astype(NUMPY_DTYPE[dtype])
    elif kind == "blobFileValue":
        assert value.blobFileValue.fileName == WEIGHT_REFERENCE
        code, payload, padding = blobs.read(value.blobFileValue.offset)
        assert BLOB_DTYPE[code] == dtype, f"blob type {code} declared as {dtype}"
        if dtype in (MIL_pb2.INT4, MIL_pb2.UINT4):
            assert padding == (4 if count % 2 else 0), "sub-byte padding bits"
        array = decode_raw(payload, dtype, count)
    else:
        raise AssertionError(f"value without content: {kind}")
    assert array.size == count, "element count"
    return array.reshape(shape)


# ---------------------------------------------------------------------------------------------
# Ops. Each takes the op's parameters (numpy arrays, strings, or lists for concat's values) and
# returns the result before it is cast to the declared output dtype.

def f32(x):
    return np.asarray(x).astype(np.float32)


def ints(x):
    return [int(v) for v in np.asarray(x).reshape(-1)]


def flag(p, key, default=False):
    return bool(p[key]) if key in p else default


def spatial_pads(p, x, kernel, strides, dilations):
    nd = x.ndim - 2
    pad_type = p.get("pad_type", "valid")
    if pad_type == "custom":
        return ints(p["pad"])
    if pad_type == "valid":
        return [0] * (2 * nd)
    if pad_type == "same":
        pads = []
        for size, k, s, d in zip(x.shape[2:], kernel, strides, dilations):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads += [total // 2, total - total // 2]
        return pads
    raise NotImplementedError(f"pad_type {pad_type}")


def pad_spatial(x, pads, value):
    nd = x.ndim - 2
    widths = [(0, 0), (0, 0)] + [(pads[2 * i], pads[2 * i + 1]) for i in range(nd)]
    return np.pad(x, widths, constant_values=value)


def windows(x, kernel, strides, dilations):
    """[N, C, *out, *kernel] views of a padded input."""
    nd = x.ndim - 2
    extent = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    view = sliding_window_view(x, extent, axis=tuple(range(2, 2 + nd)))
    index = (slice(None), slice(None)) + tuple(slice(None, None, s) for s in strides) + \
        tuple(slice(None, None, d) for d in dilations)
    return view[index]


def op_conv(p):
    x, w = f32(p["x"]), f32(p["weight"])
    nd = x.ndim - 2
    strides = ints(p["strides"]) if "strides" in p else [1] * nd
    dilations = ints(p["dilations"]) if "dilations" in p else [1] * nd
    groups = int(p.get("groups", 1))
    kernel = list(w.shape[2:])
    win = windows(pad_spatial(x, spatial_pads(p, x, kernel, strides, dilations), 0.0),
                  kernel, strides, dilations)
    n, c_in = x.shape[:2]
    c_out = w.shape[0]
    assert c_in == w.shape[1] * groups, "conv: input channels vs weight"
    out = win.shape[2:2 + nd]
    win = win.reshape((n, groups, c_in // groups) + out + tuple(kernel))
    wg = w.reshape((groups, c_out // groups, c_in // groups) + tuple(kernel))
    s, k = "hwd"[:nd], "ijk"[:nd]
    y = np.einsum(f"ngc{s}{k},goc{k}->ngo{s}", win, wg, optimize=True).reshape((n, c_out) + out)
    if "bias" in p:
        y = y + f32(p["bias"]).reshape((1, c_out) + (1,) * nd)
    return y


def op_conv_transpose(p):
    x, w = f32(p["x"]), f32(p["weight"])
    nd = x.ndim - 2
    strides = ints(p["strides"]) if "strides" in p else [1] * nd
    dilations = ints(p["dilations"]) if "dilations" in p else [1] * nd
    groups = int(p.get("groups", 1))
    if "output_shape" in p:
        raise NotImplementedError("conv_transpose output_shape")
    pad_type = p.get("pad_type", "valid")
    pads = ints(p["pad"]) if pad_type == "custom" else [0] * (2 * nd)
    if pad_type not in ("custom", "valid"):
        raise NotImplementedError(f"conv_transpose pad_type {pad_type}")
    n, c_in = x.shape[:2]
    kernel = w.shape[2:]
    c_out = w.shape[1] * groups
    full = [(size - 1) * s + (k - 1) * d + 1
            for size, k, s, d in zip(x.shape[2:], kernel, strides, dilations)]
    y = np.zeros((n, c_out) + tuple(full), np.float32)
    xg = x.reshape((n, groups, c_in // groups) + x.shape[2:])
    wg = w.reshape((groups, c_in // groups, c_out // groups) + tuple(kernel))
    for position in np.ndindex(*kernel):
        part = np.einsum("ngc...,gco->ngo...", xg, wg[(slice(None),) * 3 + position])
        part = part.reshape((n, c_out) + x.shape[2:])
        target = tuple(slice(k * d, k * d + (size - 1) * s + 1, s)
                       for k, d, size, s in zip(position, dilations, x.shape[2:], strides))
        y[(slice(None), slice(None)) + target] += part
    crop = tuple(slice(pads[2 * i], full[i] - pads[2 * i + 1]) for i in range(nd))
    y = y[(slice(None), slice(None)) + crop]
    if "bias" in p:
        y = y + f32(p["bias"]).reshape((1, c_out) + (1,) * nd)
    return y


def pool(p, reduce):
    x = f32(p["x"])
    nd = x.ndim - 2
    kernel = ints(p["kernel_sizes"])
    strides = ints(p["strides"]) if "strides" in p else [1] * nd
    if flag(p, "ceil_mode"):
        raise NotImplementedError("ceil_mode pooling")
    pads = spatial_pads(p, x, kernel, strides, [1] * nd)
    axes = tuple(range(-nd, 0))
    if reduce == "max":
        return windows(pad_spatial(x, pads, -np.inf), kernel, strides, [1] * nd).max(axis=axes)
    sums = windows(pad_spatial(x, pads, 0.0), kernel, strides, [1] * nd).sum(axis=axes)
    if flag(p, "exclude_padding_from_average"):
        ones = np.ones((1, 1) + x.shape[2:], np.float32)
        counts = windows(pad_spatial(ones, pads, 0.0), kernel, strides, [1] * nd).sum(axis=axes)
        return sums / counts
    return sums / float(np.prod(kernel))


def reduce(p, fn):
    x = f32(p["x"])
    axes = tuple(ints(p["axes"])) if "axes" in p else tuple(range(x.ndim))
    return fn(x, axes, flag(p, "keep_dims"))


def log_sum_exp(x, axes, keep):
    top = np.max(x, axis=axes, keepdims=True)
    y = np.log(np.sum(np.exp(x - top), axis=axes, keepdims=True)) + top
    return y if keep else np.squeeze(y, axis=axes)


def softmax(p):
    x = f32(p["x"])
    axis = int(p.get("axis", -1))
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def per_axis(param, rank, axis):
    """A rank-0 or rank-1 quantization parameter, shaped to broadcast along `axis`."""
    param = np.asarray(param)
    if param.ndim == 0:
        return param
    shape = [1] * rank
    shape[axis] = param.size
    return param.reshape(shape)


def op_quantize(p):
    x = f32(p["input"])
    axis = int(p["axis"]) if "axis" in p else None
    scale = per_axis(f32(p["scale"]), x.ndim, axis) if axis is not None else f32(p["scale"])
    zero_point = p.get("zero_point")
    dtype = STRING_DTYPE[p["output_dtype"]]
    if zero_point is not None:
        assert zero_point.dtype == dtype, "quantize: zero point dtype must equal output_dtype"
        zero_point = f32(per_axis(zero_point, x.ndim, axis) if axis is not None else zero_point)
    else:
        zero_point = np.float32(0)
    info = np.iinfo(dtype)
    q = np.round(x / scale) + zero_point  # np.round: half to even
    return np.clip(q, info.min, info.max).astype(dtype)


def op_dequantize(p):
    q = p["input"]
    assert q.dtype in (np.int8, np.uint8), "dequantize input must be int8/uint8"
    axis = int(p["axis"]) if "axis" in p else None
    scale = f32(p["scale"])
    zero_point = f32(p["zero_point"]) if "zero_point" in p else np.float32(0)
    if axis is not None:
        scale, zero_point = per_axis(scale, q.ndim, axis), per_axis(zero_point, q.ndim, axis)
    return (f32(q) - zero_point) * scale


def op_affine_dequantize(p):
    data = p["quantized_data"]
    axis = int(p["axis"])
    zero_point = per_axis(f32(p["zero_point"]), data.ndim, axis)
    scale = per_axis(f32(p["scale"]), data.ndim, axis)
    return (f32(data) - zero_point) * scale


def op_blockwise_shift_scale(p):
    data = f32(p["data"])
    scale = f32(p["scale"])
    offset = f32(p["offset"]) if "offset" in p else None
    assert scale.ndim == data.ndim, "scale must have the data's rank"
    for axis, (size, blocks) in enumerate(zip(data.shape, scale.shape)):
        assert size % blocks == 0, "block size must divide the data"
        scale = np.repeat(scale, size // blocks, axis)
        if offset is not None:
            offset = np.repeat(offset, size // blocks, axis)
    return (data - offset) * scale if offset is not None else data * scale


def op_layer_norm(p):
    x = f32(p["x"])
    axes = tuple(a % x.ndim for a in ints(p["axes"])) if "axes" in p else tuple(range(x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(var + f32(p.get("epsilon", 1e-5)))
    shape = [x.shape[i] if i in axes else 1 for i in range(x.ndim)]
    if "gamma" in p:
        y = y * f32(p["gamma"]).reshape(shape)
    if "beta" in p:
        y = y + f32(p["beta"]).reshape(shape)
    return y


def op_batch_norm(p):
    x = f32(p["x"])
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    y = (x - f32(p["mean"]).reshape(shape)) / np.sqrt(
        f32(p["variance"]).reshape(shape) + f32(p.get("epsilon", 1e-5)))
    if "gamma" in p:
        y = y * f32(p["gamma"]).reshape(shape)
    if "beta" in p:
        y = y + f32(p["beta"]).reshape(shape)
    return y


def op_matmul(p):
    x, y = f32(p["x"]), f32(p["y"])
    if flag(p, "transpose_x"):
        x = np.swapaxes(x, -1, -2)
    if flag(p, "transpose_y"):
        y = np.swapaxes(y, -1, -2)
    return np.matmul(x, y)


def op_linear(p):
    y = np.matmul(f32(p["x"]), f32(p["weight"]).T)
    return y + f32(p["bias"]) if "bias" in p else y


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


_erf = np.vectorize(math.erf, otypes=[np.float64])


def op_gelu(p):
    x = f32(p["x"])
    mode = p.get("mode", "EXACT")
    if mode == "EXACT":
        return 0.5 * x * (1.0 + _erf(x.astype(np.float64) / math.sqrt(2.0)))
    if mode == "TANH_APPROXIMATION":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    return x * sigmoid(1.702 * x)


def op_concat(p):
    assert not flag(p, "interleave"), "interleaved concat"
    return np.concatenate([f32(v) for v in p["values"]], axis=int(p["axis"]))


def op_reshape(p):
    shape = ints(p["shape"])
    assert all(s > 0 for s in shape), "linquant writes explicit reshape sizes"
    return np.asarray(p["x"]).reshape(shape)


OPS = {
    "quantize": op_quantize,
    "dequantize": op_dequantize,
    "constexpr_affine_dequantize": op_affine_dequantize,
    "constexpr_blockwise_shift_scale": op_blockwise_shift_scale,
    "conv": op_conv,
    "conv_transpose": op_conv_transpose,
    "linear": op_linear,
    "matmul": op_matmul,
    "relu": lambda p: np.maximum(f32(p["x"]), 0.0),
    "clip": lambda p: np.clip(f32(p["x"]), f32(p["alpha"]), f32(p["beta"])),
    "leaky_relu": lambda p: np.where(f32(p["x"]) >= 0, f32(p["x"]), f32(p["alpha"]) * f32(p["x"])),
    "elu": lambda p: np.where(f32(p["x"]) > 0, f32(p["x"]),
                              f32(p["alpha"]) * (np.exp(f32(p["x"])) - 1.0)),
    "sigmoid": lambda p: sigmoid(f32(p["x"])),
    "sigmoid_hard": lambda p: np.clip(f32(p["alpha"]) * f32(p["x"]) + f32(p["beta"]), 0.0, 1.0),
    "thresholded_relu": lambda p: np.where(f32(p["x"]) >= f32(p["alpha"]), f32(p["x"]), 0.0),
    "tanh": lambda p: np.tanh(f32(p["x"])),
    "silu": lambda p: f32(p["x"]) * sigmoid(f32(p["x"])),
    "gelu": op_gelu,
    "softmax": softmax,
    "log": lambda p: np.log(f32(p["x"])),
    "reduce_mean": lambda p: reduce(p, lambda x, a, k: x.mean(axis=a, keepdims=k)),
    "reduce_log_sum_exp": lambda p: reduce(p, log_sum_exp),
    "max_pool": lambda p: pool(p, "max"),
    "avg_pool": lambda p: pool(p, "avg"),
    "add": lambda p: f32(p["x"]) + f32(p["y"]),
    "sub": lambda p: f32(p["x"]) - f32(p["y"]),
    "mul": lambda p: f32(p["x"]) * f32(p["y"]),
    "real_div": lambda p: f32(p["x"]) / f32(p["y"]),
    "reshape": op_reshape,
    "transpose": lambda p: np.transpose(np.asarray(p["x"]), ints(p["perm"])),
    "concat": op_concat,
    "layer_norm": op_layer_norm,
    "batch_norm": op_batch_norm,
    "identity": lambda p: np.asarray(p["x"]),
    "cast": lambda p: np.asarray(p["x"]).astype(STRING_DTYPE[p["dtype"]]),
}

VARIADIC = {("concat", "values")}


class MilProgram:
    def __init__(self, package):
        self.model = Model_pb2.Model()
        with open(os.path.join(package, MODEL_FILE), "rb") as f:
            self.model.ParseFromString(f.read())
        function = self.model.mlProgram.functions["main"]
        self.opset = function.opset
        self.block = function.block_specializations[function.opset]
        self.inputs = [(value.name, tensor_type(value.type)) for value in function.inputs]
        self.blobs = BlobFile(os.path.join(package, WEIGHT_FILE))

    def op_types(self, consts=False):
        return [op.type for op in self.block.operations if consts or op.type != "const"]

    def params(self, op, env):
        params = {}
        for key, value in op.attributes.items():
            if key != "name":
                params[key] = decode_value(value, self.blobs)
        for key, argument in op.inputs.items():
            values = []
            for binding in argument.arguments:
                if binding.WhichOneof("binding") == "name":
                    values.append(env[binding.name])
                else:
                    values.append(decode_value(binding.value, self.blobs))
            variadic = (op.type, key) in VARIADIC
            assert variadic or len(values) == 1, f"{op.type}.{key} is not variadic"
            params[key] = values if variadic else values[0]
        return params

    def run(self, feeds, keep=None):
        """feeds: input name -> array. Returns output name -> array (in the declared dtype);
        `keep` (a dict) also receives every variable by name."""
        env = {}
        for name, (dtype, shape) in self.inputs:
            array = np.asarray(feeds[name])
            assert array.shape == shape, f"input {name}: {array.shape} vs {shape}"
            env[name] = array.astype(NUMPY_DTYPE[dtype])
        for op in self.block.operations:
            if op.type == "const":
                result = decode_value(op.attributes["val"], self.blobs)
            else:
                if op.type not in OPS:
                    raise NotImplementedError(f"numpy evaluator has no op {op.type}")
                result = OPS[op.type](self.params(op, env))
            assert len(op.outputs) == 1
            output = op.outputs[0]
            dtype, shape = tensor_type(output.type)
            if isinstance(result, (str, list)):
                assert dtype == MIL_pb2.STRING, f"{output.name}: string value declared {dtype}"
                env[output.name] = result
                continue
            result = np.asarray(result)
            assert result.shape == shape, \
                f"{op.type} {output.name}: computed shape {result.shape}, declared {shape}"
            want = NUMPY_DTYPE[dtype]
            if np.issubdtype(want, np.floating):
                assert np.issubdtype(result.dtype, np.floating), f"{output.name}: float declared"
                result = result.astype(want)
            else:
                assert result.dtype == want, f"{output.name}: {result.dtype} vs declared {want}"
            env[output.name] = result
        if keep is not None:
            keep.update(env)
        return {name: env[name] for name in self.block.outputs}
