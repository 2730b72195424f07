"""Unit tests for the ops of the numpy MIL evaluator (mil_numpy_evaluator.py).

Each op is called through the OPS table with numpy parameters, as the run loop calls it, and
compared with an independent reference: PyTorch (torch.gather, torch.nn.LSTM, F.interpolate,
torch.einsum...) or values worked out by hand from the MIL op documentation. A few tests build a
small ML Program in memory to exercise the run loop itself (several outputs, variadic inputs,
declared types, opset-dependent semantics).
"""
import math
import os
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from mil_numpy_evaluator import MODEL_FILE, OPS, MilProgram  # noqa: E402

from coremltools.proto import MIL_pb2, Model_pb2  # noqa: E402

RNG = np.random.default_rng(20261205)


def run(op, **params):
    return OPS[op](params)


def randn(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def torch_of(array):
    return torch.from_numpy(np.array(array))  # a copy; keeps rank 0


def close(actual, expected, tol=1e-5):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"shape {actual.shape} vs {expected.shape}"
    np.testing.assert_allclose(actual.astype(np.float64), expected.astype(np.float64),
                               rtol=tol, atol=tol)


def same(actual, expected):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"shape {actual.shape} vs {expected.shape}"
    assert actual.dtype == expected.dtype, f"dtype {actual.dtype} vs {expected.dtype}"
    np.testing.assert_array_equal(actual, expected)


# ---------------------------------------------------------------------------------------------
# Elementwise unary

UNARY_TORCH = {
    "exp": torch.exp, "sqrt": torch.sqrt, "sin": torch.sin, "cos": torch.cos, "tan": torch.tan,
    "asin": torch.asin, "acos": torch.acos, "atan": torch.atan, "sinh": torch.sinh,
    "cosh": torch.cosh, "atanh": torch.atanh, "erf": torch.erf, "floor": torch.floor,
    "ceil": torch.ceil, "relu6": F.relu6, "softplus": F.softplus, "softsign": F.softsign,
    "abs": torch.abs, "sign": torch.sign, "square": torch.square, "exp2": torch.exp2,
}


@pytest.mark.parametrize("name", sorted(UNARY_TORCH))
@pytest.mark.parametrize("shape", [(7,), (2, 3, 5), ()])
def test_unary_float(name, shape):
    x = randn(*shape) * 3
    if name in ("sqrt",):
        x = np.abs(x)
    if name in ("asin", "acos", "atanh"):
        x = np.tanh(x) * 0.99
    if name == "softplus":
        x = np.concatenate([x.reshape(-1), [40.0, -40.0]]).astype(np.float32)
    expected = UNARY_TORCH[name](torch_of(x)).numpy()
    close(run(name, x=x), expected, tol=2e-5)


@pytest.mark.parametrize("name,fn", [("abs", np.abs), ("sign", np.sign), ("square", np.square)])
def test_unary_int_keeps_int32(name, fn):
    x = np.array([-7, -1, 0, 3, 12], np.int32)
    same(run(name, x=x), fn(x).astype(np.int32))


def test_exp2_int32():
    same(run("exp2", x=np.array([0, 1, 5, 10, -1], np.int32)),
         np.array([1, 2, 32, 1024, 0], np.int32))


def test_round_half_to_even():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 0.49, 2.6, -2.6], np.float32)
    close(run("round", x=x), [0, 2, 2, -0.0, -2, 0, 3, -3])


def test_log_epsilon():
    x = np.array([1.0, math.e, 0.25], np.float32)
    close(run("log", x=x), np.log(x))
    # Default epsilon 1e-45: log(0) is finite in fp32 (about -103.28), -inf in fp16 (eps is 0).
    zero32 = run("log", x=np.zeros(1, np.float32))
    close(zero32, [math.log(np.float32(1e-45))], tol=1e-4)
    with np.errstate(divide="ignore"):
        assert np.isneginf(run("log", x=np.zeros(1, np.float16)))[0]
    close(run("log", x=np.array([0.0, 1.0], np.float32), epsilon=np.float32(0.5)),
          [math.log(0.5), math.log(1.5)])


def test_rsqrt_and_inverse_epsilon():
    x = np.array([4.0, 0.25, 1.0], np.float32)
    close(run("rsqrt", x=x), 1 / np.sqrt(x + 1e-12))
    close(run("rsqrt", x=x, epsilon=np.float32(5.0)), 1 / np.sqrt(x + 5))
    close(run("inverse", x=x), 1 / (x + 1e-4))
    close(run("inverse", x=x, epsilon=np.float32(1.0)), 1 / (x + 1))
    close(run("inverse", x=np.zeros(1, np.float32)), [1e4], tol=1e-3)


def test_logical_not():
    same(run("logical_not", x=np.array([True, False])), np.array([False, True]))
    with pytest.raises(AssertionError):
        run("logical_not", x=np.array([1, 0], np.int32))


def test_threshold():
    x = np.array([-2, 0.5, 3], np.float32)
    close(run("threshold", x=x, alpha=np.float32(1)), [1, 1, 3])


# ---------------------------------------------------------------------------------------------
# Activations with parameters

def test_prelu():
    x = randn(2, 3, 4, 5)
    alpha = np.array([0.1, -0.5, 2.0], np.float32)
    close(run("prelu", x=x, alpha=alpha), F.prelu(torch_of(x), torch_of(alpha)).numpy())


def test_clamped_relu_and_linear_and_scaled_tanh():
    x = np.array([-3, -0.5, 0, 2, 9], np.float32)
    close(run("clamped_relu", x=x, alpha=np.float32(0.1), beta=np.float32(6)),
          [-0.3, -0.05, 0, 2, 6])
    close(run("linear_activation", x=x, alpha=np.float32(2), beta=np.float32(1)), 2 * x + 1)
    close(run("scaled_tanh", x=x, alpha=np.float32(2), beta=np.float32(0.5)),
          2 * np.tanh(0.5 * x))


def test_softplus_parametric():
    x = randn(1, 2, 3, 3)
    alpha, beta = np.array([1.0, 2.0], np.float32), np.array([0.5, 3.0], np.float32)
    expected = alpha.reshape(1, 2, 1, 1) * np.log1p(np.exp(beta.reshape(1, 2, 1, 1) * x))
    close(run("softplus_parametric", x=x, alpha=alpha, beta=beta), expected)


# ---------------------------------------------------------------------------------------------
# Elementwise binary

BINARY_TORCH = {
    "add": torch.add, "sub": torch.sub, "mul": torch.mul, "maximum": torch.maximum,
    "minimum": torch.minimum, "pow": torch.pow, "equal": torch.eq, "not_equal": torch.ne,
    "greater": torch.gt, "greater_equal": torch.ge, "less": torch.lt, "less_equal": torch.le,
    "floor_div": lambda a, b: torch.div(a, b, rounding_mode="floor"),
    "mod": torch.remainder,
}


@pytest.mark.parametrize("name", sorted(BINARY_TORCH))
def test_binary_float_broadcast(name):
    x, y = randn(2, 1, 5) * 4, randn(3, 1) * 4
    if name == "pow":
        x = np.abs(x) + 0.1
    if name in ("floor_div", "mod"):
        y = np.where(np.abs(y) < 0.5, 1.5, y).astype(np.float32)
    if name in ("equal", "not_equal", "greater_equal", "less_equal"):
        y[0, 0] = x[0, 0, 0]
    result = run(name, x=x, y=y)
    expected = BINARY_TORCH[name](torch_of(x), torch_of(y)).numpy()
    if expected.dtype == np.bool_:
        same(result, expected)
    else:
        close(result, expected, tol=1e-4)


@pytest.mark.parametrize("name", ["add", "sub", "mul", "maximum", "minimum", "floor_div", "mod",
                                  "pow", "greater", "equal"])
def test_binary_int32(name):
    x = np.array([[-7, -3, 0, 5, 9]], np.int32)
    y = np.array([[2], [-3]], np.int32)
    if name == "pow":
        x, y = np.abs(x), np.abs(y)
    result = run(name, x=x, y=y)
    expected = BINARY_TORCH[name](torch_of(x), torch_of(y)).numpy()
    if expected.dtype != np.bool_:
        expected = expected.astype(np.int32)
    same(result, expected)


def test_floor_div_and_mod_by_hand():
    x = np.array([7, -7, 7, -7], np.int32)
    y = np.array([2, 2, -2, -2], np.int32)
    same(run("floor_div", x=x, y=y), np.array([3, -4, -4, 3], np.int32))
    same(run("mod", x=x, y=y), np.array([1, 1, -1, -1], np.int32))
    close(run("floor_div", x=np.float32([-7.5]), y=np.float32([2])), [-4])


@pytest.mark.parametrize("name,fn", [("logical_and", np.logical_and),
                                     ("logical_or", np.logical_or),
                                     ("logical_xor", np.logical_xor)])
def test_logical_binary(name, fn):
    x = np.array([[True, False, True, False]])
    y = np.array([[True], [False]])
    same(run(name, x=x, y=y), fn(x, y))
    with pytest.raises(AssertionError):
        run(name, x=x.astype(np.int32), y=y)


def test_select():
    cond = np.array([[True, False, True]])
    a, b = randn(2, 3), randn(2, 1)
    close(run("select", cond=cond, a=a, b=b),
          torch.where(torch_of(cond), torch_of(a), torch_of(b)).numpy())
    same(run("select", cond=np.array([True, False]), a=np.int32([1, 2]), b=np.int32([7, 8])),
         np.int32([1, 8]))


# ---------------------------------------------------------------------------------------------
# cast

@pytest.mark.parametrize("dtype,numpy_dtype", [
    ("fp16", np.float16), ("fp32", np.float32), ("int32", np.int32), ("int16", np.int16),
    ("uint16", np.uint16), ("int8", np.int8), ("uint8", np.uint8), ("bool", np.bool_)])
def test_cast_every_dtype(dtype, numpy_dtype):
    x = np.array([0.0, 1.7, 2.2, 100.9], np.float32)
    expected = {np.bool_: [False, True, True, True], np.float16: x.astype(np.float16),
                np.float32: x}.get(numpy_dtype, [0, 1, 2, 100])
    same(run("cast", x=x, dtype=dtype), np.asarray(expected).astype(numpy_dtype))


def test_cast_truncates_toward_zero_and_checks_range():
    same(run("cast", x=np.float32([-2.7, -0.5, 2.7]), dtype="int32"), np.int32([-2, 0, 2]))
    same(run("cast", x=np.array([True, False]), dtype="fp32"), np.float32([1, 0]))
    same(run("cast", x=np.int32([-3, 0, 5]), dtype="bool"), np.array([True, False, True]))
    with pytest.raises(AssertionError):
        run("cast", x=np.float32([300.0]), dtype="uint8")
    with pytest.raises(AssertionError):
        run("cast", x=np.int32([-1]), dtype="uint16")


# ---------------------------------------------------------------------------------------------
# Reductions

REDUCE_TORCH = {
    "reduce_sum": lambda x, a, k: torch.sum(x, dim=a, keepdim=k),
    "reduce_max": lambda x, a, k: torch.amax(x, dim=a, keepdim=k),
    "reduce_min": lambda x, a, k: torch.amin(x, dim=a, keepdim=k),
    "reduce_prod": lambda x, a, k: _prod(x, a, k),
    "reduce_mean": lambda x, a, k: torch.mean(x, dim=a, keepdim=k),
    "reduce_l1_norm": lambda x, a, k: torch.sum(x.abs(), dim=a, keepdim=k),
    "reduce_l2_norm": lambda x, a, k: torch.sqrt(torch.sum(x * x, dim=a, keepdim=k)),
    "reduce_sum_square": lambda x, a, k: torch.sum(x * x, dim=a, keepdim=k),
    "reduce_log_sum_exp": lambda x, a, k: torch.logsumexp(x, dim=a, keepdim=k),
}


def _prod(x, axes, keep):
    for axis in sorted((a % x.ndim for a in axes), reverse=True):
        x = torch.prod(x, dim=axis, keepdim=keep)
    return x


@pytest.mark.parametrize("name", sorted(REDUCE_TORCH))
@pytest.mark.parametrize("axes,keep", [((1,), False), ((-1, 0), True), (None, False)])
def test_reductions(name, axes, keep):
    x = randn(3, 4, 5)
    params = {"x": x, "keep_dims": np.bool_(keep)}
    if axes is not None:
        params["axes"] = np.int32(axes)
    all_axes = tuple(range(3)) if axes is None else axes
    expected = REDUCE_TORCH[name](torch_of(x), all_axes, keep).numpy()
    close(OPS[name](params), expected, tol=1e-4)


def test_reduce_int32_stays_int32():
    x = np.arange(24, dtype=np.int32).reshape(2, 3, 4) - 10
    same(run("reduce_sum", x=x, axes=np.int32([1])), x.sum(axis=1).astype(np.int32))
    same(run("reduce_max", x=x, axes=np.int32([-1]), keep_dims=np.bool_(True)),
         x.max(axis=-1, keepdims=True))
    same(run("reduce_prod", x=x[:, :, :2] + 20, axes=np.int32([0, 2])),
         np.prod(x[:, :, :2] + 20, axis=(0, 2)).astype(np.int32))


def test_reduce_log_sum():
    x = np.abs(randn(2, 3)) + 0.1
    close(run("reduce_log_sum", x=x, axes=np.int32([1])), np.log(x.sum(axis=1)))


@pytest.mark.parametrize("name,fn", [("reduce_argmax", torch.argmax),
                                     ("reduce_argmin", torch.argmin)])
@pytest.mark.parametrize("axis,keep", [(None, False), (0, True), (-2, False)])
def test_reduce_arg(name, fn, axis, keep):
    x = randn(3, 4, 5)
    params = {"x": x, "keep_dims": np.bool_(keep)}
    if axis is not None:
        params["axis"] = np.int32(axis)
    expected = fn(torch_of(x), dim=-1 if axis is None else axis, keepdim=keep).numpy()
    same(OPS[name](params), expected.astype(np.int32))


def test_reduce_arg_ties_and_uint16():
    x = np.array([[1, 3, 3, 0], [2, 2, 2, 2]], np.float32)
    same(run("reduce_argmax", x=x), np.int32([1, 0]))
    same(run("reduce_argmin", x=x, axis=np.int32(0), output_dtype="uint16"),
         np.uint16([0, 1, 1, 0]))


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("exclusive", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
def test_cumsum(axis, exclusive, reverse):
    x = randn(3, 4, 5)
    t = torch_of(x)
    if reverse:
        t = torch.flip(t, [axis])
    y = torch.cumsum(t, dim=axis)
    if exclusive:
        y = y - t
    if reverse:
        y = torch.flip(y, [axis])
    close(run("cumsum", x=x, axis=np.int32(axis), exclusive=np.bool_(exclusive),
              reverse=np.bool_(reverse)), y.numpy(), tol=1e-4)


def test_cumsum_default_axis_int32():
    x = np.int32([[1, 2], [3, 4], [5, 6]])
    same(run("cumsum", x=x), np.int32([[1, 2], [4, 6], [9, 12]]))
    same(run("cumsum", x=x, exclusive=np.bool_(True)), np.int32([[0, 0], [1, 2], [4, 6]]))


# ---------------------------------------------------------------------------------------------
# topk / argsort

@pytest.mark.parametrize("k,axis,ascending", [(1, -1, False), (3, 1, False), (2, 0, True),
                                              (5, -1, True)])
def test_topk(k, axis, ascending):
    x = randn(4, 6, 5)
    values, indices = run("topk", x=x, k=np.int32(k), axis=np.int32(axis),
                          ascending=np.bool_(ascending))
    ref_values, ref_indices = torch.topk(torch_of(x), k, dim=axis, largest=not ascending)
    close(values, ref_values.numpy())
    same(indices, ref_indices.numpy().astype(np.int32))


def test_topk_options():
    x = np.array([[3, 1, 3, 2]], np.int32)
    values, indices = run("topk", x=x, k=np.int32(2))  # ties: lower index first
    same(values, np.int32([[3, 3]]))
    same(indices, np.int32([[0, 2]]))
    values, indices = run("topk", x=x, k=np.int32(-1), output_indices_dtype="uint16")
    same(values, np.int32([[3, 3, 2, 1]]))
    same(indices, np.uint16([[0, 2, 3, 1]]))
    only = run("topk", x=x.astype(np.float32), return_indices=np.bool_(False))
    same(only, np.float32([[3]]))
    with pytest.raises(AssertionError):
        run("topk", x=x, k=np.int32(5))


def test_argsort():
    x = randn(3, 7)
    same(run("argsort", x=x), torch.argsort(torch_of(x), dim=-1, descending=True)
         .numpy().astype(np.int32))
    same(run("argsort", x=x, axis=np.int32(0), ascending=np.bool_(True)),
         torch.argsort(torch_of(x), dim=0).numpy().astype(np.int32))


# ---------------------------------------------------------------------------------------------
# Shape ops

def test_squeeze():
    x = randn(1, 3, 1, 2, 1)
    same(run("squeeze", x=x), x.reshape(3, 2))
    same(run("squeeze", x=x, axes=np.int32([0, -1])), x.reshape(3, 1, 2))
    same(run("squeeze", x=x, axes=np.int32([1, 2])), x.reshape(1, 3, 2, 1))  # size 3 is kept
    same(run("squeeze", x=np.int32([[7]])), np.array(7, np.int32))


def test_expand_dims():
    x = np.arange(6, dtype=np.int32).reshape(2, 3)
    same(run("expand_dims", x=x, axes=np.int32([0])), x.reshape(1, 2, 3))
    same(run("expand_dims", x=x, axes=np.int32([-1])), x.reshape(2, 3, 1))
    same(run("expand_dims", x=x, axes=np.int32([1, -1])), x.reshape(2, 1, 3, 1))
    same(run("expand_dims", x=x, axes=np.int32([0, 3])), x.reshape(1, 2, 3, 1))
    same(run("expand_dims", x=np.float32(2.0), axes=np.int32([0])), np.float32([2.0]))
    with pytest.raises(AssertionError):
        run("expand_dims", x=x, axes=np.int32([4]))


def test_reverse():
    x = randn(2, 3, 4)
    same(run("reverse", x=x), torch.flip(torch_of(x), [0, 1, 2]).numpy())
    same(run("reverse", x=x, axes=np.int32([-1, 0])), torch.flip(torch_of(x), [2, 0]).numpy())


@pytest.mark.parametrize("case", [
    dict(begin=[1, 0, 2], end=[3, 5, 5], stride=None, masks={}),
    dict(begin=[0, 4, 0], end=[2, 0, 5], stride=[1, -2, 2], masks={}),
    dict(begin=[-2, 1, 0], end=[-1, -1, 3], stride=None, masks={}),
    dict(begin=[9, 9, 9], end=[0, 0, 0], stride=[1, 1, 1],
         masks=dict(begin_mask=[True, True, True], end_mask=[True, True, True])),
    dict(begin=[0, 9, 9], end=[0, 0, 0], stride=[1, -1, -2],
         masks=dict(begin_mask=[True, True, True], end_mask=[True, True, True])),
    dict(begin=[1, -1, 0], end=[0, 0, 4], stride=[1, 1, 3],
         masks=dict(squeeze_mask=[True, True, False])),
    dict(begin=[1, 2, 3], end=[0, 0, 0], stride=None,
         masks=dict(squeeze_mask=[True, True, True])),
    dict(begin=[0, 1, 1], end=[100, 100, -100], stride=[1, 1, -1], masks={}),
])
def test_slice_by_index(case):
    x = randn(3, 5, 6)
    params = {"x": x, "begin": np.int32(case["begin"]), "end": np.int32(case["end"])}
    stride = case["stride"] or [1, 1, 1]
    if case["stride"] is not None:
        params["stride"] = np.int32(stride)
    masks = {k: np.array(v) for k, v in case["masks"].items()}
    params.update(masks)
    index = []
    for i in range(3):
        if masks.get("squeeze_mask", [False] * 3)[i]:
            index.append(case["begin"][i])
            continue
        begin = None if masks.get("begin_mask", [False] * 3)[i] else case["begin"][i]
        end = None if masks.get("end_mask", [False] * 3)[i] else case["end"][i]
        index.append(slice(begin, end, stride[i]))
    same(OPS["slice_by_index"](params), np.asarray(x[tuple(index)]))


def test_slice_by_index_by_hand():
    x = np.arange(10, dtype=np.int32)
    same(run("slice_by_index", x=x, begin=np.int32([8]), end=np.int32([1]),
             stride=np.int32([-3])), np.int32([8, 5, 2]))
    same(run("slice_by_index", x=x, begin=np.int32([-1]), end=np.int32([0]),
             squeeze_mask=np.array([True])), np.array(9, np.int32))


def test_slice_by_size():
    x = randn(4, 5, 6)
    same(run("slice_by_size", x=x, begin=np.int32([1, 0, 2]), size=np.int32([2, -1, 3])),
         x[1:3, :, 2:5])
    same(run("slice_by_size", x=x, begin=np.int32([-1, -3, 0]), size=np.int32([1, 2, -1])),
         x[3:4, 2:4, :])
    with pytest.raises(AssertionError):
        run("slice_by_size", x=x, begin=np.int32([3, 0, 0]), size=np.int32([2, 1, 1]))


# ---------------------------------------------------------------------------------------------
# gather family

@pytest.mark.parametrize("axis", [0, 1, -1, -3])
def test_gather(axis):
    x = randn(4, 5, 6)
    indices = RNG.integers(0, x.shape[axis], size=(2, 3)).astype(np.int32)
    expected = torch.index_select(torch_of(x), axis, torch_of(indices.reshape(-1)).long())
    shape = list(x.shape)
    shape[axis % 3:axis % 3 + 1] = [2, 3]
    same(run("gather", x=x, indices=indices, axis=np.int32(axis)), expected.numpy().reshape(shape))


def test_gather_scalar_index_and_default_axis():
    x = np.arange(12, dtype=np.int32).reshape(3, 4)
    same(run("gather", x=x, indices=np.int32(2)), np.int32([8, 9, 10, 11]))
    same(run("gather", x=x, indices=np.int32(-1), axis=np.int32(1)), np.int32([3, 7, 11]))


def test_gather_negative_indices_by_opset():
    x = np.arange(5, dtype=np.float32)
    for ios in (15, 16):
        same(run("gather", x=x, indices=np.int32([-1, -5, 0]), _ios=ios), np.float32([4, 0, 0]))
    with pytest.raises(AssertionError):  # iOS17: negative indices are out of bounds
        run("gather", x=x, indices=np.int32([-1]), _ios=17)
    same(run("gather", x=x, indices=np.int32([4]), _ios=17), np.float32([4]))
    with pytest.raises(AssertionError):
        run("gather", x=x, indices=np.int32([5]))
    with pytest.raises(AssertionError):
        run("gather", x=x, indices=np.int32([-6]))


def test_gather_batch_dims():
    x = randn(2, 3, 5, 4)
    indices = RNG.integers(0, 5, size=(2, 3, 7)).astype(np.int32)
    result = run("gather", x=x, indices=indices, axis=np.int32(2), batch_dims=np.int32(2))
    assert result.shape == (2, 3, 7, 4)
    for a in range(2):
        for b in range(3):
            same(result[a, b], x[a, b][indices[a, b]])
    # batch_dims=1 with axis 2: K = D[:2] + N[1:] + D[3:]
    indices = RNG.integers(0, 5, size=(2, 6)).astype(np.int32)
    result = run("gather", x=x, indices=indices, axis=np.int32(-2), batch_dims=np.int32(1))
    assert result.shape == (2, 3, 6, 4)
    for a in range(2):
        same(result[a], x[a][:, indices[a]])


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_gather_along_axis(axis):
    x = randn(3, 4, 5)
    shape = list(x.shape)
    shape[axis] = 7
    indices = RNG.integers(0, x.shape[axis], size=shape).astype(np.int32)
    expected = torch.gather(torch_of(x), axis, torch_of(indices).long())
    same(run("gather_along_axis", x=x, indices=indices, axis=np.int32(axis)), expected.numpy())


def test_gather_along_axis_negative_and_checks():
    x = np.float32([[1, 2, 3], [4, 5, 6]])
    same(run("gather_along_axis", x=x, indices=np.int32([[-1, 0], [1, -3]]), axis=np.int32(1)),
         np.float32([[3, 1], [5, 4]]))
    with pytest.raises(AssertionError):
        run("gather_along_axis", x=x, indices=np.int32([[-1, 0], [1, 0]]), axis=np.int32(1),
            _ios=17)
    with pytest.raises(AssertionError):  # non-axis dimensions must match
        run("gather_along_axis", x=x, indices=np.int32([[0, 0]]), axis=np.int32(1))


def test_gather_nd():
    x = randn(3, 4, 5)
    indices = np.int32([[[0, 1], [2, 3]], [[1, 0], [2, -1]]])  # [2, 2, 2]: K[-1] = 2
    result = run("gather_nd", x=x, indices=indices)
    expected = np.stack([np.stack([x[0, 1], x[2, 3]]), np.stack([x[1, 0], x[2, 3]])])
    same(result, expected)
    full = run("gather_nd", x=x, indices=np.int32([[2, 3, 4], [0, 0, 1]]))
    same(full, np.float32([x[2, 3, 4], x[0, 0, 1]]))
    with pytest.raises(AssertionError):
        run("gather_nd", x=x, indices=np.int32([[0, -1]]), _ios=17)


def test_gather_nd_batch_dims():
    x = randn(2, 4, 5, 3)
    indices = RNG.integers(0, 4, size=(2, 6, 2)).astype(np.int32)
    result = run("gather_nd", x=x, indices=indices, batch_dims=np.int32(1))
    assert result.shape == (2, 6, 3)  # K[:-1] + D[1 + 2:]
    for b in range(2):
        for j in range(6):
            same(result[b, j], x[b, indices[b, j, 0], indices[b, j, 1]])


# ---------------------------------------------------------------------------------------------
# split / stack / concat / tile / pad

def test_split():
    x = randn(2, 9, 3)
    parts = run("split", x=x, num_splits=np.int32(3), axis=np.int32(1))
    assert isinstance(parts, tuple) and len(parts) == 3
    for part, ref in zip(parts, torch.split(torch_of(x), 3, dim=1)):
        same(part, ref.numpy())
    parts = run("split", x=x, split_sizes=np.int32([2, 5, 2]), axis=np.int32(-2))
    for part, ref in zip(parts, torch.split(torch_of(x), [2, 5, 2], dim=1)):
        same(part, ref.numpy())
    (whole,) = run("split", x=x, num_splits=np.int32(1), axis=np.int32(0))
    same(whole, x)
    with pytest.raises(AssertionError):
        run("split", x=x, num_splits=np.int32(2), axis=np.int32(1))
    with pytest.raises(AssertionError):
        run("split", x=x, split_sizes=np.int32([2, 2]), axis=np.int32(1))


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -3])
def test_stack(axis):
    values = [randn(3, 4) for _ in range(3)]
    expected = torch.stack([torch_of(v) for v in values], dim=axis).numpy()
    same(run("stack", values=values, axis=np.int32(axis)), expected)


def test_stack_int_and_scalars():
    same(run("stack", values=[np.int32(1), np.int32(2)], axis=np.int32(0)), np.int32([1, 2]))


def test_concat_interleave_and_int():
    a, b = np.int32([[1, 2], [3, 4], [5, 6]]), np.int32([[7, 8], [9, 10], [11, 12]])
    same(run("concat", values=[a, b], axis=np.int32(0), interleave=np.bool_(True)),
         np.int32([[1, 2], [7, 8], [3, 4], [9, 10], [5, 6], [11, 12]]))
    same(run("concat", values=[a, b], axis=np.int32(-1)), np.concatenate([a, b], axis=1))


def test_tile():
    x = randn(2, 3)
    same(run("tile", x=x, reps=np.int32([3, 1])), torch_of(x).repeat(3, 1).numpy())
    same(run("tile", x=x, reps=np.int32([2, 4])), torch_of(x).repeat(2, 4).numpy())
    with pytest.raises(AssertionError):
        run("tile", x=x, reps=np.int32([2]))


@pytest.mark.parametrize("mode,torch_mode", [("constant", "constant"), ("reflect", "reflect"),
                                             ("replicate", "replicate")])
@pytest.mark.parametrize("pad", [[1, 2], [2, 0, 1, 3]])
def test_pad(mode, torch_mode, pad):
    x = randn(1, 2, 4, 5)
    params = {"x": x, "pad": np.int32(pad), "mode": mode}
    kwargs = {}
    if mode == "constant":
        params["constant_val"] = np.float32(-1.5)
        kwargs["value"] = -1.5
    # F.pad lists the last dimension first; MIL lists dimensions in order.
    torch_pad = [v for pair in reversed(list(zip(pad[0::2], pad[1::2]))) for v in pair]
    reference = torch_of(x)
    if len(pad) == 2 and mode != "constant":  # PyTorch 1.13 pads 1 dimension of 3-D inputs only
        reference = reference.reshape(1, -1, x.shape[-1])
    expected = F.pad(reference, torch_pad, mode=torch_mode, **kwargs).numpy()
    same(OPS["pad"](params), expected.reshape(x.shape[:-1] + expected.shape[-1:]) if
         len(pad) == 2 and mode != "constant" else expected)


def test_pad_defaults_and_limits():
    x = np.float32([[1, 2, 3]])
    same(run("pad", x=x, pad=np.int32([0, 1, 2, 0])), np.float32([[0, 0, 1, 2, 3], [0] * 5]))
    with pytest.raises(AssertionError):
        run("pad", x=x, pad=np.int32([3, 0]), mode="reflect")


def test_fill_and_fill_like():
    same(run("fill", shape=np.int32([2, 3])), np.zeros((2, 3), np.float32))
    same(run("fill", shape=np.int32([4]), value=np.int32(7)), np.full(4, 7, np.int32))
    same(run("fill", shape=np.int32([1, 2]), value=np.bool_(True)), np.ones((1, 2), np.bool_))
    same(run("fill_like", ref_tensor=randn(3, 1), value=np.float16(2)),
         np.full((3, 1), 2, np.float16))


@pytest.mark.parametrize("start,end,step", [(0, 10, 3), (5, -4, -2), (2, 2, 1), (-3, 7, 1)])
def test_range_1d_int(start, end, step):
    same(run("range_1d", start=np.int32(start), end=np.int32(end), step=np.int32(step)),
         torch.arange(start, end, step, dtype=torch.int32).numpy())


def test_range_1d_float():
    result = run("range_1d", start=np.float32(0.5), end=np.float32(2.0), step=np.float32(0.4))
    close(result, [0.5, 0.9, 1.3, 1.7])
    result = run("range_1d", start=np.float32(1), end=np.float32(-1), step=np.float32(-0.5))
    close(result, [1, 0.5, 0, -0.5])


def test_band_part():
    x = randn(2, 4, 5)
    same(run("band_part", x=x, lower=np.int32(1), upper=np.int32(0)),
         np.tril(np.triu(x, -1), 0))
    same(run("band_part", x=x, lower=np.int32(-1), upper=np.int32(2)), np.triu(x, -100) *
         (np.arange(5)[None, :] - np.arange(4)[:, None] <= 2))
    same(run("band_part", x=x), x)


# ---------------------------------------------------------------------------------------------
# Space/depth rearrangements

@pytest.mark.parametrize("factor", [2, 3])
def test_pixel_shuffle_and_unshuffle(factor):
    x = randn(2, 2 * factor * factor, 3, 4)
    same(run("pixel_shuffle", x=x, upscale_factor=np.int32(factor)),
         F.pixel_shuffle(torch_of(x), factor).numpy())
    y = randn(2, 3, 3 * factor, 2 * factor)
    same(run("pixel_unshuffle", x=y, downscale_factor=np.uint32(factor)),
         F.pixel_unshuffle(torch_of(y), factor).numpy())


def test_depth_to_space_dcr_by_hand():
    b, c_out = 2, 3
    x = np.arange(1 * c_out * b * b * 2 * 2, dtype=np.float32).reshape(1, c_out * b * b, 2, 2)
    y = run("depth_to_space", x=x, block_size=np.int32(b))
    assert y.shape == (1, c_out, 4, 4)
    for c in range(c_out):
        for h in range(2):
            for w in range(2):
                for i in range(b):
                    for j in range(b):
                        assert y[0, c, h * b + i, w * b + j] == x[0, (i * b + j) * c_out + c, h, w]
    # space_to_depth inverts it
    same(run("space_to_depth", x=y, block_size=np.int32(b)), x)


def test_space_to_depth_vs_pixel_unshuffle_permutation():
    x = randn(1, 3, 6, 9)
    y = run("space_to_depth", x=x, block_size=np.int32(3))
    # PyTorch's pixel_unshuffle orders channels (c, i, j); TensorFlow's DCR orders (i, j, c).
    ref = F.pixel_unshuffle(torch_of(x), 3).numpy().reshape(1, 3, 9, 2, 3)
    same(y, ref.transpose(0, 2, 1, 3, 4).reshape(1, 27, 2, 3))


# ---------------------------------------------------------------------------------------------
# Normalization

def test_instance_norm():
    x = randn(2, 3, 5, 4)
    gamma, beta = randn(3), randn(3)
    expected = F.instance_norm(torch_of(x), weight=torch_of(gamma), bias=torch_of(beta), eps=1e-3)
    close(run("instance_norm", x=x, gamma=gamma, beta=beta, epsilon=np.float32(1e-3)),
          expected.numpy(), tol=1e-4)
    x3 = randn(2, 3, 7)
    close(run("instance_norm", x=x3), F.instance_norm(torch_of(x3), eps=1e-5).numpy(), tol=1e-4)


def test_l2_norm():
    x = randn(2, 3, 4, 5)
    flat = x.reshape(2, -1)
    expected = flat / np.sqrt((flat ** 2).sum(axis=1, keepdims=True) + 1e-6)
    close(run("l2_norm", x=x), expected.reshape(x.shape))
    x3 = randn(3, 2, 2)
    close(run("l2_norm", x=x3, epsilon=np.float32(1.0)), x3 / np.sqrt((x3 ** 2).sum() + 1.0))
    ref = F.normalize(torch_of(x.reshape(2, -1)), dim=1).numpy().reshape(x.shape)
    close(run("l2_norm", x=x, epsilon=np.float32(0.0)), ref)


# ---------------------------------------------------------------------------------------------
# Pooling with ceil_mode, same_lower, l2_pool

@pytest.mark.parametrize("kernel,stride,pad", [(2, 2, 0), (3, 2, 1), (3, 3, 0), (2, 3, 1),
                                               (3, 2, 0)])
@pytest.mark.parametrize("size", [(7, 8), (5, 5)])
def test_max_pool_ceil_mode(kernel, stride, pad, size):
    x = randn(1, 2, *size)
    params = {"x": x, "kernel_sizes": np.int32([kernel] * 2), "strides": np.int32([stride] * 2),
              "pad_type": "custom", "pad": np.int32([pad] * 4), "ceil_mode": np.bool_(True)}
    expected = F.max_pool2d(torch_of(x), kernel, stride, pad, ceil_mode=True).numpy()
    same(OPS["max_pool"](params), expected)


@pytest.mark.parametrize("kernel,stride,pad", [(2, 2, 0), (3, 2, 1), (3, 3, 1), (2, 3, 1)])
@pytest.mark.parametrize("exclude", [False, True])
def test_avg_pool_ceil_mode(kernel, stride, pad, exclude):
    x = randn(2, 3, 7, 6)
    params = {"x": x, "kernel_sizes": np.int32([kernel] * 2), "strides": np.int32([stride] * 2),
              "pad_type": "custom", "pad": np.int32([pad] * 4), "ceil_mode": np.bool_(True),
              "exclude_padding_from_average": np.bool_(exclude)}
    expected = F.avg_pool2d(torch_of(x), kernel, stride, pad, ceil_mode=True,
                            count_include_pad=not exclude).numpy()
    close(OPS["avg_pool"](params), expected)


def test_pool_ceil_mode_1d_valid_and_floor():
    x = randn(1, 1, 10)
    params = {"x": x, "kernel_sizes": np.int32([3]), "strides": np.int32([4]),
              "pad_type": "valid", "ceil_mode": np.bool_(True)}
    close(OPS["avg_pool"](params), F.avg_pool1d(torch_of(x), 3, 4, ceil_mode=True).numpy())
    params["ceil_mode"] = np.bool_(False)
    close(OPS["max_pool"](params), F.max_pool1d(torch_of(x), 3, 4).numpy())
    with pytest.raises(AssertionError):  # ceil_mode needs symmetric padding
        OPS["max_pool"](dict(params, ceil_mode=np.bool_(True), pad_type="custom",
                             pad=np.int32([0, 1])))


def test_pool_same_lower():
    x = randn(1, 1, 4)
    params = {"x": x, "kernel_sizes": np.int32([2]), "strides": np.int32([1]),
              "pad_type": "same_lower"}
    padded = np.concatenate([[-np.inf], x.reshape(-1)])  # the odd pad goes first
    expected = np.maximum(padded[:-1], padded[1:]).reshape(1, 1, 4)
    same(OPS["max_pool"](params), expected.astype(np.float32))
    same_upper = OPS["max_pool"](dict(params, pad_type="same"))
    padded = np.concatenate([x.reshape(-1), [-np.inf]])
    same(same_upper, np.maximum(padded[:-1], padded[1:]).reshape(1, 1, 4).astype(np.float32))


def test_l2_pool():
    x = randn(1, 2, 5, 5)
    params = {"x": x, "kernel_sizes": np.int32([2, 2]), "strides": np.int32([2, 2]),
              "pad_type": "valid"}
    expected = F.lp_pool2d(torch_of(x), 2, 2, 2).numpy()
    close(OPS["l2_pool"](params), expected, tol=1e-5)


# ---------------------------------------------------------------------------------------------
# Resizing

@pytest.mark.parametrize("scale_h,scale_w", [(2, 3), (1, 2), (2.0, 1.5), (0.5, 2)])
def test_upsample_nearest_neighbor(scale_h, scale_w):
    x = randn(2, 3, 4, 6)
    params = {"x": x, "scale_factor_height": np.float32(scale_h),
              "scale_factor_width": np.float32(scale_w)}
    expected = F.interpolate(torch_of(x), scale_factor=(scale_h, scale_w), mode="nearest")
    same(OPS["upsample_nearest_neighbor"](params), expected.numpy())


def test_upsample_nearest_neighbor_int_scale_default():
    x = randn(1, 2, 3)
    same(run("upsample_nearest_neighbor", x=x, scale_factor_height=np.int32(2)),
         np.repeat(x, 2, axis=1))
    same(run("upsample_nearest_neighbor", x=x), x)


@pytest.mark.parametrize("out_h,out_w", [(7, 5), (8, 12), (2, 3), (1, 1)])
def test_resize_nearest_neighbor(out_h, out_w):
    x = randn(1, 2, 4, 6)
    expected = F.interpolate(torch_of(x), size=(out_h, out_w), mode="nearest-exact").numpy()
    same(run("resize_nearest_neighbor", x=x, target_size_height=np.int32(out_h),
             target_size_width=np.int32(out_w)), expected)


@pytest.mark.parametrize("scale", [(2, 2), (3, 1.5), (2.5, 2)])
@pytest.mark.parametrize("align", [True, False])
def test_upsample_bilinear(scale, align):
    x = randn(2, 3, 4, 5)
    out = tuple(int(math.floor(s * n)) for s, n in zip(scale, x.shape[2:]))
    params = {"x": x, "scale_factor_height": np.float32(scale[0]),
              "scale_factor_width": np.float32(scale[1]), "align_corners": np.bool_(align)}
    expected = F.interpolate(torch_of(x), size=out, mode="bilinear", align_corners=align).numpy()
    close(OPS["upsample_bilinear"](params), expected, tol=1e-5)


def test_upsample_bilinear_half_pixel_centers():
    x = randn(1, 1, 3, 4)
    # iOS16: align_corners=False, half_pixel_centers=False samples at i * in / out.
    result = run("upsample_bilinear", x=x, scale_factor_height=np.int32(2),
                 scale_factor_width=np.int32(2), align_corners=np.bool_(False),
                 half_pixel_centers=np.bool_(False))
    expected = x
    for axis in (2, 3):
        size = x.shape[axis]
        grid = np.arange(2 * size) / 2.0
        low = np.floor(grid).astype(int)
        high = np.minimum(low + 1, size - 1)
        frac = (grid - low).reshape([-1 if a == axis else 1 for a in range(4)])
        expected = np.take(expected, low, axis) * (1 - frac) + np.take(expected, high, axis) * frac
    close(result, expected)
    default = run("upsample_bilinear", x=x, scale_factor_height=np.int32(2),
                  scale_factor_width=np.int32(2), align_corners=np.bool_(False))
    close(default, F.interpolate(torch_of(x), scale_factor=2, mode="bilinear",
                                 align_corners=False).numpy())
    with pytest.raises(NotImplementedError):
        run("upsample_bilinear", x=x, align_corners=np.bool_(True),
            half_pixel_centers=np.bool_(True))


@pytest.mark.parametrize("mode,size_out,grid", [
    # The grids printed in the MIL resize_bilinear docs, for Xin = 2.
    ("UNALIGN_CORNERS", 5, [0., 0.1, 0.5, 0.9, 1.]),
    ("STRICT_ALIGN_CORNERS", 5, [0., 0.25, 0.5, 0.75, 1.]),
    ("ALIGN_CORNERS", 5, [0., 0.25, 0.5, 0.75, 1.]),
    ("DEFAULT", 5, [0., 0.4, 0.8, 1., 1.]),
    ("OFFSET_CORNERS", 5, [0.1, 0.3, 0.5, 0.7, 0.9]),
    ("UNALIGN_CORNERS", 6, [0., 0., 1 / 3, 2 / 3, 1., 1.]),
    ("STRICT_ALIGN_CORNERS", 6, [0., 0.2, 0.4, 0.6, 0.8, 1.]),
    ("DEFAULT", 6, [0., 1 / 3, 2 / 3, 1., 1., 1.]),
    ("OFFSET_CORNERS", 6, [1 / 12, 0.25, 5 / 12, 7 / 12, 0.75, 11 / 12]),
    ("ALIGN_CORNERS", 1, [0.5]),
    ("STRICT_ALIGN_CORNERS", 1, [0.0]),
])
def test_resize_bilinear_documented_grids(mode, size_out, grid):
    # x = [0, 1] along width: the output is the grid itself; height 1 stays 1.
    x = np.float32([[[0.0, 1.0]]])
    result = run("resize_bilinear", x=x, target_size_height=np.int32(1),
                 target_size_width=np.int32(size_out), sampling_mode=mode)
    close(result, np.float32(grid).reshape(1, 1, -1), tol=1e-6)


@pytest.mark.parametrize("out", [(7, 3), (2, 9)])
def test_resize_bilinear_vs_torch(out):
    x = randn(2, 3, 4, 5)
    close(run("resize_bilinear", x=x, target_size_height=np.int32(out[0]),
              target_size_width=np.int32(out[1]), sampling_mode="UNALIGN_CORNERS"),
          F.interpolate(torch_of(x), size=out, mode="bilinear", align_corners=False).numpy())
    close(run("resize_bilinear", x=x, target_size_height=np.int32(out[0]),
              target_size_width=np.int32(out[1]), sampling_mode="STRICT_ALIGN_CORNERS"),
          F.interpolate(torch_of(x), size=out, mode="bilinear", align_corners=True).numpy())


def test_resize_ios17():
    x = randn(1, 2, 3, 4)
    close(run("resize", x=x, shape=np.int32([1, 6, 0]), resized_dims=np.uint32(2),
              sampling_mode="UNALIGN_CORNERS"),
          F.interpolate(torch_of(x), size=(6, 4), mode="bilinear", align_corners=False).numpy())
    same(run("resize", x=x, shape=np.int32([5, 7]), resized_dims=np.uint32(2),
             interpolation_mode="NEAREST_NEIGHBOR"),
         F.interpolate(torch_of(x), size=(5, 7), mode="nearest-exact").numpy())
    close(run("resize", x=x, shape=np.int32([9]), resized_dims=np.uint32(1),
              sampling_mode="STRICT_ALIGN_CORNERS"),
          F.interpolate(torch_of(x.reshape(1, 6, 4)), size=9, mode="linear",
                        align_corners=True).numpy().reshape(1, 2, 3, 9))
    with pytest.raises(NotImplementedError):
        run("resize", x=x, shape=np.int32([5, 7]), resized_dims=np.uint32(2),
            interpolation_mode="NEAREST_NEIGHBOR", sampling_mode="ALIGN_CORNERS")


# ---------------------------------------------------------------------------------------------
# einsum

@pytest.mark.parametrize("equation", ["nchw,nwhu->nchu", "abcd,adce->abce", "nwhu,nchw->nchu"])
def test_einsum_rank4(equation):
    a, b = randn(2, 3, 4, 5), randn(2, 5, 4, 6)
    expected = torch.einsum("nchw,nwhu->nchu", torch_of(a), torch_of(b)).numpy()
    values = [b, a] if equation.startswith("nwhu") else [a, b]
    close(run("einsum", values=values, equation=equation), expected, tol=1e-4)


def test_einsum_rank4_broadcast():
    a, b = randn(1, 3, 4, 5), randn(2, 5, 1, 6)
    expected = torch.einsum("nchw,nwhu->nchu", torch_of(np.broadcast_to(a, (2, 3, 4, 5))),
                            torch_of(np.broadcast_to(b, (2, 5, 4, 6)).copy()))
    close(run("einsum", values=[a, b], equation="nchw,nwhu->nchu"), expected.numpy(), tol=1e-4)


def test_einsum_rank3():
    a, b = randn(3, 4, 5), randn(5, 4, 7)
    expected = torch.einsum("chw,whr->chr", torch_of(a), torch_of(b)).numpy()
    close(run("einsum", values=[a, b], equation="chw,whr->chr"), expected, tol=1e-4)
    close(run("einsum", values=[a, b], equation="xyz, zyq -> xyq"), expected, tol=1e-4)


@pytest.mark.parametrize("equation", ["ij,jk->ik", "nchw,nwhu->nhcu", "nchw,nchu->nchw",
                                      "chw,whc->chc", "bhqd,bhkd->bhqk"])
def test_einsum_rejects_other_equations(equation):
    with pytest.raises(NotImplementedError):
        run("einsum", values=[randn(2, 2, 2, 2), randn(2, 2, 2, 2)], equation=equation)


# ---------------------------------------------------------------------------------------------
# Recurrent layers. PyTorch orders LSTM gates (i, f, g, o) and GRU gates (r, z, n); MIL orders
# them (i, f, o, z) and (r, o, z).

def torch_lstm_to_mil(w, hidden):
    i, f, g, o = (w[k * hidden:(k + 1) * hidden] for k in range(4))
    return np.concatenate([i, f, o, g])


def torch_gru_to_mil(w, hidden):
    r, z, n = (w[k * hidden:(k + 1) * hidden] for k in range(3))
    return np.concatenate([r, n, z])


def lstm_params(module, suffix, hidden):
    get = lambda name: getattr(module, name + suffix).detach().numpy()  # noqa: E731
    return (torch_lstm_to_mil(get("weight_ih_l0"), hidden),
            torch_lstm_to_mil(get("weight_hh_l0"), hidden),
            torch_lstm_to_mil(get("bias_ih_l0") + get("bias_hh_l0"), hidden))


@pytest.mark.parametrize("output_sequence", [True, False])
@pytest.mark.parametrize("seq,batch,inp,hidden", [(5, 3, 4, 6), (1, 1, 3, 2), (4, 2, 1, 5)])
def test_lstm_forward(output_sequence, seq, batch, inp, hidden):
    torch.manual_seed(seq * 100 + hidden)
    module = torch.nn.LSTM(inp, hidden)
    x, h0, c0 = randn(seq, batch, inp), randn(batch, hidden), randn(batch, hidden)
    w_ih, w_hh, bias = lstm_params(module, "", hidden)
    y, h, c = run("lstm", x=x, initial_h=h0, initial_c=c0, weight_ih=w_ih, weight_hh=w_hh,
                  bias=bias, output_sequence=np.bool_(output_sequence))
    with torch.no_grad():
        ref_y, (ref_h, ref_c) = module(torch_of(x), (torch_of(h0[None]), torch_of(c0[None])))
    close(y, ref_y.numpy() if output_sequence else ref_y.numpy()[-1:], tol=1e-5)
    close(h, ref_h.numpy()[0], tol=1e-5)
    close(c, ref_c.numpy()[0], tol=1e-5)


@pytest.mark.parametrize("output_sequence", [True, False])
def test_lstm_bidirectional_and_reverse(output_sequence):
    seq, batch, inp, hidden = 6, 2, 3, 4
    torch.manual_seed(7)
    module = torch.nn.LSTM(inp, hidden, bidirectional=True)
    x = randn(seq, batch, inp)
    h0, c0 = randn(2, batch, hidden), randn(2, batch, hidden)
    forward, backward = lstm_params(module, "", hidden), lstm_params(module, "_reverse", hidden)
    y, h, c = run("lstm", x=x, initial_h=np.concatenate(h0, axis=-1),
                  initial_c=np.concatenate(c0, axis=-1), weight_ih=forward[0],
                  weight_hh=forward[1], bias=forward[2], weight_ih_back=backward[0],
                  weight_hh_back=backward[1], bias_back=backward[2], direction="bidirectional",
                  output_sequence=np.bool_(output_sequence))
    with torch.no_grad():
        ref_y, (ref_h, ref_c) = module(torch_of(x), (torch_of(h0), torch_of(c0)))
    ref_h = np.concatenate(ref_h.numpy(), axis=-1)
    close(y, ref_y.numpy() if output_sequence else ref_h[None], tol=1e-5)
    close(h, ref_h, tol=1e-5)
    close(c, np.concatenate(ref_c.numpy(), axis=-1), tol=1e-5)
    # direction="reverse" with the backward weights is the backward half.
    y, h, c = run("lstm", x=x, initial_h=h0[1], initial_c=c0[1], weight_ih=backward[0],
                  weight_hh=backward[1], bias=backward[2], direction="reverse",
                  output_sequence=np.bool_(True))
    close(y, ref_y.numpy()[..., hidden:], tol=1e-5)
    close(h, ref_h[:, hidden:], tol=1e-5)


def test_lstm_no_bias_and_activations():
    seq, batch, inp, hidden = 3, 2, 2, 3
    torch.manual_seed(3)
    module = torch.nn.LSTM(inp, hidden, bias=False)
    x, h0, c0 = randn(seq, batch, inp), randn(batch, hidden), randn(batch, hidden)
    w_ih = torch_lstm_to_mil(module.weight_ih_l0.detach().numpy(), hidden)
    w_hh = torch_lstm_to_mil(module.weight_hh_l0.detach().numpy(), hidden)
    y, h, c = run("lstm", x=x, initial_h=h0, initial_c=c0, weight_ih=w_ih, weight_hh=w_hh,
                  output_sequence=np.bool_(True))
    with torch.no_grad():
        ref_y, _ = module(torch_of(x), (torch_of(h0[None]), torch_of(c0[None])))
    close(y, ref_y.numpy(), tol=1e-5)
    # relu cell/output activations, by hand for one step
    y, h, c = run("lstm", x=x[:1], initial_h=h0, initial_c=c0, weight_ih=w_ih, weight_hh=w_hh,
                  cell_activation="relu", activation="relu", recurrent_activation="tanh")
    g = x[0] @ w_ih.T + h0 @ w_hh.T
    i, f, o, z = np.tanh(g[:, :3]), np.tanh(g[:, 3:6]), np.tanh(g[:, 6:9]), np.maximum(g[:, 9:], 0)
    ref_c = f * c0 + i * z
    close(c, ref_c)
    close(h, o * np.maximum(ref_c, 0))
    with pytest.raises(NotImplementedError):
        run("lstm", x=x, initial_h=h0, initial_c=c0, weight_ih=w_ih, weight_hh=w_hh,
            recurrent_activation="hard_sigmoid")


def test_lstm_peephole_and_clip_by_hand():
    """H = I = 1, one step, worked out from the Core ML LSTM equations: peepholes on c_t-1 for
    the input and forget gates and on c_t for the output gate."""
    x = np.float32([[[0.5]]])
    h0, c0 = np.float32([[0.2]]), np.float32([[-0.4]])
    w_ih = np.float32([[1.0], [2.0], [-1.0], [0.5]])  # i, f, o, z
    w_hh = np.float32([[0.3], [-0.2], [0.1], [1.5]])
    bias = np.float32([0.1, 0.2, 0.3, -0.1])
    peep = np.float32([0.7, -0.3, 0.9])  # i, f, o
    s = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    i = s(0.5 * 1.0 + 0.2 * 0.3 + 0.1 + 0.7 * -0.4)
    f = s(0.5 * 2.0 + 0.2 * -0.2 + 0.2 + -0.3 * -0.4)
    z = math.tanh(0.5 * 0.5 + 0.2 * 1.5 - 0.1)
    c = f * -0.4 + i * z
    o = s(0.5 * -1.0 + 0.2 * 0.1 + 0.3 + 0.9 * c)
    h = o * math.tanh(c)
    y, h1, c1 = run("lstm", x=x, initial_h=h0, initial_c=c0, weight_ih=w_ih, weight_hh=w_hh,
                    bias=bias, peephole=peep)
    close(c1, [[c]])
    close(h1, [[h]])
    close(y, [[[h]]])
    # clip bounds every gate pre-activation: with clip=0.1 every gate sees at most +-0.1.
    y, h2, c2 = run("lstm", x=x, initial_h=h0, initial_c=c0, weight_ih=w_ih, weight_hh=w_hh,
                    bias=bias, peephole=peep, clip=np.float32(0.1))
    pre_i, pre_f, pre_z = [max(-0.1, min(0.1, v)) for v in (0.5 + 0.06 + 0.1 - 0.28,
                                                            1.0 - 0.04 + 0.2 + 0.12,
                                                            0.25 + 0.3 - 0.1)]
    c = s(pre_f) * -0.4 + s(pre_i) * math.tanh(pre_z)
    o = s(max(-0.1, min(0.1, -0.5 + 0.02 + 0.3 + 0.9 * c)))
    close(c2, [[c]])
    close(h2, [[o * math.tanh(c)]])


@pytest.mark.parametrize("direction", ["forward", "reverse"])
@pytest.mark.parametrize("output_sequence", [True, False])
def test_gru(direction, output_sequence):
    seq, batch, inp, hidden = 5, 3, 4, 6
    torch.manual_seed(11)
    module = torch.nn.GRU(inp, hidden, bidirectional=True)
    # MIL's GRU adds one bias outside the reset product; PyTorch's b_hn sits inside it, so the
    # reference runs with b_hn = 0 and MIL's b_o = b_in.
    with torch.no_grad():
        module.bias_hh_l0[2 * hidden:] = 0
        module.bias_hh_l0_reverse[2 * hidden:] = 0
    suffix = "_reverse" if direction == "reverse" else ""
    get = lambda name: getattr(module, name + suffix).detach().numpy()  # noqa: E731
    w_ih = torch_gru_to_mil(get("weight_ih_l0"), hidden)
    w_hh = torch_gru_to_mil(get("weight_hh_l0"), hidden)
    bias = torch_gru_to_mil(get("bias_ih_l0") + get("bias_hh_l0"), hidden)
    x, h0 = randn(seq, batch, inp), randn(2, batch, hidden)
    half = 1 if direction == "reverse" else 0
    y, h = run("gru", x=x, initial_h=h0[half], weight_ih=w_ih, weight_hh=w_hh, bias=bias,
               direction=direction, output_sequence=np.bool_(output_sequence))
    with torch.no_grad():
        ref_y, ref_h = module(torch_of(x), torch_of(h0))
    ref_y = ref_y.numpy()[..., half * hidden:(half + 1) * hidden]
    close(h, ref_h.numpy()[half], tol=1e-5)
    close(y, ref_y if output_sequence else ref_h.numpy()[half][None], tol=1e-5)


def test_gru_bias_outside_reset_by_hand():
    x, h0 = np.float32([[[1.0]]]), np.float32([[0.5]])
    w_ih = np.float32([[0.2], [0.4], [-0.3]])  # r, o, z
    w_hh = np.float32([[0.1], [0.6], [0.8]])
    bias = np.float32([0.05, 0.3, -0.2])
    s = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    r = s(0.2 + 0.05 + 0.05)
    z = s(-0.3 + 0.4 - 0.2)
    o = math.tanh(0.4 + r * 0.3 + 0.3)
    y, h = run("gru", x=x, initial_h=h0, weight_ih=w_ih, weight_hh=w_hh, bias=bias)
    close(h, [[(1 - z) * o + z * 0.5]])
    close(y, [[[(1 - z) * o + z * 0.5]]])
    with pytest.raises(NotImplementedError):
        run("gru", x=x, initial_h=h0, weight_ih=w_ih, weight_hh=w_hh, reset_after=np.bool_(True))


@pytest.mark.parametrize("activation,torch_nonlinearity", [("tanh", "tanh"), ("relu", "relu")])
@pytest.mark.parametrize("output_sequence", [True, False])
def test_rnn(activation, torch_nonlinearity, output_sequence):
    seq, batch, inp, hidden = 4, 2, 3, 5
    torch.manual_seed(5)
    module = torch.nn.RNN(inp, hidden, nonlinearity=torch_nonlinearity)
    x, h0 = randn(seq, batch, inp), randn(batch, hidden)
    y, h = run("rnn", x=x, initial_h=h0, weight_ih=module.weight_ih_l0.detach().numpy(),
               weight_hh=module.weight_hh_l0.detach().numpy(),
               bias=(module.bias_ih_l0 + module.bias_hh_l0).detach().numpy(),
               activation=activation, output_sequence=np.bool_(output_sequence))
    with torch.no_grad():
        ref_y, ref_h = module(torch_of(x), torch_of(h0[None]))
    close(y, ref_y.numpy() if output_sequence else ref_y.numpy()[-1:], tol=1e-5)
    close(h, ref_h.numpy()[0], tol=1e-5)


def test_rnn_reverse():
    x, h0 = randn(3, 1, 2), randn(1, 2)
    w_ih, w_hh, bias = randn(2, 2), randn(2, 2), randn(2)
    y, h = run("rnn", x=x, initial_h=h0, weight_ih=w_ih, weight_hh=w_hh, bias=bias,
               direction="reverse", output_sequence=np.bool_(True))
    state, expected = h0, [None] * 3
    for t in (2, 1, 0):
        state = np.tanh(x[t] @ w_ih.T + state @ w_hh.T + bias)
        expected[t] = state
    close(y, np.stack(expected))
    close(h, expected[0])


# ---------------------------------------------------------------------------------------------
# The run loop: programs built in memory.

def value_type(dtype, shape):
    vt = MIL_pb2.ValueType()
    vt.tensorType.dataType = dtype
    vt.tensorType.rank = len(shape)
    for size in shape:
        vt.tensorType.dimensions.add().constant.size = size
    return vt


def immediate(array, dtype):
    array = np.asarray(array)
    value = MIL_pb2.Value()
    value.type.CopyFrom(value_type(dtype, array.shape))
    tensor = value.immediateValue.tensor
    if dtype == MIL_pb2.STRING:
        tensor.strings.values.append(str(array))
    elif dtype == MIL_pb2.BOOL:
        tensor.bools.values.extend(bool(v) for v in array.reshape(-1))
    elif dtype == MIL_pb2.FLOAT32:
        tensor.floats.values.extend(float(v) for v in array.reshape(-1))
    else:
        tensor.ints.values.extend(int(v) for v in array.reshape(-1))
    return value


def build_program(tmp_path, inputs, ops, outputs, opset="CoreML7"):
    """inputs: [(name, dtype, shape)]; ops: [(type, {param: name | (array, dtype) | [...]},
    [(output name, dtype, shape)])]."""
    model = Model_pb2.Model()
    model.specificationVersion = 8
    function = model.mlProgram.functions["main"]
    function.opset = opset
    for name, dtype, shape in inputs:
        entry = function.inputs.add()
        entry.name = name
        entry.type.CopyFrom(value_type(dtype, shape))
    block = function.block_specializations[opset]
    block.outputs.extend(outputs)
    for op_type, params, results in ops:
        op = block.operations.add()
        op.type = op_type
        for key, arguments in params.items():
            for argument in arguments if isinstance(arguments, list) else [arguments]:
                binding = op.inputs[key].arguments.add()
                if isinstance(argument, str):
                    binding.name = argument
                else:
                    binding.value.CopyFrom(immediate(*argument))
        for name, dtype, shape in results:
            entry = op.outputs.add()
            entry.name = name
            entry.type.CopyFrom(value_type(dtype, shape))
    package = tmp_path / "program.mlpackage"
    model_path = package / MODEL_FILE
    model_path.parent.mkdir(parents=True)
    model_path.write_bytes(model.SerializeToString())
    return MilProgram(str(package))


I32, F32, F16, BOOL = MIL_pb2.INT32, MIL_pb2.FLOAT32, MIL_pb2.FLOAT16, MIL_pb2.BOOL


def test_run_loop_split_stack_several_outputs(tmp_path):
    program = build_program(
        tmp_path, [("x", I32, (2, 6))],
        [("split", {"x": "x", "num_splits": (np.int32(3), I32), "axis": (np.int32(1), I32)},
          [("a", I32, (2, 2)), ("b", I32, (2, 2)), ("c", I32, (2, 2))]),
         ("stack", {"values": ["c", "a"], "axis": (np.int32(0), I32)}, [("s", I32, (2, 2, 2))]),
         ("greater", {"x": "s", "y": (np.int32(5), I32)}, [("g", BOOL, (2, 2, 2))])],
        ["b", "s", "g"])
    x = np.arange(12, dtype=np.int32).reshape(2, 6)
    out = program.run({"x": x})
    same(out["b"], x[:, 2:4])
    same(out["s"], np.stack([x[:, 4:], x[:, :2]]))
    same(out["g"], np.stack([x[:, 4:], x[:, :2]]) > 5)


def test_run_loop_topk_and_lstm_outputs(tmp_path):
    hidden = 2
    w = randn(4 * hidden, 3)
    r = randn(4 * hidden, hidden)
    program = build_program(
        tmp_path, [("x", F16, (3, 1, 3))],
        [("topk", {"x": "x", "k": (np.int32(2), I32)},
          [("values", F16, (3, 1, 2)), ("indices", I32, (3, 1, 2))]),
         ("cast", {"x": "x", "dtype": (np.str_("fp32"), MIL_pb2.STRING)},
          [("x32", F32, (3, 1, 3))]),
         ("lstm", {"x": "x32", "initial_h": (np.zeros((1, hidden)), F32),
                   "initial_c": (np.zeros((1, hidden)), F32), "weight_ih": (w, F32),
                   "weight_hh": (r, F32), "output_sequence": (np.bool_(True), BOOL)},
          [("y", F32, (3, 1, hidden)), ("h", F32, (1, hidden)), ("c", F32, (1, hidden))])],
        ["values", "indices", "y", "h", "c"], opset="CoreML7")
    x = randn(3, 1, 3).astype(np.float16)
    out = program.run({"x": x})
    assert out["values"].dtype == np.float16 and out["indices"].dtype == np.int32
    same(out["values"], -np.sort(-x, axis=-1)[..., :2])
    close(out["y"][-1], out["h"])
    expected = run("lstm", x=x.astype(np.float32), initial_h=np.zeros((1, hidden), np.float32),
                   initial_c=np.zeros((1, hidden), np.float32), weight_ih=w, weight_hh=r,
                   output_sequence=np.bool_(True))
    close(out["c"], expected[2])


def test_run_loop_checks_declared_types(tmp_path):
    def program(declared, name):
        return build_program(tmp_path / name, [("x", F32, (2, 3))],
                             [("equal", {"x": "x", "y": "x"}, [("e", *declared)])], ["e"])
    same(program((BOOL, (2, 3)), "ok").run({"x": randn(2, 3)})["e"], np.ones((2, 3), np.bool_))
    with pytest.raises(AssertionError, match="float declared"):
        program((F32, (2, 3)), "dtype").run({"x": randn(2, 3)})
    with pytest.raises(AssertionError, match="computed shape"):
        program((BOOL, (3, 2)), "shape").run({"x": randn(2, 3)})
    split = build_program(
        tmp_path / "count", [("x", F32, (4,))],
        [("split", {"x": "x", "num_splits": (np.int32(2), I32), "axis": (np.int32(0), I32)},
          [("a", F32, (2,))])], ["a"])
    with pytest.raises(AssertionError, match="2 results for 1 declared"):
        split.run({"x": randn(4)})


@pytest.mark.parametrize("opset,ok", [("CoreML5", True), ("CoreML6", True), ("CoreML7", False),
                                      ("CoreML8", False)])
def test_run_loop_gather_negative_indices_follow_opset(tmp_path, opset, ok):
    program = build_program(
        tmp_path, [("x", F32, (5,))],
        [("gather", {"x": "x", "indices": (np.int32([-1, 0]), I32), "axis": (np.int32(0), I32)},
          [("g", F32, (2,))])], ["g"], opset=opset)
    x = randn(5)
    if ok:
        same(program.run({"x": x})["g"], x[[4, 0]])
    else:
        with pytest.raises(AssertionError, match="out of bounds"):
            program.run({"x": x})


# ---------------------------------------------------------------------------------------------
# Smaller shape ops

@pytest.mark.parametrize("shape,axis,expected", [((3,), -1, (1, 3)), ((3,), 1, (3, 1)),
                                                 ((4, 3), -1, (4, 3)), ((2, 3, 2), -1, (6, 2)),
                                                 ((5, 5, 2), 1, (5, 10)), ((2, 3, 4), 0, (1, 24))])
def test_flatten2d_documented_examples(shape, axis, expected):
    x = randn(*shape)
    same(run("flatten2d", x=x, axis=np.int32(axis)), x.reshape(expected))


def test_shape():
    same(run("shape", x=randn(2, 1, 5)), np.int32([2, 1, 5]))
    same(run("shape", x=np.float32(1.0)), np.zeros(0, np.int32))


@pytest.mark.parametrize("axis,size,stride", [(1, 3, 1), (-1, 2, 2), (0, 4, 3)])
def test_sliding_windows(axis, size, stride):
    x = randn(7, 6, 5)
    expected = torch_of(x).unfold(axis % 3, size, stride)  # windows last: move them after axis
    expected = expected.movedim(-1, axis % 3 + 1).numpy()
    kwargs = {} if stride == 1 else {"stride": np.int32(stride)}
    same(run("sliding_windows", x=x, axis=np.int32(axis), size=np.int32(size), **kwargs),
         expected)


def test_reverse_sequence_documented_examples():
    x = np.int32([[0, 1, 2, 3], [4, 5, 6, 7]])
    same(run("reverse_sequence", x=x, lengths=np.int32([3, 0]), seq_axis=np.int32(1),
             batch_axis=np.int32(0)), np.int32([[2, 1, 0, 3], [4, 5, 6, 7]]))
    x = np.arange(12, dtype=np.int32).reshape(2, 3, 2)
    same(run("reverse_sequence", x=x, lengths=np.int32([2, 3]), seq_axis=np.int32(1),
             batch_axis=np.int32(0)),
         np.int32([[[2, 3], [0, 1], [4, 5]], [[10, 11], [8, 9], [6, 7]]]))
    # batch after sequence
    y = run("reverse_sequence", x=x.transpose(1, 0, 2), lengths=np.int32([2, 3]),
            seq_axis=np.int32(0), batch_axis=np.int32(1))
    same(y.transpose(1, 0, 2), np.int32([[[2, 3], [0, 1], [4, 5]], [[10, 11], [8, 9], [6, 7]]]))


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_one_hot(axis):
    indices = np.int32([[0, 3], [2, 1], [3, 3]])
    expected = F.one_hot(torch_of(indices).long(), 4).numpy().astype(np.int32)
    expected = np.moveaxis(expected, -1, axis)
    same(run("one_hot", indices=indices, one_hot_vector_size=np.int32(4), axis=np.int32(axis)),
         expected)
    values = run("one_hot", indices=np.int32([1, 0]), one_hot_vector_size=np.int32(3),
                 on_value=np.float32(2.5), off_value=np.float32(-1))
    same(values, np.float32([[-1, 2.5, -1], [2.5, -1, -1]]))
