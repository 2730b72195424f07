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
# MIL dtype strings (cast's dtype, quantize's output_dtype, topk's output_indices_dtype...).
STRING_DTYPE = {"fp16": np.float16, "fp32": np.float32, "int32": np.int32, "int16": np.int16,
                "uint16": np.uint16, "int8": np.int8, "uint8": np.uint8, "bool": np.bool_}
# Opset name (function.opset) -> iOS version; ops in OPSET_AWARE get it as the "_ios" parameter.
OPSET_IOS = {"CoreML5": 15, "CoreML6": 16, "CoreML7": 17, "CoreML8": 18}


def ios_version(opset):
    if opset in OPSET_IOS:
        return OPSET_IOS[opset]
    assert opset.startswith("CoreML") and opset[6:].isdigit(), f"unknown opset {opset}"
    return int(opset[6:]) + 10


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
# Ops. Each takes the op's parameters (numpy arrays, strings, or lists for the VARIADIC inputs)
# and returns the result before it is cast to the declared output dtype: one array, or a tuple
# of arrays for ops with several outputs (split, topk, rnn, gru, lstm). Float math runs in
# float32; integer and bool results must already have the declared dtype (comparisons give bool,
# reduce_argmax int32...). Names, defaults and semantics follow the iOS15-iOS17 op definitions.

def f32(x):
    return np.asarray(x).astype(np.float32)


def num(x):
    """Float tensors in float32; integer and bool tensors keep their dtype."""
    x = np.asarray(x)
    return x.astype(np.float32) if np.issubdtype(x.dtype, np.floating) else x


def norm_axis(axis, rank):
    axis = int(axis)
    assert -rank <= axis < rank, f"axis {axis} out of range for rank {rank}"
    return axis + rank if axis < 0 else axis


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
    if pad_type in ("same", "same_lower"):
        pads = []
        for size, k, s, d in zip(x.shape[2:], kernel, strides, dilations):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            small, large = total // 2, total - total // 2
            pads += [small, large] if pad_type == "same" else [large, small]
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


def ceil_mode_sizes(x, kernel, strides, pads):
    """Output sizes of a ceil_mode pool (MIL: ceil instead of floor, minus one when the last
    window would start in the right padding)."""
    sizes = []
    for i, (size, k, s) in enumerate(zip(x.shape[2:], kernel, strides)):
        before, after = pads[2 * i], pads[2 * i + 1]
        assert before == after, "ceil_mode pooling needs symmetric padding"
        out = -(-(size + before + after - k) // s) + 1
        if (out - 1) * s >= size + before and before + after > 0:
            out -= 1
        sizes.append(out)
    return sizes


def pool(p, kind):
    x = f32(p["x"])
    nd = x.ndim - 2
    kernel = ints(p["kernel_sizes"])
    strides = ints(p["strides"]) if "strides" in p else [1] * nd
    pads = spatial_pads(p, x, kernel, strides, [1] * nd)
    if flag(p, "ceil_mode"):
        assert p.get("pad_type", "valid") in ("valid", "custom"), "ceil_mode needs valid/custom"
        out = ceil_mode_sizes(x, kernel, strides, pads)
    else:
        out = [(size + pads[2 * i] + pads[2 * i + 1] - k) // s + 1
               for i, (size, k, s) in enumerate(zip(x.shape[2:], kernel, strides))]
    # Windows running past the right padding (ceil_mode) see extra cells that count for nothing.
    extra = [max(0, (o - 1) * s + k - (size + pads[2 * i] + pads[2 * i + 1]))
             for i, (o, size, k, s) in enumerate(zip(out, x.shape[2:], kernel, strides))]
    padded = [pads[2 * i + j] + (extra[i] if j else 0) for i in range(nd) for j in (0, 1)]
    axes = tuple(range(-nd, 0))
    crop = (slice(None), slice(None)) + tuple(slice(0, o) for o in out)

    def view(array, value):
        return windows(pad_spatial(array, padded, value), kernel, strides, [1] * nd)[crop]

    if kind == "max":
        return view(x, -np.inf).max(axis=axes)
    if kind == "l2":
        return np.sqrt(view(x * x, 0.0).sum(axis=axes))
    sums = view(x, 0.0).sum(axis=axes)
    ones = np.ones((1, 1) + x.shape[2:], np.float32)
    if flag(p, "exclude_padding_from_average"):
        counts = view(ones, 0.0).sum(axis=axes)
    else:  # padding counts, the ceil_mode overhang does not (as in PyTorch)
        padded_ones = pad_spatial(ones, pads, 1.0)
        tail = [v for i in range(nd) for v in (0, extra[i])]
        counts = windows(pad_spatial(padded_ones, tail, 0.0), kernel, strides,
                         [1] * nd)[crop].sum(axis=axes)
    return sums / counts


def reduce(p, fn):
    """reduce_* over `axes` (default: all). Float inputs in float32, int32 inputs stay int32."""
    x = num(p["x"])
    axes = tuple(norm_axis(a, x.ndim) for a in ints(p["axes"])) if "axes" in p \
        else tuple(range(x.ndim))
    y = np.asarray(fn(x, axes, flag(p, "keep_dims")))
    if np.issubdtype(x.dtype, np.integer) and np.issubdtype(y.dtype, np.integer):
        y = y.astype(x.dtype)  # numpy sums int32 in int64
    return y


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
    values = [num(v) for v in p["values"]]
    axis = norm_axis(p["axis"], values[0].ndim)
    if flag(p, "interleave"):
        assert all(v.shape == values[0].shape for v in values), "interleave needs equal shapes"
        stacked = np.stack(values, axis=axis + 1)
        shape = list(values[0].shape)
        shape[axis] *= len(values)
        return stacked.reshape(shape)
    return np.concatenate(values, axis=axis)


def op_reshape(p):
    shape = ints(p["shape"])
    assert all(s > 0 for s in shape), "linquant writes explicit reshape sizes"
    return np.asarray(p["x"]).reshape(shape)


# ---------------------------------------------------------------------------------------------
# Elementwise ops beyond the activations above.

def with_epsilon(p, default):
    """x + epsilon with MIL's default epsilon taken in x's dtype (1e-45 is 0 in fp16)."""
    x = np.asarray(p["x"])
    eps = p["epsilon"] if "epsilon" in p else np.asarray(default, x.dtype)
    return f32(x) + f32(eps)


def op_exp2(p):
    x = num(p["x"])
    if np.issubdtype(x.dtype, np.integer):  # int32 exp2: 2^x, negative powers truncate to 0
        return np.where(x >= 0, np.left_shift(1, np.maximum(x, 0)), 0).astype(x.dtype)
    return np.exp2(x)


def op_floor_div(p):
    x, y = num(p["x"]), num(p["y"])
    if np.issubdtype(x.dtype, np.integer) and np.issubdtype(y.dtype, np.integer):
        return np.floor_divide(x, y)
    return np.floor(f32(x) / f32(y))


def logical(p, fn):
    x, y = np.asarray(p["x"]), np.asarray(p["y"])
    assert x.dtype == np.bool_ and y.dtype == np.bool_, "logical ops take bool tensors"
    return fn(x, y)


def op_logical_not(p):
    x = np.asarray(p["x"])
    assert x.dtype == np.bool_, "logical_not takes a bool tensor"
    return np.logical_not(x)


def op_select(p):
    cond = np.asarray(p["cond"])
    assert cond.dtype == np.bool_, "select: cond must be bool"
    a, b = num(p["a"]), num(p["b"])
    return np.where(cond, a, b)


def channel_param(param, x):
    """A per-channel [C] parameter shaped to broadcast along axis 1 of x."""
    return f32(param).reshape((1, -1) + (1,) * (x.ndim - 2))


def op_prelu(p):
    x = f32(p["x"])
    return np.where(x > 0, x, channel_param(p["alpha"], x) * x)


def op_softplus_parametric(p):
    x = f32(p["x"])
    return channel_param(p["alpha"], x) * np.logaddexp(0.0, channel_param(p["beta"], x) * x)


def op_clamped_relu(p):
    x, alpha, beta = f32(p["x"]), f32(p["alpha"]), f32(p["beta"])
    return np.minimum(np.where(x >= 0, x, alpha * x), beta)


def op_cast(p):
    x = np.asarray(p["x"])
    dtype = STRING_DTYPE[p["dtype"]]
    if np.issubdtype(dtype, np.integer) and x.dtype != np.bool_:
        info = np.iinfo(dtype)
        assert x.size == 0 or (np.min(x) > info.min - 1 and np.max(x) < info.max + 1), \
            f"cast to {p['dtype']}: value out of range"
        if np.issubdtype(x.dtype, np.floating):
            x = np.trunc(x)  # toward zero
    return x.astype(dtype)


# ---------------------------------------------------------------------------------------------
# Normalization.

def op_instance_norm(p):
    x = f32(p["x"])
    axes = tuple(range(2, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(var + f32(p.get("epsilon", 1e-5)))
    if "gamma" in p:
        y = y * channel_param(p["gamma"], x)
    if "beta" in p:
        y = y + channel_param(p["beta"], x)
    return y


def op_l2_norm(p):
    """Normalizes over the last three dimensions; leading dimensions are batch."""
    x = f32(p["x"])
    assert x.ndim >= 3, "l2_norm needs rank >= 3"
    squares = np.sum(x * x, axis=(-3, -2, -1), keepdims=True)
    return x / np.sqrt(squares + f32(p.get("epsilon", 1e-6)))


# ---------------------------------------------------------------------------------------------
# Reductions and scans.

def op_reduce_arg(p, fn):
    x = num(p["x"])
    axis = norm_axis(p.get("axis", -1), x.ndim)
    y = fn(x, axis=axis)  # first index among ties
    if flag(p, "keep_dims"):
        y = np.expand_dims(y, axis)
    return np.asarray(y).astype(STRING_DTYPE[p.get("output_dtype", "int32")])


def op_cumsum(p):
    x = num(p["x"])
    axis = norm_axis(p.get("axis", 0), x.ndim)
    if flag(p, "reverse"):
        x = np.flip(x, axis)
    y = np.cumsum(x, axis=axis, dtype=x.dtype)
    if flag(p, "exclusive"):
        shifted = np.zeros_like(y)
        target = [slice(None)] * x.ndim
        source = [slice(None)] * x.ndim
        target[axis], source[axis] = slice(1, None), slice(0, -1)
        shifted[tuple(target)] = y[tuple(source)]
        y = shifted
    return np.flip(y, axis) if flag(p, "reverse") else y


def sort_order(x, axis, ascending):
    """Indices sorting x along axis; ties keep the lower index first."""
    key = np.asarray(x).astype(np.float64)
    return np.argsort(key if ascending else -key, axis=axis, kind="stable")


def op_topk(p):
    x = np.asarray(p["x"])
    axis = norm_axis(p.get("axis", -1), x.ndim)
    k = int(p.get("k", 1))
    k = x.shape[axis] if k == -1 else k
    assert 0 < k <= x.shape[axis], f"topk: k={k} for a dimension of {x.shape[axis]}"
    order = sort_order(x, axis, flag(p, "ascending"))
    indices = np.take(order, np.arange(k), axis=axis)
    values = np.take_along_axis(x, indices, axis=axis)
    if not flag(p, "return_indices", True):
        return values
    return values, indices.astype(STRING_DTYPE[p.get("output_indices_dtype", "int32")])


def op_argsort(p):
    x = np.asarray(p["x"])
    axis = norm_axis(p.get("axis", -1), x.ndim)
    return sort_order(x, axis, flag(p, "ascending")).astype(np.int32)


# ---------------------------------------------------------------------------------------------
# Shape and data movement: values keep their dtype.

def op_squeeze(p):
    x = np.asarray(p["x"])
    if "axes" not in p:
        return x.reshape([d for d in x.shape if d != 1])
    axes = {norm_axis(a, x.ndim) for a in ints(p["axes"])}
    # PyTorch-like: listed axes whose size is not 1 are kept.
    return x.reshape([d for i, d in enumerate(x.shape) if not (i in axes and d == 1)])


def op_expand_dims(p):
    x = np.asarray(p["x"])
    axes = ints(p["axes"])
    rank = x.ndim + len(axes)
    positions = sorted(norm_axis(a, rank) for a in axes)
    assert len(set(positions)) == len(positions), "expand_dims: repeated axis"
    shape = list(x.shape)
    for axis in positions:
        shape.insert(axis, 1)
    return x.reshape(shape)


def op_reverse(p):
    x = np.asarray(p["x"])
    axes = [norm_axis(a, x.ndim) for a in ints(p["axes"])] if "axes" in p else range(x.ndim)
    for axis in axes:
        x = np.flip(x, axis)
    return x


def mask(p, key, rank):
    return [bool(v) for v in np.asarray(p[key]).reshape(-1)] if key in p else [False] * rank


def op_slice_by_index(p):
    x = np.asarray(p["x"])
    rank = x.ndim
    begin, end = ints(p["begin"]), ints(p["end"])
    stride = ints(p["stride"]) if "stride" in p else [1] * rank
    begin_mask, end_mask = mask(p, "begin_mask", rank), mask(p, "end_mask", rank)
    squeeze_mask = mask(p, "squeeze_mask", rank)
    assert len(begin) == len(end) == len(stride) == rank, "slice_by_index: one entry per axis"
    index = []
    for i in range(rank):
        if squeeze_mask[i]:  # pure index at begin[i]
            index.append(norm_axis(begin[i], x.shape[i]))
        else:  # Python slicing; a masked begin/end means "from the start/to the end"
            assert stride[i] != 0, "slice_by_index: zero stride"
            index.append(slice(None if begin_mask[i] else begin[i],
                               None if end_mask[i] else end[i], stride[i]))
    return np.asarray(x[tuple(index)])


def op_slice_by_size(p):
    x = np.asarray(p["x"])
    begin, size = ints(p["begin"]), ints(p["size"])
    assert len(begin) == len(size) == x.ndim, "slice_by_size: one entry per axis"
    index = []
    for b, n, d in zip(begin, size, x.shape):
        b = norm_axis(b, d)
        end = d if n == -1 else b + n
        assert 0 <= n or n == -1, "slice_by_size: negative size"
        assert end <= d, "slice_by_size: slice beyond the input"
        index.append(slice(b, end))
    return x[tuple(index)]


def gather_indices(p, indices, size):
    """Checks indices against a dimension of `size`. Negative indices count from the end up to
    iOS16; from iOS17 on they are out of bounds (MIL gather docs)."""
    indices = np.asarray(indices).astype(np.int64)
    low = 0 if p.get("_ios", 15) >= 17 else -size
    assert np.all((indices >= low) & (indices < size)), \
        f"index out of bounds for a dimension of {size}"
    return np.where(indices < 0, indices + size, indices)


def per_batch(x, indices, batch_dims, fn):
    """fn over the leading batch_dims dimensions shared by x and indices."""
    if batch_dims == 0:
        return fn(x, indices)
    assert x.shape[:batch_dims] == indices.shape[:batch_dims], "batch dimensions differ"
    batch = x.shape[:batch_dims]
    parts = [fn(x[b], indices[b]) for b in np.ndindex(*batch)]
    return np.stack(parts).reshape(batch + parts[0].shape)


def op_gather(p):
    x = np.asarray(p["x"])
    axis = norm_axis(p.get("axis", 0), x.ndim)
    batch_dims = int(p.get("batch_dims", 0))
    indices = gather_indices(p, p["indices"], x.shape[axis])
    assert 0 <= batch_dims <= min(axis, indices.ndim), "gather: batch_dims"
    return per_batch(x, indices, batch_dims,
                     lambda xb, ib: np.take(xb, ib, axis=axis - batch_dims))


def op_gather_along_axis(p):
    x = np.asarray(p["x"])
    axis = norm_axis(p.get("axis", 0), x.ndim)
    indices = gather_indices(p, p["indices"], x.shape[axis])
    assert indices.ndim == x.ndim, "gather_along_axis: ranks differ"
    for i in range(x.ndim):
        assert i == axis or indices.shape[i] == x.shape[i], "gather_along_axis: shapes differ"
    return np.take_along_axis(x, indices, axis=axis)


def op_gather_nd(p):
    x = np.asarray(p["x"])
    indices = np.asarray(p["indices"])
    batch_dims = int(p.get("batch_dims", 0))
    depth = indices.shape[-1]
    assert batch_dims + depth <= x.ndim, "gather_nd: indices too deep"

    def gather(xb, ib):
        coords = tuple(gather_indices(p, ib[..., j], xb.shape[j]) for j in range(depth))
        return xb[coords]
    return per_batch(x, indices, batch_dims, gather)


def op_split(p):
    x = np.asarray(p["x"])
    axis = norm_axis(p["axis"], x.ndim)
    if "split_sizes" in p:
        sizes = ints(p["split_sizes"])
        assert "num_splits" not in p or int(p["num_splits"]) == len(sizes), "split: counts differ"
    else:
        count = int(p["num_splits"])
        assert x.shape[axis] % count == 0, "split: num_splits must divide the axis"
        sizes = [x.shape[axis] // count] * count
    assert sum(sizes) == x.shape[axis], "split: sizes must add up to the axis"
    return tuple(np.split(x, np.cumsum(sizes)[:-1], axis=axis))


def op_stack(p):
    values = [num(v) for v in p["values"]]
    assert all(v.shape == values[0].shape for v in values), "stack: shapes differ"
    return np.stack(values, axis=int(p["axis"]))


def op_tile(p):
    x = np.asarray(p["x"])
    reps = ints(p["reps"])
    assert len(reps) == x.ndim and all(r > 0 for r in reps), "tile: one positive rep per axis"
    return np.tile(x, reps)


def op_pad(p):
    x = np.asarray(p["x"])
    pad = ints(p["pad"])
    assert len(pad) % 2 == 0 and len(pad) // 2 <= x.ndim and min(pad, default=0) >= 0
    count = len(pad) // 2
    widths = [(0, 0)] * (x.ndim - count) + [(pad[2 * i], pad[2 * i + 1]) for i in range(count)]
    mode = p.get("mode", "constant")
    if mode == "constant":
        return np.pad(x, widths, constant_values=np.asarray(p.get("constant_val", 0.0)).item())
    if mode == "reflect":
        for (before, after), size in zip(widths, x.shape):
            assert before < size and after < size, "reflect pad must be below the size"
        return np.pad(x, widths, mode="reflect")
    if mode == "replicate":
        return np.pad(x, widths, mode="edge")
    raise NotImplementedError(f"pad mode {mode}")


def op_fill(p):
    value = np.asarray(p.get("value", np.float32(0.0)))
    return np.full(ints(p["shape"]), value, dtype=value.dtype)


def op_fill_like(p):
    value = np.asarray(p.get("value", np.float32(0.0)))
    return np.full(np.asarray(p["ref_tensor"]).shape, value, dtype=value.dtype)


def op_range_1d(p):
    start, end, step = (np.asarray(p[k]) for k in ("start", "end", "step"))
    assert start.dtype == end.dtype == step.dtype, "range_1d: inputs must share a dtype"
    assert step != 0, "range_1d: zero step"
    if np.issubdtype(start.dtype, np.integer):
        return np.arange(int(start), int(end), int(step), dtype=start.dtype)
    count = max(0, math.ceil((float(end) - float(start)) / float(step)))
    return float(start) + np.arange(count, dtype=np.float64) * float(step)


def op_band_part(p):
    x = num(p["x"])
    lower, upper = int(p.get("lower", -1)), int(p.get("upper", -1))
    m = np.arange(x.shape[-2])[:, None]
    n = np.arange(x.shape[-1])[None, :]
    keep = ((lower < 0) | (m - n <= lower)) & ((upper < 0) | (n - m <= upper))
    return np.where(keep, x, np.zeros((), x.dtype))


def op_flatten2d(p):
    x = np.asarray(p["x"])
    axis = int(p.get("axis", 1))
    axis = axis + x.ndim if axis < 0 else axis
    assert 0 <= axis <= x.ndim, "flatten2d: axis"
    return x.reshape(int(np.prod(x.shape[:axis])), int(np.prod(x.shape[axis:])))


def op_sliding_windows(p):
    x = np.asarray(p["x"])
    axis = norm_axis(p["axis"], x.ndim)
    size, stride = int(p["size"]), int(p.get("stride", 1))
    count = (x.shape[axis] - size) // stride + 1
    parts = [np.take(x, np.arange(i * stride, i * stride + size), axis=axis) for i in range(count)]
    return np.stack(parts, axis=axis)


def op_reverse_sequence(p):
    x = np.asarray(p["x"]).copy()
    lengths = ints(p["lengths"])
    seq_axis = norm_axis(p.get("seq_axis", 0), x.ndim)
    batch_axis = norm_axis(p.get("batch_axis", 0), x.ndim)
    assert seq_axis != batch_axis and len(lengths) == x.shape[batch_axis]
    for b, length in enumerate(lengths):
        assert 0 <= length <= x.shape[seq_axis], "reverse_sequence: length"
        index = [slice(None)] * x.ndim
        index[batch_axis] = b
        index[seq_axis] = slice(0, length)
        index = tuple(index)
        x[index] = np.flip(x[index], axis=seq_axis - (batch_axis < seq_axis))
    return x


def op_one_hot(p):
    indices = np.asarray(p["indices"]).astype(np.int64)
    depth = int(p["one_hot_vector_size"])
    axis = int(p.get("axis", -1))
    axis = axis + indices.ndim + 1 if axis < 0 else axis
    on = np.asarray(p.get("on_value", np.int32(1)))
    off = np.asarray(p.get("off_value", np.int32(0)))
    assert on.dtype == off.dtype, "one_hot: on_value and off_value dtypes differ"
    hot = np.expand_dims(indices, axis) == np.arange(depth).reshape(
        [-1 if i == axis else 1 for i in range(indices.ndim + 1)])
    return np.where(hot, on, off)


def op_depth_to_space(p):
    """TensorFlow's DCR order: output channel c at block offset (i, j) reads input channel
    (i * b + j) * C_out + c."""
    x = np.asarray(p["x"])
    b = int(p["block_size"])
    n, c, h, w = x.shape
    assert c % (b * b) == 0, "depth_to_space: channels must divide by block_size^2"
    y = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    return y.reshape(n, c // (b * b), h * b, w * b)


def op_space_to_depth(p):
    x = np.asarray(p["x"])
    b = int(p["block_size"])
    n, c, h, w = x.shape
    assert h % b == 0 and w % b == 0, "space_to_depth: spatial sizes must divide by block_size"
    y = x.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4)
    return y.reshape(n, c * b * b, h // b, w // b)


def op_pixel_shuffle(p):
    """PyTorch's PixelShuffle (CRD): output channel c at offset (i, j) reads c * f^2 + i * f + j."""
    x = np.asarray(p["x"])
    f = int(p["upscale_factor"])
    n, c, h, w = x.shape
    assert c % (f * f) == 0, "pixel_shuffle: channels must divide by upscale_factor^2"
    y = x.reshape(n, c // (f * f), f, f, h, w).transpose(0, 1, 4, 2, 5, 3)
    return y.reshape(n, c // (f * f), h * f, w * f)


def op_pixel_unshuffle(p):
    x = np.asarray(p["x"])
    f = int(p["downscale_factor"])
    n, c, h, w = x.shape
    assert h % f == 0 and w % f == 0, "pixel_unshuffle: sizes must divide by downscale_factor"
    y = x.reshape(n, c, h // f, f, w // f, f).transpose(0, 1, 3, 5, 2, 4)
    return y.reshape(n, c * f * f, h // f, w // f)


# ---------------------------------------------------------------------------------------------
# Resizing. Sampling grids from the MIL docs (resize_bilinear's sampling_mode notes).

def sampling_grid(size_in, size_out, mode):
    i = np.arange(size_out, dtype=np.float64)
    if mode in ("STRICT_ALIGN_CORNERS", "ALIGN_CORNERS"):
        if size_out == 1:
            grid = np.full(1, (size_in - 1) / 2.0 if mode == "ALIGN_CORNERS" else 0.0)
        else:
            grid = i * (size_in - 1) / (size_out - 1)
    elif mode == "DEFAULT":
        grid = i * size_in / size_out
    elif mode == "UNALIGN_CORNERS":
        grid = (i + 0.5) * size_in / size_out - 0.5
    elif mode == "OFFSET_CORNERS":
        delta = max(1, size_in - 1) / size_out
        grid = 0.5 * delta + i * delta
    else:
        raise NotImplementedError(f"sampling_mode {mode}")
    return np.clip(grid, 0, size_in - 1)


def interpolate_axis(x, axis, grid):
    """Linear interpolation of x along axis at the fractional positions grid."""
    low = np.floor(grid).astype(np.int64)
    high = np.minimum(low + 1, x.shape[axis] - 1)
    shape = [1] * x.ndim
    shape[axis] = len(grid)
    frac = (grid - low).astype(np.float32).reshape(shape)
    a, b = np.take(x, low, axis=axis), np.take(x, high, axis=axis)
    return a * (1.0 - frac) + b * frac


def bilinear(x, height, width, mode):
    assert x.ndim >= 3, "resize ops need rank >= 3"
    x = interpolate_axis(x, x.ndim - 2, sampling_grid(x.shape[-2], height, mode))
    return interpolate_axis(x, x.ndim - 1, sampling_grid(x.shape[-1], width, mode))


def scaled_size(size, scale):
    return int(np.floor(np.float32(scale) * np.float32(size)))


def op_upsample_nearest_neighbor(p):
    x = np.asarray(p["x"])
    assert x.ndim >= 3, "upsample_nearest_neighbor needs rank >= 3"
    for axis, key in ((x.ndim - 2, "scale_factor_height"), (x.ndim - 1, "scale_factor_width")):
        scale = np.float32(p.get(key, 1))
        size = x.shape[axis]
        source = np.floor(np.arange(scaled_size(size, scale), dtype=np.float32) / scale)
        x = np.take(x, np.minimum(source.astype(np.int64), size - 1), axis=axis)
    return x


def nearest_half_pixel(x, axis, size_out):
    """Nearest neighbor with half-pixel centers: floor((i + 0.5) * in / out)."""
    size = x.shape[axis]
    source = np.floor((np.arange(size_out) + 0.5) * size / size_out).astype(np.int64)
    return np.take(x, np.minimum(source, size - 1), axis=axis)


def op_resize_nearest_neighbor(p):
    x = np.asarray(p["x"])
    assert x.ndim >= 3, "resize_nearest_neighbor needs rank >= 3"
    x = nearest_half_pixel(x, x.ndim - 2, int(p["target_size_height"]))
    return nearest_half_pixel(x, x.ndim - 1, int(p["target_size_width"]))


def op_upsample_bilinear(p):
    x = f32(p["x"])
    align = flag(p, "align_corners", True)
    half_pixel = flag(p, "half_pixel_centers", not align)  # iOS16 parameter
    modes = {(True, False): "STRICT_ALIGN_CORNERS", (False, True): "UNALIGN_CORNERS",
             (False, False): "DEFAULT"}
    if (align, half_pixel) not in modes:
        raise NotImplementedError("upsample_bilinear with align_corners and half_pixel_centers")
    # MIL recomputes the scale from the output size (PyTorch's recompute_scale_factor=True).
    height = scaled_size(x.shape[-2], p.get("scale_factor_height", 1))
    width = scaled_size(x.shape[-1], p.get("scale_factor_width", 1))
    return bilinear(x, height, width, modes[(align, half_pixel)])


def op_resize_bilinear(p):
    x = f32(p["x"])
    return bilinear(x, int(p.get("target_size_height", 1)), int(p.get("target_size_width", 1)),
                    p.get("sampling_mode", "DEFAULT"))


def op_resize(p):
    """iOS17 resize: the last resized_dims dimensions take their sizes from the end of shape."""
    x = np.asarray(p["x"])
    shape = ints(p["shape"])
    count = int(p["resized_dims"])
    assert count <= len(shape) <= x.ndim, "resize: resized_dims <= size(shape) <= rank(x)"
    interpolation = p.get("interpolation_mode", "LINEAR")
    mode = p.get("sampling_mode", "DEFAULT")
    if interpolation == "LINEAR":
        x = num(x)
    elif interpolation != "NEAREST_NEIGHBOR" or mode != "DEFAULT":
        raise NotImplementedError(f"resize {interpolation} with sampling_mode {mode}")
    for i in range(count):
        axis = x.ndim - count + i
        size = shape[len(shape) - count + i] or x.shape[axis]
        if interpolation == "LINEAR":
            x = interpolate_axis(x, axis, sampling_grid(x.shape[axis], size, mode))
        else:  # as resize_nearest_neighbor, which the DEFAULT mode stands in for
            x = nearest_half_pixel(x, axis, size)
    return x


# ---------------------------------------------------------------------------------------------
# einsum: MIL defines only "nchw,nwhu->nchu" and "chw,whr->chr" (letters may be renamed).

def einsum_operands(equation, a, b):
    inputs, _, out = equation.replace(" ", "").partition("->")
    left, _, right = inputs.partition(",")
    for first, second, x, y in ((left, right, a, b), (right, left, b, a)):
        if len(first) == 4 and len(set(first + second[3:])) == 5 and \
                second == first[0] + first[3] + first[2] + second[3:] and len(second) == 4 and \
                out == first[:3] + second[3]:
            return x, y
        if len(first) == 3 and len(set(first + second[2:])) == 4 and \
                second == first[2] + first[1] + second[2:] and len(second) == 3 and \
                out == first[:2] + second[2]:
            return x, y
    raise NotImplementedError(f"einsum equation {equation!r} is not one MIL defines")


def op_einsum(p):
    a, b = (f32(v) for v in p["values"])
    a, b = einsum_operands(p["equation"], a, b)
    assert a.ndim == b.ndim, "einsum: ranks differ"
    # [*B, C, H, W1] x [*B, W1, H, W2]: move H ahead of the matrices, broadcast B and H.
    perm = (0, 2, 1, 3) if a.ndim == 4 else (1, 0, 2)
    return np.transpose(np.matmul(np.transpose(a, perm), np.transpose(b, perm)), perm)


# ---------------------------------------------------------------------------------------------
# Recurrent layers. x is [seq, batch, input]; weights are [gates * H, input] / [gates * H, H].
# Only parameter-free activations: MIL gives no alpha/beta for hard_sigmoid, scaled_tanh or
# linear inside rnn/gru/lstm.

RNN_ACTIVATIONS = {"sigmoid": sigmoid, "tanh": np.tanh, "relu": lambda v: np.maximum(v, 0.0)}


def rnn_activation(name):
    name = str(name).lower()
    if name not in RNN_ACTIVATIONS:
        raise NotImplementedError(f"recurrent activation {name} (its parameters are undefined)")
    return RNN_ACTIVATIONS[name]


def recur(x, h, reverse, step):
    """Runs step(x_t, state) -> (h_t, state) over time. Outputs stay aligned with their input
    step when running in reverse (as the bidirectional layers document)."""
    outputs = [None] * x.shape[0]
    for t in (range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])):
        outputs[t], h = step(x[t], h)
    return np.stack(outputs), h


def sequence_output(p, ys, last):
    return ys if flag(p, "output_sequence") else last[None]


def check_direction(p, allowed):
    direction = p.get("direction", "forward")
    assert direction in allowed, f"direction {direction}"
    return direction


def op_rnn(p):
    x, h0 = f32(p["x"]), f32(p["initial_h"])
    w_ih, w_hh = f32(p["weight_ih"]), f32(p["weight_hh"])
    bias = f32(p["bias"]) if "bias" in p else np.zeros(w_hh.shape[0], np.float32)
    act = rnn_activation(p.get("activation", "tanh"))
    reverse = check_direction(p, ("forward", "reverse")) == "reverse"

    def step(xt, h):
        h = act(xt @ w_ih.T + h @ w_hh.T + bias)
        return h, h
    ys, h = recur(x, h0, reverse, step)
    return sequence_output(p, ys, h), h


def op_gru(p):
    """Gates in MIL's order [r, o, z]; one bias [b_r, b_o, b_z] outside the reset product:
    o_t = act(W_io x_t + r_t * (W_ho h_t-1) + b_o), h_t = (1 - z_t) * o_t + z_t * h_t-1."""
    if flag(p, "reset_after") or "input_bias" in p:
        raise NotImplementedError("iOS18 gru reset_after/input_bias")
    x, h0 = f32(p["x"]), f32(p["initial_h"])
    w_ih, w_hh = f32(p["weight_ih"]), f32(p["weight_hh"])
    hidden = w_hh.shape[1]
    assert w_ih.shape[0] == w_hh.shape[0] == 3 * hidden, "gru: weights must be [3H, *]"
    bias = f32(p["bias"]) if "bias" in p else np.zeros(3 * hidden, np.float32)
    gate = rnn_activation(p.get("recurrent_activation", "sigmoid"))
    act = rnn_activation(p.get("activation", "tanh"))
    reverse = check_direction(p, ("forward", "reverse")) == "reverse"

    def step(xt, h):
        gx, gh = xt @ w_ih.T, h @ w_hh.T
        r = gate(gx[:, :hidden] + gh[:, :hidden] + bias[:hidden])
        z = gate(gx[:, 2 * hidden:] + gh[:, 2 * hidden:] + bias[2 * hidden:])
        o = act(gx[:, hidden:2 * hidden] + r * gh[:, hidden:2 * hidden] +
                bias[hidden:2 * hidden])
        h = (1.0 - z) * o + z * h
        return h, h
    ys, h = recur(x, h0, reverse, step)
    return sequence_output(p, ys, h), h


def lstm_direction(p, x, h0, c0, suffix, reverse):
    """One LSTM direction. Gates in MIL's order [i, f, o, z] (z: cell gate); peephole [i, f, o]
    on c_t-1 for i and f and on c_t for o; clip bounds every gate pre-activation to
    [-clip, clip] (Core ML's cellClipThreshold, which MIL's clip lowers to)."""
    w_ih, w_hh = f32(p["weight_ih" + suffix]), f32(p["weight_hh" + suffix])
    hidden = w_hh.shape[1]
    assert w_ih.shape[0] == w_hh.shape[0] == 4 * hidden, "lstm: weights must be [4H, *]"
    bias = f32(p["bias" + suffix]) if "bias" + suffix in p else np.zeros(4 * hidden, np.float32)
    peep = f32(p["peephole" + suffix]).reshape(3, hidden) if "peephole" + suffix in p \
        else np.zeros((3, hidden), np.float32)
    clip = float(p["clip"]) if "clip" in p else None
    gate = rnn_activation(p.get("recurrent_activation", "sigmoid"))
    cell = rnn_activation(p.get("cell_activation", "tanh"))
    act = rnn_activation(p.get("activation", "tanh"))

    def bound(v):
        return np.clip(v, -clip, clip) if clip is not None else v

    def step(xt, state):
        h, c = state
        g = xt @ w_ih.T + h @ w_hh.T + bias
        i = gate(bound(g[:, :hidden] + peep[0] * c))
        f = gate(bound(g[:, hidden:2 * hidden] + peep[1] * c))
        z = cell(bound(g[:, 3 * hidden:]))
        c = f * c + i * z
        o = gate(bound(g[:, 2 * hidden:3 * hidden] + peep[2] * c))
        h = o * act(c)
        return h, (h, c)
    ys, (h, c) = recur(x, (h0, c0), reverse, step)
    return ys, h, c


def op_lstm(p):
    x, h0, c0 = f32(p["x"]), f32(p["initial_h"]), f32(p["initial_c"])
    direction = check_direction(p, ("forward", "reverse", "bidirectional"))
    if direction != "bidirectional":
        ys, h, c = lstm_direction(p, x, h0, c0, "", direction == "reverse")
    else:
        hidden = h0.shape[-1] // 2
        forward = lstm_direction(p, x, h0[:, :hidden], c0[:, :hidden], "", False)
        backward = lstm_direction(p, x, h0[:, hidden:], c0[:, hidden:], "_back", True)
        ys, h, c = (np.concatenate(pair, axis=-1) for pair in zip(forward, backward))
    return sequence_output(p, ys, h), h, c


def unary(fn):
    return lambda p: fn(f32(p["x"]))


def binary(fn):
    return lambda p: fn(num(p["x"]), num(p["y"]))


def reducer(fn):
    return lambda p: reduce(p, lambda x, a, k: fn(x, axis=a, keepdims=k))


OPS = {
    "quantize": op_quantize,
    "dequantize": op_dequantize,
    "constexpr_affine_dequantize": op_affine_dequantize,
    "constexpr_blockwise_shift_scale": op_blockwise_shift_scale,
    "conv": op_conv,
    "conv_transpose": op_conv_transpose,
    "linear": op_linear,
    "matmul": op_matmul,
    "einsum": op_einsum,
    # activations
    "relu": lambda p: np.maximum(f32(p["x"]), 0.0),
    "relu6": lambda p: np.clip(f32(p["x"]), 0.0, 6.0),
    "clip": lambda p: np.clip(f32(p["x"]), f32(p["alpha"]), f32(p["beta"])),
    "leaky_relu": lambda p: np.where(f32(p["x"]) >= 0, f32(p["x"]), f32(p["alpha"]) * f32(p["x"])),
    "elu": lambda p: np.where(f32(p["x"]) > 0, f32(p["x"]),
                              f32(p["alpha"]) * (np.exp(f32(p["x"])) - 1.0)),
    "prelu": op_prelu,
    "clamped_relu": op_clamped_relu,
    "sigmoid": lambda p: sigmoid(f32(p["x"])),
    "sigmoid_hard": lambda p: np.clip(f32(p["alpha"]) * f32(p["x"]) + f32(p["beta"]), 0.0, 1.0),
    "thresholded_relu": lambda p: np.where(f32(p["x"]) >= f32(p["alpha"]), f32(p["x"]), 0.0),
    "threshold": lambda p: np.maximum(num(p["x"]), num(p["alpha"])),
    "tanh": lambda p: np.tanh(f32(p["x"])),
    "scaled_tanh": lambda p: f32(p["alpha"]) * np.tanh(f32(p["beta"]) * f32(p["x"])),
    "linear_activation": lambda p: f32(p["alpha"]) * f32(p["x"]) + f32(p["beta"]),
    "silu": lambda p: f32(p["x"]) * sigmoid(f32(p["x"])),
    "gelu": op_gelu,
    "softplus": unary(lambda x: np.logaddexp(0.0, x)),
    "softplus_parametric": op_softplus_parametric,
    "softsign": unary(lambda x: x / (1.0 + np.abs(x))),
    "softmax": softmax,
    # elementwise unary
    "abs": lambda p: np.abs(num(p["x"])),
    "sign": lambda p: np.sign(num(p["x"])),
    "square": lambda p: np.square(num(p["x"])),
    "exp": unary(np.exp),
    "exp2": op_exp2,
    "erf": unary(lambda x: _erf(x.astype(np.float64))),
    "sqrt": unary(np.sqrt),
    "rsqrt": lambda p: 1.0 / np.sqrt(with_epsilon(p, 1e-12)),
    "inverse": lambda p: 1.0 / with_epsilon(p, 1e-4),
    "log": lambda p: np.log(with_epsilon(p, 1e-45)),
    "sin": unary(np.sin),
    "cos": unary(np.cos),
    "tan": unary(np.tan),
    "asin": unary(np.arcsin),
    "acos": unary(np.arccos),
    "atan": unary(np.arctan),
    "sinh": unary(np.sinh),
    "cosh": unary(np.cosh),
    "atanh": unary(np.arctanh),
    "floor": unary(np.floor),
    "ceil": unary(np.ceil),
    "round": unary(np.round),  # half to even: 0.5 -> 0 as MIL documents
    "logical_not": op_logical_not,
    "cast": op_cast,
    # elementwise binary (numpy broadcasting); comparisons give bool
    "add": binary(np.add),
    "sub": binary(np.subtract),
    "mul": binary(np.multiply),
    "real_div": lambda p: f32(p["x"]) / f32(p["y"]),
    "floor_div": op_floor_div,
    "mod": binary(np.mod),  # Python's %: the result takes the divisor's sign
    "pow": binary(np.power),
    "maximum": binary(np.maximum),
    "minimum": binary(np.minimum),
    "equal": binary(np.equal),
    "not_equal": binary(np.not_equal),
    "greater": binary(np.greater),
    "greater_equal": binary(np.greater_equal),
    "less": binary(np.less),
    "less_equal": binary(np.less_equal),
    "logical_and": lambda p: logical(p, np.logical_and),
    "logical_or": lambda p: logical(p, np.logical_or),
    "logical_xor": lambda p: logical(p, np.logical_xor),
    "select": op_select,
    # reductions and scans
    "reduce_mean": lambda p: reduce(p, lambda x, a, k: f32(x).mean(axis=a, keepdims=k)),
    "reduce_sum": reducer(np.sum),
    "reduce_max": reducer(np.max),
    "reduce_min": reducer(np.min),
    "reduce_prod": reducer(np.prod),
    "reduce_l1_norm": reducer(lambda x, axis, keepdims: np.sum(np.abs(x), axis, keepdims=keepdims)),
    "reduce_l2_norm": lambda p: reduce(
        p, lambda x, a, k: np.sqrt(np.sum(f32(x) ** 2, axis=a, keepdims=k))),
    "reduce_sum_square": reducer(lambda x, axis, keepdims: np.sum(x * x, axis, keepdims=keepdims)),
    "reduce_log_sum": lambda p: reduce(p, lambda x, a, k: np.log(np.sum(f32(x), a, keepdims=k))),
    "reduce_log_sum_exp": lambda p: reduce(p, lambda x, a, k: log_sum_exp(f32(x), a, k)),
    "reduce_argmax": lambda p: op_reduce_arg(p, np.argmax),
    "reduce_argmin": lambda p: op_reduce_arg(p, np.argmin),
    "cumsum": op_cumsum,
    "topk": op_topk,
    "argsort": op_argsort,
    # pooling and normalization
    "max_pool": lambda p: pool(p, "max"),
    "avg_pool": lambda p: pool(p, "avg"),
    "l2_pool": lambda p: pool(p, "l2"),
    "layer_norm": op_layer_norm,
    "batch_norm": op_batch_norm,
    "instance_norm": op_instance_norm,
    "l2_norm": op_l2_norm,
    # shape and data movement
    "reshape": op_reshape,
    "transpose": lambda p: np.transpose(np.asarray(p["x"]), ints(p["perm"])),
    "concat": op_concat,
    "stack": op_stack,
    "split": op_split,
    "squeeze": op_squeeze,
    "expand_dims": op_expand_dims,
    "reverse": op_reverse,
    "slice_by_index": op_slice_by_index,
    "slice_by_size": op_slice_by_size,
    "gather": op_gather,
    "gather_along_axis": op_gather_along_axis,
    "gather_nd": op_gather_nd,
    "tile": op_tile,
    "pad": op_pad,
    "fill": op_fill,
    "fill_like": op_fill_like,
    "range_1d": op_range_1d,
    "band_part": op_band_part,
    "flatten2d": op_flatten2d,
    "shape": lambda p: np.array(np.asarray(p["x"]).shape, np.int32),
    "sliding_windows": op_sliding_windows,
    "reverse_sequence": op_reverse_sequence,
    "one_hot": op_one_hot,
    "identity": lambda p: np.asarray(p["x"]),
    "depth_to_space": op_depth_to_space,
    "space_to_depth": op_space_to_depth,
    "pixel_shuffle": op_pixel_shuffle,
    "pixel_unshuffle": op_pixel_unshuffle,
    # resizing
    "upsample_nearest_neighbor": op_upsample_nearest_neighbor,
    "resize_nearest_neighbor": op_resize_nearest_neighbor,
    "upsample_bilinear": op_upsample_bilinear,
    "resize_bilinear": op_resize_bilinear,
    "resize": op_resize,
    # recurrent layers (several outputs)
    "rnn": op_rnn,
    "gru": op_gru,
    "lstm": op_lstm,
}

# List-valued (tuple) inputs.
VARIADIC = {("concat", "values"), ("stack", "values"), ("einsum", "values")}
# Ops whose semantics depend on the opset: they receive the iOS version as params["_ios"].
OPSET_AWARE = {"gather", "gather_along_axis", "gather_nd"}


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

    def run(self, feeds, keep=None, force=None, computed=None):
        """feeds: input name -> array. Returns output name -> array (in the declared dtype);
        `keep` (a dict) also receives every variable by name. `force` (name -> array) replaces
        those variables by the given values (or by fn(params of the op) for a callable) as
        soon as they are computed, so that the ops reading them see another implementation's
        values; `computed` (a dict) then receives what the program itself computed for them."""
        env = {}
        for name, (dtype, shape) in self.inputs:
            array = np.asarray(feeds[name])
            assert array.shape == shape, f"input {name}: {array.shape} vs {shape}"
            env[name] = array.astype(NUMPY_DTYPE[dtype])
        for op in self.block.operations:
            params = {}
            if op.type == "const":
                results = (decode_value(op.attributes["val"], self.blobs),)
            else:
                if op.type not in OPS:
                    raise NotImplementedError(f"numpy evaluator has no op {op.type}")
                params = self.params(op, env)
                if op.type in OPSET_AWARE:
                    params["_ios"] = ios_version(self.opset)
                result = OPS[op.type](params)
                results = result if isinstance(result, tuple) else (result,)
            assert len(results) == len(op.outputs), \
                f"{op.type}: {len(results)} results for {len(op.outputs)} declared outputs"
            for output, value in zip(op.outputs, results):
                env[output.name] = self.checked(op, output, value)
                if force is not None and output.name in force:
                    if computed is not None:
                        computed[output.name] = env[output.name]
                    forced = force[output.name]
                    if callable(forced):  # computed from the op's parameters
                        forced = forced(params)
                    forced = np.asarray(forced).astype(env[output.name].dtype)
                    env[output.name] = self.checked(op, output, forced)
        if keep is not None:
            keep.update(env)
        return {name: env[name] for name in self.block.outputs}

    @staticmethod
    def checked(op, output, result):
        """The value of one output, in its declared dtype, after checking the declared type."""
        dtype, shape = tensor_type(output.type)
        if isinstance(result, (str, list)):
            assert dtype == MIL_pb2.STRING, f"{output.name}: string value declared {dtype}"
            return result
        result = np.asarray(result)
        assert result.shape == shape, \
            f"{op.type} {output.name}: computed shape {result.shape}, declared {shape}"
        want = NUMPY_DTYPE[dtype]
        if np.issubdtype(want, np.floating):
            assert np.issubdtype(result.dtype, np.floating), f"{output.name}: float declared"
            return result.astype(want)
        assert result.dtype == want, f"{output.name}: {result.dtype} vs declared {want}"
        return result
