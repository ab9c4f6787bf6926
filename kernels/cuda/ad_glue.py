"""The ``@cuda.jit`` kernels ``ad``'s CUDA forward (``ad/cuda/ops.py``) needs beyond the shared ones of this package
(integer and bool data, cat/stack and index-map scatters, 0-d cases): elementwise values by opcode, strided
and index-map scatter-adds (reductions, cat, index maps' adjoints), batched matmul over strided operands,
log_softmax, cross entropy and ``where``. Copies, casts, fills and gathers of any dtype are the shared ones
(``elementwise.cast``/``copy``/``fill``, ``strided.gather_strided``/``gather_map``).

Every kernel takes flat C-contiguous device arrays and walks them with a grid-stride loop, so any launch size
is correct; ``launch`` sizes the grid as every flat kernel of the package (``launch.flat_grid``). Elementwise
kernels take the op's opcode (``kernels/opcodes.py``) as an argument and branch on it (uniform across a launch,
so the branch costs no divergence); the ops without an opcode of their own (the piecewise-constant ones share
``STEP_FN``) get a code from ``EXTRA``. The values themselves are ``kernels/pointwise.py``'s formulas (through
``device.py``), as every CUDA and CPU kernel's. Importing this module imports ``numba.cuda``; nothing is
compiled until a kernel first runs.
"""

import math

from numba import cuda

from kernels import opcodes as K

from . import launch as L
from .device import binary_value, selects
from .device import unary_value as _pointwise_unary

# codes of forward values that have no opcode of their own (above every opcode)
FLOOR = 200
CEIL = 201
TRUNC = 202
ROUND = 203
SIGN = 204
EXTRA = {"floor": FLOOR, "ceil": CEIL, "trunc": TRUNC, "round": ROUND, "sign": SIGN}

# comparison codes of ``compare_kernel``
EQ, NE, LT, LE, GT, GE, AND, OR, SELECTS = range(9)
COMPARISONS = {"eq": EQ, "ne": NE, "lt": LT, "le": LE, "gt": GT, "ge": GE, "logical_and": AND, "logical_or": OR}
COMPARISONS["selects"] = SELECTS  # (equal, or both NaN: the members an amax / amin returned; pointwise.selects)
# numpy's names of the same (Tensor's operators: ad/methods.py)
COMPARISONS.update(equal=EQ, not_equal=NE, less=LT, less_equal=LE, greater=GT, greater_equal=GE)


# the opcodes whose values ``unary_value`` / ``binary_value`` compute (others raise on the host: ops.py)
UNARY_CODES = frozenset(
    (K.COPY, K.NEG, K.ABS, K.EXP, K.LOG, K.LOG1P, K.EXPM1, K.SQRT, K.RSQRT, K.SIN, K.COS, K.TAN, K.TANH, K.SIGMOID)
    + (K.RELU, K.ERF, K.CLAMP, K.POW_SCALAR, K.RPOW_SCALAR, K.AFFINE, K.RDIV_SCALAR, K.SQUARE, K.ATAN, K.ASIN)
    + (K.ACOS, K.SINH, K.COSH, K.ASINH, K.ACOSH, K.ATANH, K.LOG2, K.LOG10, K.EXP2, K.ERFC, K.SINC)
    + (FLOOR, CEIL, TRUNC, ROUND, SIGN)
)
BINARY_CODES = frozenset(
    (K.ADD, K.SUB, K.MUL, K.DIV, K.POW, K.MAXIMUM, K.MINIMUM, K.TANH_BACKWARD, K.ATAN2, K.HYPOT, K.COPYSIGN)
    + (K.FMOD, K.REMAINDER, K.LOGADDEXP, K.XLOGY, K.BCE_LOGITS)
)


def launch(kernel, n, *args):
    """Run ``kernel`` over ``n`` elements (grid-stride loops inside make any grid correct): a full grid on a GPU
    (1024 blocks of 64 threads kept a quarter of an H200's threads busy), one small block under the simulator,
    which runs every thread as a Python thread."""
    kernel[L.flat_grid(max(n, 1))](*args)


# --- elementwise values ----------------------------------------------------------------------------------


@cuda.jit(device=True)
def unary_value(code, x, a0, a1):
    """The value of elementwise op ``code`` at ``x``: ``kernels/pointwise.py``'s ``unary_value`` (one source of
    each formula), the step ops sent by name (``EXTRA``) as its STEP_FN with ``which`` = code - FLOOR."""
    if code >= FLOOR:
        return _pointwise_unary(K.STEP_FN, x, 0.0, float(code - FLOOR))
    return _pointwise_unary(code, x, a0, a1)


@cuda.jit(cache=True)
def unary_kernel(code, x, out, a0, a1):
    start = cuda.grid(1)
    for i in range(start, out.shape[0], cuda.gridsize(1)):
        out[i] = unary_value(code, x[i], a0, a1)


@cuda.jit(cache=True)
def binary_kernel(code, x, y, out):
    start = cuda.grid(1)
    for i in range(start, out.shape[0], cuda.gridsize(1)):
        out[i] = binary_value(code, x[i], y[i])


@cuda.jit(cache=True)
def compare_kernel(code, x, y, out):
    start = cuda.grid(1)
    for i in range(start, out.shape[0], cuda.gridsize(1)):
        a = x[i]
        b = y[i]
        if code == EQ:
            out[i] = a == b
        elif code == NE:
            out[i] = a != b
        elif code == LT:
            out[i] = a < b
        elif code == LE:
            out[i] = a <= b
        elif code == GT:
            out[i] = a > b
        elif code == GE:
            out[i] = a >= b
        elif code == AND:
            out[i] = a != 0 and b != 0
        elif code == OR:
            out[i] = a != 0 or b != 0
        else:
            out[i] = selects(a, b)


@cuda.jit(cache=True)
def where_kernel(cond, x, y, out):
    start = cuda.grid(1)
    for i in range(start, out.shape[0], cuda.gridsize(1)):
        out[i] = x[i] if cond[i] else y[i]


@cuda.jit(cache=True)
def add_inplace_kernel(acc, x):
    """``acc += x`` (gradient accumulation into ``.grad``)."""
    start = cuda.grid(1)
    for i in range(start, acc.shape[0], cuda.gridsize(1)):
        acc[i] += x[i]


# --- strided gather / scatter-add (views, broadcasting, reductions) --------------------------------------


@cuda.jit(device=True)
def _strided_offset(i, shape, strides, base):
    """The flat offset ``base + sum_k i_k * strides[k]`` of the C-order index ``i`` over ``shape``."""
    off = base
    rest = i
    for k in range(shape.shape[0] - 1, -1, -1):
        extent = shape[k]
        off += (rest % extent) * strides[k]
        rest //= extent
    return off


@cuda.jit(cache=True)
def scatter_add_strided_kernel(x, out, shape, strides, base, scale):
    """``out[base + sum_k i_k * strides[k]] += scale * x[i]`` for ``i`` over ``shape`` (x's shape); atomic,
    since reduced dimensions send many elements to one output."""
    start = cuda.grid(1)
    for i in range(start, x.shape[0], cuda.gridsize(1)):
        cuda.atomic.add(out, _strided_offset(i, shape, strides, base), scale * x[i])


@cuda.jit(cache=True)
def scatter_add_map_kernel(x, out, index):
    """``out[index[i]] += x[i]`` (atomic: repeated indices accumulate)."""
    start = cuda.grid(1)
    for i in range(start, x.shape[0], cuda.gridsize(1)):
        cuda.atomic.add(out, index[i], x[i])


# --- dense layers ------------------------------------------------------------------------------------------


@cuda.jit(cache=True)
def matmul_kernel(x, y, out, layout):
    """``out[b, m, n] = sum_k x[b, m, k] * y[b, k, n]`` over strided flat operands; ``layout``: (B, M, K, N,
    x batch, row, column strides, y batch, row, column strides). One thread per output element."""
    B = layout[0]
    M = layout[1]
    Kd = layout[2]
    N = layout[3]
    start = cuda.grid(1)
    for i in range(start, B * M * N, cuda.gridsize(1)):
        n = i % N
        m = (i // N) % M
        b = i // (M * N)
        xo = b * layout[4] + m * layout[5]
        yo = b * layout[7] + n * layout[9]
        acc = 0.0
        for k in range(Kd):
            acc += x[xo + k * layout[6]] * y[yo + k * layout[8]]
        out[i] = acc


@cuda.jit(cache=True)
def add_bias_kernel(out, b, N):
    start = cuda.grid(1)
    for i in range(start, out.shape[0], cuda.gridsize(1)):
        out[i] += b[i % N]


@cuda.jit(cache=True)
def log_softmax_kernel(x, out, outer, size, inner):
    """``out = x - logsumexp(x)`` along the middle axis of (outer, size, inner); one thread per line."""
    start = cuda.grid(1)
    for line in range(start, outer * inner, cuda.gridsize(1)):
        o = line // inner
        j = line % inner
        base = o * size * inner + j
        m = -math.inf
        for k in range(size):
            v = x[base + k * inner]
            if v > m:
                m = v
        if m == math.inf or m == -math.inf or m != m:
            m = 0.0
        s = 0.0
        for k in range(size):
            s += math.exp(x[base + k * inner] - m)
        lse = m + math.log(s)
        for k in range(size):
            out[base + k * inner] = x[base + k * inner] - lse


@cuda.jit(cache=True)
def cross_entropy_kernel(x, target, total, M, C):
    """``total[0] += logsumexp(x[i]) - x[i, target[i]]`` over rows ``i`` (atomic; the caller scales by 1/M)."""
    start = cuda.grid(1)
    for i in range(start, M, cuda.gridsize(1)):
        base = i * C
        m = -math.inf
        for k in range(C):
            if x[base + k] > m:
                m = x[base + k]
        s = 0.0
        for k in range(C):
            s += math.exp(x[base + k] - m)
        cuda.atomic.add(total, 0, m + math.log(s) - x[base + target[i]])


@cuda.jit(cache=True)
def onehot_kernel(target, out, C):
    """``out[i, target[i]] = 1`` (``out`` zeroed, (M, C) flat)."""
    start = cuda.grid(1)
    for i in range(start, target.shape[0], cuda.gridsize(1)):
        out[i * C + target[i]] = 1.0


_F8, _I8, _B1 = "float64[::1]", "int64[::1]", "boolean[::1]"
# what ``python -m kernels.cuda --ptx sm_90`` compiles (once this module is in ``MODULES``) and
# tests/cuda/test_cuda_tensors.py compiles meanwhile: the signatures ad launches most (float64, int64, bool)
PTX_KERNELS = [
    (
        unary_kernel.py_func,
        [f"void(int64, {_F8}, {_F8}, float64, float64)", f"void(int64, {_I8}, {_I8}, float64, float64)"],
    ),
    (binary_kernel.py_func, [f"void(int64, {_F8}, {_F8}, {_F8})", f"void(int64, {_I8}, {_I8}, {_I8})"]),
    (compare_kernel.py_func, [f"void(int64, {_F8}, {_F8}, {_B1})", f"void(int64, {_I8}, {_I8}, {_B1})"]),
    (where_kernel.py_func, [f"void({_B1}, {_F8}, {_F8}, {_F8})"]),
    (add_inplace_kernel.py_func, [f"void({_F8}, {_F8})"]),
    (scatter_add_strided_kernel.py_func, [f"void({_F8}, {_F8}, {_I8}, {_I8}, int64, float64)"]),
    (scatter_add_map_kernel.py_func, [f"void({_F8}, {_F8}, {_I8})"]),
    (matmul_kernel.py_func, [f"void({_F8}, {_F8}, {_F8}, {_I8})"]),
    (add_bias_kernel.py_func, [f"void({_F8}, {_F8}, int64)"]),
    (log_softmax_kernel.py_func, [f"void({_F8}, {_F8}, int64, int64, int64)"]),
    (cross_entropy_kernel.py_func, [f"void({_F8}, {_I8}, {_F8}, int64, int64)"]),
    (onehot_kernel.py_func, [f"void({_I8}, {_F8}, int64)"]),
]
