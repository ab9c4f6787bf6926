"""The CUDA kernels of ``kernels/cuda`` against numpy (and against ``kernels/cpu.py``'s sweep loops for the
partials) on tiny inputs: float64 to 1e-12, float32 to 1e-6. Runs under numba-cuda's simulator (tests/conftest.py
sets NUMBA_ENABLE_CUDASIM=1 unless the environment says otherwise) and unchanged on a GPU."""

import math

import numpy as np
import pytest
import scipy.special

pytest.importorskip("numba.cuda")
from numba import cuda  # noqa: E402

from kernels import cpu, pointwise_values  # noqa: E402
from kernels import opcodes as K  # noqa: E402
from kernels.cuda import elementwise as E  # noqa: E402
from kernels.cuda import matmul as MM  # noqa: E402
from kernels.cuda import reduce as R  # noqa: E402
from kernels.cuda import softmax as S  # noqa: E402
from kernels.cuda import strided as ST  # noqa: E402

TOL = {np.float64: 1e-12, np.float32: 1e-6}
rng = np.random.default_rng(1234)


def close(got, want, dtype=np.float64):
    np.testing.assert_allclose(got, want, rtol=TOL[dtype], atol=TOL[dtype])


def dev(a, dtype=np.float64):
    return cuda.to_device(np.ascontiguousarray(a, dtype=dtype))


def host(d):
    return d.copy_to_host()


# --- unary ops: value (numpy / scipy, written independently of pointwise.py) and partial (the CPU sweep's) ----

UNARY = [  # code, numpy reference, domain, a0, a1
    (K.COPY, lambda x: x, (-2, 2), 0.0, 0.0),
    (K.NEG, np.negative, (-2, 2), 0.0, 0.0),
    (K.ABS, np.abs, (-2, 2), 0.0, 0.0),
    (K.EXP, np.exp, (-2, 2), 0.0, 0.0),
    (K.LOG, np.log, (0.2, 3), 0.0, 0.0),
    (K.LOG1P, np.log1p, (-0.5, 2), 0.0, 0.0),
    (K.EXPM1, np.expm1, (-2, 2), 0.0, 0.0),
    (K.SQRT, np.sqrt, (0.2, 3), 0.0, 0.0),
    (K.RSQRT, lambda x: 1 / np.sqrt(x), (0.2, 3), 0.0, 0.0),
    (K.SIN, np.sin, (-3, 3), 0.0, 0.0),
    (K.COS, np.cos, (-3, 3), 0.0, 0.0),
    (K.TAN, np.tan, (-1.2, 1.2), 0.0, 0.0),
    (K.TANH, np.tanh, (-2, 2), 0.0, 0.0),
    (K.SIGMOID, scipy.special.expit, (-4, 4), 0.0, 0.0),
    (K.RELU, lambda x: np.maximum(x, 0), (-2, 2), 0.0, 0.0),
    (K.ERF, scipy.special.erf, (-2, 2), 0.0, 0.0),
    (K.CLAMP, lambda x: np.clip(x, -0.5, 0.7), (-2, 2), -0.5, 0.7),
    (K.CLAMP, lambda x: np.maximum(x, -0.5), (-2, 2), -0.5, math.nan),
    (K.POW_SCALAR, lambda x: x**2.5, (0.2, 2), 2.5, 0.0),
    (K.RPOW_SCALAR, lambda x: 1.7**x, (-2, 2), 1.7, 0.0),
    (K.AFFINE, lambda x: x * 3.0 - 0.5, (-2, 2), 3.0, -0.5),
    (K.AFFINE, lambda x: 2.0 - x, (-2, 2), -1.0, 2.0),
    (K.RDIV_SCALAR, lambda x: 2.0 / x, (0.3, 2), 2.0, 0.0),
    (K.SQUARE, np.square, (-2, 2), 0.0, 0.0),
    (K.ATAN, np.arctan, (-2, 2), 0.0, 0.0),
    (K.ASIN, np.arcsin, (-0.9, 0.9), 0.0, 0.0),
    (K.ACOS, np.arccos, (-0.9, 0.9), 0.0, 0.0),
    (K.SINH, np.sinh, (-2, 2), 0.0, 0.0),
    (K.COSH, np.cosh, (-2, 2), 0.0, 0.0),
    (K.ASINH, np.arcsinh, (-2, 2), 0.0, 0.0),
    (K.ACOSH, np.arccosh, (1.1, 3), 0.0, 0.0),
    (K.ATANH, np.arctanh, (-0.9, 0.9), 0.0, 0.0),
    (K.LOG2, np.log2, (0.2, 3), 0.0, 0.0),
    (K.LOG10, np.log10, (0.2, 3), 0.0, 0.0),
    (K.EXP2, np.exp2, (-2, 2), 0.0, 0.0),
    (K.ERFC, scipy.special.erfc, (-2, 2), 0.0, 0.0),
    (K.ERFINV, scipy.special.erfinv, (-0.999, 0.999), 0.0, 0.0),
    (K.LOGIT, scipy.special.logit, (0.1, 0.9), math.nan, 0.0),
    (K.LOGIT, lambda x: scipy.special.logit(np.clip(x, 0.2, 0.8)), (0.05, 0.95), 0.2, 0.0),
    (K.SINC, np.sinc, (0.2, 2), 0.0, 0.0),
    (K.SILU, lambda x: x * scipy.special.expit(x), (-3, 3), 0.0, 0.0),
    (K.GELU, lambda x: x * scipy.special.ndtr(x), (-3, 3), 0.0, 0.0),
    (K.GELU, lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3))), (-3, 3), 1.0, 0.0),
    (K.MISH, lambda x: x * np.tanh(np.logaddexp(0.0, x)), (-3, 3), 0.0, 0.0),
    (K.ELU, lambda x: np.where(x > 0, 1.05 * x, 1.05 * 1.67 * np.expm1(x)), (-3, 3), 1.67, 1.05),
    (K.CELU, lambda x: np.where(x > 0, x, 1.3 * np.expm1(x / 1.3)), (-3, 3), 1.3, 0.0),
    (K.STEP_FN, np.floor, (-3, 3), 0.0, pointwise_values.STEP_FLOOR),
    (K.STEP_FN, np.ceil, (-3, 3), 0.0, pointwise_values.STEP_CEIL),
    (K.STEP_FN, np.trunc, (-3, 3), 0.0, pointwise_values.STEP_TRUNC),
    (K.STEP_FN, lambda x: np.round(x, 1), (-3, 3), 1.0, pointwise_values.STEP_ROUND),
    (K.STEP_FN, np.sign, (-3, 3), 0.0, pointwise_values.STEP_SIGN),
]


def test_every_unary_opcode_is_covered():
    codes = {row[0] for row in UNARY}
    every = set(K.UNARY_CODES)
    assert codes == every


@pytest.mark.parametrize("code, ref, domain, a0, a1", UNARY)
def test_unary_forward_and_backward(code, ref, domain, a0, a1):
    x = rng.uniform(*domain, 6)
    out = cuda.device_array(6)
    E.unary_forward(code, dev(x), out, a0, a1)
    close(host(out), ref(x))
    # backward against the CPU sweep's loop (same formulas, other compiler), accumulating into gx
    g = rng.normal(size=6)
    gx0 = rng.normal(size=6)
    want = gx0.copy()
    cpu.unary_backward_chunk(code, x, ref(x), g, want, a0, a1, True)
    gx = dev(gx0)
    E.unary_backward(code, dev(x), dev(ref(x)), dev(g), gx, a0, a1)
    close(host(gx), want)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy scalars at inf and NaN (simulator threads)
def test_unary_edges_follow_numpy():
    x = np.array([0.0, -1.0, -0.0, math.inf, -math.inf, math.nan, 2.5, -2.5, 0.5, 1.5])
    for code, ref, a1 in [
        (K.LOG, np.log, 0.0),
        (K.SQRT, np.sqrt, 0.0),
        (K.RELU, lambda v: np.maximum(v, 0), 0.0),
        (K.STEP_FN, np.rint, pointwise_values.STEP_ROUND),
        (K.STEP_FN, np.floor, pointwise_values.STEP_FLOOR),
        (K.STEP_FN, lambda v: np.nan_to_num(np.sign(v), nan=0.0), pointwise_values.STEP_SIGN),
    ]:
        out = cuda.device_array(x.size)
        with np.errstate(all="ignore"):
            E.unary_forward(code, dev(x), out, 0.0, a1)
            np.testing.assert_array_equal(host(out), ref(x))


def test_unary_float32():
    x = rng.uniform(-2, 2, 5)
    out = cuda.device_array(5, np.float32)
    E.unary_forward(K.TANH, dev(x, np.float32), out)
    assert host(out).dtype == np.float32
    close(host(out), np.tanh(x.astype(np.float32)), np.float32)


# --- binary ops: broadcasting forward, backward with the broadcast undone --------------------------------

BINARY = [
    (K.ADD, np.add, (-2, 2), (-2, 2)),
    (K.SUB, np.subtract, (-2, 2), (-2, 2)),
    (K.MUL, np.multiply, (-2, 2), (-2, 2)),
    (K.DIV, np.divide, (-2, 2), (0.5, 2)),
    (K.POW, np.power, (0.3, 2), (-2, 2)),
    (K.MAXIMUM, np.maximum, (-2, 2), (-2, 2)),
    (K.MINIMUM, np.minimum, (-2, 2), (-2, 2)),
    (K.TANH_BACKWARD, lambda g, y: g * (1 - y * y), (-2, 2), (-1, 1)),
    (K.ATAN2, np.arctan2, (-2, 2), (-2, 2)),
    (K.HYPOT, np.hypot, (-2, 2), (-2, 2)),
    (K.FMOD, np.fmod, (-3, 3), (0.5, 2)),
    (K.REMAINDER, np.remainder, (-3, 3), (0.5, 2)),
    (K.COPYSIGN, np.copysign, (-2, 2), (-2, 2)),
    (K.LOGADDEXP, np.logaddexp, (-2, 2), (-2, 2)),
    (K.XLOGY, scipy.special.xlogy, (-2, 2), (0.3, 2)),
    (K.BCE_LOGITS, lambda x, t: (1 - t) * x + np.logaddexp(0, -x), (-3, 3), (0, 1)),
]
SHAPES = [((2, 3), (2, 3)), ((2, 3), (3,)), ((2, 1, 3), (4, 1)), ((), (2, 2))]


def test_every_binary_opcode_is_covered():
    assert {row[0] for row in BINARY} == set(range(K.BINARY_FIRST, K.BINARY_LAST + 1))


@pytest.mark.parametrize("code, ref, xdom, ydom", BINARY)
def test_binary_forward_broadcasting(code, ref, xdom, ydom):
    for xs, ys in SHAPES[1:3]:
        x, y = rng.uniform(*xdom, xs), rng.uniform(*ydom, ys)
        want = ref(x, y)
        out = cuda.device_array(want.shape)
        E.binary_forward(code, dev(x), dev(y), out)
        close(host(out), want)


def _cpu_binary_backward(code, x, y, g, gx0, gy0):
    """The CPU sweep's loop on the broadcast operands, then numpy's sum over the broadcast dims."""
    shape = np.broadcast_shapes(x.shape, y.shape)
    xb, yb = (np.ascontiguousarray(np.broadcast_to(a, shape)).ravel() for a in (x, y))
    out = np.ascontiguousarray(np.broadcast_to(ref_values(code, x, y), shape)).ravel()
    dx, dy = np.zeros(xb.size), np.zeros(yb.size)
    cpu.binary_backward_chunk(code, xb, yb, out, g.ravel(), dx, dy, True, True, False, False)
    return gx0 + unbroadcast(dx.reshape(shape), x.shape), gy0 + unbroadcast(dy.reshape(shape), y.shape)


def ref_values(code, x, y):
    return dict((c, r) for c, r, *_ in BINARY)[code](x, y)


def unbroadcast(a, shape):
    while a.ndim > len(shape):
        a = a.sum(0)
    return a.sum(axis=tuple(d for d in range(len(shape)) if shape[d] == 1), keepdims=True)


@pytest.mark.parametrize("code, ref, xdom, ydom", BINARY)
def test_binary_backward_broadcasting(code, ref, xdom, ydom):
    for xs, ys in SHAPES:
        x, y = rng.uniform(*xdom, xs), rng.uniform(*ydom, ys)
        shape = np.broadcast_shapes(xs, ys)
        g = rng.normal(size=shape)
        gx0, gy0 = rng.normal(size=xs), rng.normal(size=ys)
        want_x, want_y = _cpu_binary_backward(code, x, y, g, gx0, gy0)
        gx, gy = dev(gx0), dev(gy0)
        E.binary_backward(code, dev(x), dev(y), dev(ref(x, y)), dev(g), gx, gy)
        close(host(gx), want_x)
        close(host(gy), want_y)


def test_binary_backward_one_operand_float32_overwrite():
    x, y = rng.uniform(-2, 2, (3, 4)), rng.uniform(0.5, 2, (3, 1))
    g = rng.normal(size=(3, 4))
    gy = cuda.device_array((3, 1), np.float32)
    f32 = [dev(a, np.float32) for a in (x, y, x / y, g)]
    E.binary_backward(K.DIV, *f32, gy=gy, accumulate=False)
    close(host(gy), (-g * x / y**2).sum(1, keepdims=True), np.float32)
    out = cuda.device_array((3, 4), np.float32)
    E.binary_forward(K.DIV, f32[0], f32[1], out)
    close(host(out), x.astype(np.float32) / y.astype(np.float32), np.float32)


def test_binary_errors():
    with pytest.raises(ValueError, match="do not broadcast"):
        E.binary_forward(K.ADD, dev(np.ones(3)), dev(np.ones(4)), cuda.device_array(3))
    with pytest.raises(TypeError, match="one dtype"):
        E.binary_forward(K.ADD, dev(np.ones(3)), dev(np.ones(3), np.float32), cuda.device_array(3))
    with pytest.raises(ValueError, match="not an elementwise binary"):
        E.binary_forward(K.EXP, dev(np.ones(3)), dev(np.ones(3)), cuda.device_array(3))


# --- comparisons, where, fill, cast -----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compare_where_fill_cast(dtype):
    x = rng.integers(-2, 3, (2, 3)).astype(dtype)
    y = rng.integers(-2, 3, (3,)).astype(dtype)
    for op, ref in [("eq", np.equal), ("ne", np.not_equal), ("lt", np.less), ("le", np.less_equal),
                    ("gt", np.greater), ("ge", np.greater_equal), ("logical_and", np.logical_and),
                    ("logical_or", np.logical_or), ("less_equal", np.less_equal)]:  # fmt: skip
        out = cuda.device_array((2, 3), np.bool_)
        E.compare(op, dev(x, dtype), dev(y, dtype), out)
        np.testing.assert_array_equal(host(out), ref(x, y))
    mask = rng.random((2, 1)) > 0.5
    out = cuda.device_array((2, 3), dtype)
    E.where(cuda.to_device(mask), dev(x, dtype), dev(y, dtype), out)
    np.testing.assert_array_equal(host(out), np.where(mask, x, y))
    E.fill(out, 2.5)
    np.testing.assert_array_equal(host(out), np.full((2, 3), 2.5, dtype))
    other = np.float32 if dtype == np.float64 else np.float64
    cast = cuda.device_array((2, 3), other)
    E.cast(dev(x, dtype), cast)
    np.testing.assert_array_equal(host(cast), x.astype(other))
    E.cast(cuda.to_device(mask.repeat(3, 1)), cast)
    np.testing.assert_array_equal(host(cast), mask.repeat(3, 1).astype(other))


# --- reductions -------------------------------------------------------------------------------------------

REDUCTIONS = {"sum": np.sum, "mean": np.mean, "prod": np.prod, "amax": np.amax, "amin": np.amin}


@pytest.mark.parametrize("op", list(REDUCTIONS))
@pytest.mark.parametrize("dims", [None, 0, 1, (0, 2), (1, 2), (-1,), ()])
def test_reduce_over_dims(op, dims):
    x = rng.uniform(0.5, 1.5, (2, 3, 4))
    axis = tuple(range(3)) if dims is None else dims
    want = REDUCTIONS[op](x, axis=axis)
    out = cuda.device_array(max(want.size, 1))
    R.reduce(op, dev(x), out, dims)
    close(host(out), np.ravel(want))


@pytest.mark.parametrize("op", list(REDUCTIONS))
def test_reduce_two_pass_and_float32(op):
    x = rng.uniform(0.5, 1.5, (3, 10))
    for dims, chunks in [(None, 3), (1, 4), (0, 2)]:  # (block per group, block per group, coalesced columns)
        axis = tuple(range(2)) if dims is None else dims
        out = cuda.device_array(REDUCTIONS[op](x, axis=axis).size, np.float32)
        R.reduce(op, dev(x, np.float32), out, dims, chunks=chunks)
        close(host(out), np.ravel(REDUCTIONS[op](x.astype(np.float32), axis=axis)), np.float32)


def test_reduce_nan_accumulate_and_errors():
    x = np.array([[1.0, math.nan, 3.0], [4.0, 5.0, 6.0]])
    out = cuda.device_array(2)
    R.reduce("amax", dev(x), out, 1)
    np.testing.assert_array_equal(host(out), [math.nan, 6.0])
    acc = dev(np.array([1.0, 2.0, 3.0]))
    R.reduce("sum", dev(x[1:].repeat(2, 0)), acc, 0, accumulate=True)
    close(host(acc), [9.0, 12.0, 15.0])
    with pytest.raises(RuntimeError, match="non-zero size"):
        R.reduce("amax", dev(np.zeros((0, 2))), cuda.device_array(2), 0)
    with pytest.raises(ValueError, match="out has 3 elements"):
        R.reduce("sum", dev(x), cuda.device_array(3), 1)
    with pytest.raises(ValueError, match="unknown reduction"):
        R.reduce("median", dev(x), cuda.device_array(2), 1)


# --- strided and index-map gathers and scatter-adds ---------------------------------------------------------


VIEWS = [  # base, shape, strides over a buffer of 24 elements
    (0, (4, 6), (6, 1)),  # contiguous
    (0, (6, 4), (1, 6)),  # transpose
    (7, (3, 2), (5, 2)),  # slice with steps
    (23, (2, 3), (-6, -2)),  # negative strides (flip)
    (2, (3, 4, 2), (0, 3, 1)),  # expand (stride 0)
    (0, (2, 5, 3), (8, 1, 0)),  # overlapping windows and an expand: atomics
]


def _numpy_view(buf, base, shape, strides):
    idx = base + sum(np.arange(n).reshape([-1 if d == k else 1 for d in range(len(shape))]) * s
                     for k, (n, s) in enumerate(zip(shape, strides)))  # fmt: skip
    return np.broadcast_to(idx, shape).ravel()


@pytest.mark.parametrize("base, shape, strides", VIEWS)
def test_gather_and_scatter_add_strided(base, shape, strides):
    buf = rng.normal(size=24)
    idx = _numpy_view(buf, base, shape, strides)
    out = cuda.device_array(idx.size)
    ST.gather_strided(dev(buf), out, base, shape, strides)
    close(host(out), buf[idx])
    x = rng.normal(size=idx.size)
    want = buf.copy()
    np.add.at(want, idx, 0.5 * x)
    got = dev(buf)
    ST.scatter_add_strided(dev(x), got, base, shape, strides, scale=0.5)
    close(host(got), want)
    got = dev(buf)
    ST.scatter_add_strided(dev(x), got, base, shape, strides, scale=0.5, chunks=2)  # two-pass reductions
    close(host(got), want)


def test_strided_float32():
    buf = rng.normal(size=24).astype(np.float32)
    out = cuda.device_array(12, np.float32)
    ST.gather_strided(dev(buf, np.float32), out, 1, (3, 4), (7, 0))
    close(host(out), np.repeat(buf[[1, 8, 15]], 4), np.float32)
    got = dev(np.zeros(24), np.float32)
    ST.scatter_add_strided(out, got, 1, (3, 4), (7, 0))
    want = np.zeros(24)
    want[[1, 8, 15]] = 4 * buf[[1, 8, 15]].astype(np.float64)
    close(host(got), want, np.float32)


def test_strided_view_out_of_bounds():
    with pytest.raises(ValueError, match="outside a buffer of 24"):
        ST.gather_strided(dev(np.zeros(24)), cuda.device_array(6), 20, (2, 3), (3, 1))


def test_gather_and_scatter_add_map_with_repeats():
    x = rng.normal(size=5)
    index = np.array([4, 0, 4, 4, 2, 1, 0], np.int64)
    out = cuda.device_array(7)
    ST.gather_map(dev(x), cuda.to_device(index), out)
    close(host(out), x[index])
    g = rng.normal(size=7)
    got = dev(np.ones(5))
    ST.scatter_add_map(dev(g), cuda.to_device(index), got, 2.0)
    want = np.ones(5)
    np.add.at(want, index, 2.0 * g)
    close(host(got), want)


# --- matmul, linear, log_softmax, cross entropy ---------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matmul_batched_transposed_broadcast(dtype):
    B, M, Kd, N = 2, 3, 9, 5
    for bx, by, bo, tx, ty in [(B, B, B, False, False), (1, B, B, True, False), (B, 1, B, False, True),
                               (B, B, 1, True, True), (1, 1, 1, False, False)]:  # fmt: skip
        # (inputs rounded to dtype first: what is left is the rounding of the K-term sums)
        x = rng.normal(size=(bx, Kd, M) if tx else (bx, M, Kd)).astype(dtype).astype(np.float64)
        y = rng.normal(size=(by, N, Kd) if ty else (by, Kd, N)).astype(dtype).astype(np.float64)
        prod = (x.swapaxes(1, 2) if tx else x) @ (y.swapaxes(1, 2) if ty else y)
        want = prod.sum(0, keepdims=True) if bo == 1 and prod.shape[0] > 1 else prod
        out0 = rng.normal(size=want.shape)
        out = dev(out0, dtype)
        want = out0.astype(dtype) + want
        MM.matmul(dev(x, dtype), dev(y, dtype), out, tx, ty, accumulate=True, use_cublas=False)
        np.testing.assert_allclose(host(out), want, rtol=TOL[dtype] * Kd, atol=TOL[dtype] * Kd)
        if MM.cupy_module() is not None:  # on a GPU with CuPy: cuBLAS too
            out = dev(out0, dtype)
            MM.matmul(dev(x, dtype), dev(y, dtype), out, tx, ty, accumulate=True)
            np.testing.assert_allclose(host(out), want, rtol=TOL[dtype] * Kd, atol=TOL[dtype] * Kd)


def test_linear_and_backward():
    x, w, b = rng.normal(size=(4, 3)), rng.normal(size=(5, 3)), rng.normal(size=5)
    out = cuda.device_array((4, 5))
    MM.linear(dev(x), dev(w), out, dev(b))
    close(host(out), x @ w.T + b)
    g = rng.normal(size=(4, 5))
    gx, gw, gb = dev(np.ones((4, 3))), dev(np.ones((5, 3))), dev(np.ones(5))
    MM.linear_backward(dev(x), dev(w), dev(g), gx, gw, gb)
    close(host(gx), 1 + g @ w)
    close(host(gw), 1 + g.T @ x)
    close(host(gb), 1 + g.sum(0))
    gx, gy = dev(np.zeros((2, 4, 3))), dev(np.zeros((1, 3, 5)))
    xb, yb, gb3 = rng.normal(size=(2, 4, 3)), rng.normal(size=(1, 3, 5)), rng.normal(size=(2, 4, 5))
    MM.matmul_backward(dev(xb), dev(yb), dev(gb3), gx, gy)
    close(host(gx), gb3 @ yb.swapaxes(1, 2))
    close(host(gy), (xb.swapaxes(1, 2) @ gb3).sum(0, keepdims=True))
    with pytest.raises(ValueError, match="do not fit"):
        MM.matmul(dev(x), dev(w), cuda.device_array((4, 5)))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the line of -inf
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_log_softmax(dim):
    _check_log_softmax(dim, np.float64)


def test_log_softmax_float32():
    _check_log_softmax(1, np.float32)


def _check_log_softmax(dim, dtype):
    x = rng.normal(size=(2, 3, 4)).astype(dtype).astype(np.float64)
    x[0, 0, :] = -math.inf  # a line of -inf along the last dim
    m = np.max(x, axis=dim, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(all="ignore"):
        want = (x - m) - np.log(np.sum(np.exp(x - m), axis=dim, keepdims=True))
    out = cuda.device_array(x.shape, dtype)
    S.log_softmax_forward(dev(x, dtype), out, dim)
    close(host(out), want, dtype)
    ls = scipy.special.log_softmax(rng.normal(size=(2, 3, 4)), axis=dim).astype(dtype).astype(np.float64)
    g = rng.normal(size=x.shape).astype(dtype).astype(np.float64)
    gx = dev(np.ones(x.shape), dtype)
    S.log_softmax_backward(dev(ls, dtype), dev(g, dtype), gx, dim)
    close(host(gx), 1 + g - np.exp(ls) * g.sum(axis=dim, keepdims=True), dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cross_entropy(dtype):
    x = rng.normal(size=(4, 5))
    t = np.array([0, 4, 2, 2], np.int64)
    out = cuda.device_array(1, dtype)
    S.cross_entropy_forward(dev(x, dtype), cuda.to_device(t), out)
    close(host(out)[0], cpu.cross_entropy_forward(x.astype(dtype).astype(np.float64), t), dtype)
    gx = dev(np.zeros((4, 5)), dtype)
    S.cross_entropy_backward(dev(x, dtype), cuda.to_device(t), dev([3.0], dtype), gx)
    want = scipy.special.softmax(x.astype(dtype).astype(np.float64), axis=1)
    want[np.arange(4), t] -= 1.0
    close(host(gx), 3.0 / 4 * want, dtype)


def _reduce_grad_reference(op, x, g, axis):
    """d op / dx times g, by numpy, one group at a time (ties share amax / amin's gradient; prod: the product of
    the other members)."""
    moved = np.moveaxis(x, axis, tuple(range(x.ndim - len(axis), x.ndim)))
    groups = moved.reshape(-1, int(np.prod([x.shape[d] for d in axis])))
    gflat = np.ravel(g)
    grad = np.zeros_like(groups)
    for j, row in enumerate(groups):
        for i in range(row.size):
            if op == "sum":
                grad[j, i] = gflat[j]
            elif op == "mean":
                grad[j, i] = gflat[j] / row.size
            elif op == "prod":
                grad[j, i] = gflat[j] * np.prod(np.delete(row, i))
            else:
                best = row.max() if op == "amax" else row.min()
                grad[j, i] = gflat[j] / np.count_nonzero(row == best) if row[i] == best else 0.0
    return np.moveaxis(grad.reshape(moved.shape), tuple(range(x.ndim - len(axis), x.ndim)), axis)


@pytest.mark.parametrize("op", list(REDUCTIONS))
@pytest.mark.parametrize("dims", [(1,), (0, 2)])
def test_reduce_backward_ties_and_zeros(op, dims):
    x = rng.integers(-2, 3, (2, 3, 4)).astype(np.float64)  # ties for amax / amin, zeros (0, 1, 2+) for prod
    x[0, :, 0] = [0.0, 1.5, 2.0]
    want_out = REDUCTIONS[op](x, axis=dims)
    g = rng.normal(size=want_out.shape)
    gx0 = rng.normal(size=x.shape)
    gx = dev(gx0)
    R.reduce_backward(op, dev(x), dev(want_out), dev(g), gx, dims)
    close(host(gx), gx0 + _reduce_grad_reference(op, x, g, dims))


def test_jvp_kernels_and_float_mask_where():
    x, y = rng.uniform(0.5, 2, (2, 3)), rng.uniform(0.5, 2, (3,))
    tx, ty = rng.normal(size=(2, 3)), rng.normal(size=(3,))
    res = cuda.device_array((2, 3))
    E.binary_jvp(K.DIV, dev(x), dev(y), dev(x / y), dev(tx), dev(ty), res)
    close(host(res), tx / y - ty * x / y**2)
    E.binary_jvp(K.MUL, dev(x), dev(y), dev(x * y), None, dev(ty), res)
    close(host(res), ty * x)
    E.unary_jvp(K.SIN, dev(x), dev(np.sin(x)), dev(tx), res)
    close(host(res), tx * np.cos(x))
    mask = (rng.random((2, 3)) > 0.5).astype(np.float64)
    E.where(dev(mask), dev(x), dev(y), res)
    close(host(res), np.where(mask != 0, x, y))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_overflow_and_infinities_give_ieee_values():
    x = np.array([800.0, -800.0, math.inf, -math.inf, math.nan])
    for code, ref in [(K.EXP, np.exp), (K.EXPM1, np.expm1), (K.SINH, np.sinh), (K.COSH, np.cosh),
                      (K.SIN, np.sin), (K.TANH, np.tanh)]:  # fmt: skip
        out = cuda.device_array(x.size)
        with np.errstate(all="ignore"):
            E.unary_forward(code, dev(x), out)
            np.testing.assert_array_equal(host(out), ref(x))
    gx = dev(np.zeros(x.size))
    E.unary_backward(K.SIN, dev(x), dev(x), dev(np.ones(x.size)), gx)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(host(gx), np.cos(x))
