"""The ``@cuda.jit`` kernels ``ad``'s CUDA forward (``ad/cuda/ops.py``) needs beyond the shared ones of this package
(integer and bool data, cat/stack and index-map scatters, 0-d cases): elementwise values by opcode, strided
gathers and scatter-adds (views, broadcasting, reductions), batched matmul over strided operands,
log_softmax, cross entropy and ``where``.

Every kernel takes flat C-contiguous device arrays and walks them with a grid-stride loop, so any launch size
is correct; ``launch`` picks blocks of 64 threads. Elementwise kernels take the op's opcode
(``kernels/opcodes.py``) as an argument and branch on it (uniform across a launch, so the branch costs no
divergence); the ops without an opcode of their own (the piecewise-constant ones share ``STEP_FN``) get a
code from ``EXTRA``. Importing this module imports ``numba.cuda``; nothing is compiled until a kernel first
runs. The per-element partials of the backward are ``kernels/pointwise.py``'s formulas run as ``ad`` ops
(``ad/ops/elementwise.py``), so this module holds only forward values.
"""

import math

from numba import cuda

from kernels import opcodes as K

THREADS = 64
MAX_BLOCKS = 1024

# codes of forward values that have no opcode of their own (above every opcode)
FLOOR = 200
CEIL = 201
TRUNC = 202
ROUND = 203
SIGN = 204
EXTRA = {"floor": FLOOR, "ceil": CEIL, "trunc": TRUNC, "round": ROUND, "sign": SIGN}

# comparison codes of ``compare_kernel``
EQ, NE, LT, LE, GT, GE, AND, OR = range(8)
COMPARISONS = {"eq": EQ, "ne": NE, "lt": LT, "le": LE, "gt": GT, "ge": GE, "logical_and": AND, "logical_or": OR}
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
    + (K.FMOD, K.REMAINDER, K.LOGADDEXP, K.XLOGY)
)


def launch(kernel, n, *args):
    """Run ``kernel`` over ``n`` elements (grid-stride loops inside make any grid correct)."""
    threads = min(THREADS, max(n, 1))  # (tiny launches: no idle threads, which the simulator pays for)
    blocks = min(max((n + threads - 1) // threads, 1), MAX_BLOCKS)
    kernel[blocks, threads](*args)


# --- elementwise values ----------------------------------------------------------------------------------


@cuda.jit(device=True)
def _log(v):
    if v > 0.0:
        return math.log(v)
    if v == 0.0:
        return -math.inf
    return math.nan


@cuda.jit(device=True)
def _sqrt(v):
    if v >= 0.0:
        return math.sqrt(v)
    return math.nan


@cuda.jit(device=True)
def _pow(x, y):
    if x < 0.0 and y != math.floor(y):
        return math.nan
    if x == 0.0 and y < 0.0:
        return math.inf
    return math.pow(x, y)


@cuda.jit(device=True)
def unary_value(code, x, a0, a1):
    """The value of elementwise op ``code`` at ``x`` (``a0``, ``a1``: the row's float attributes)."""
    if code == K.COPY:
        return x
    if code == K.NEG:
        return -x
    if code == K.ABS:
        return abs(x)
    if code == K.EXP:
        return math.exp(x)
    if code == K.LOG:
        return _log(x)
    if code == K.LOG1P:
        return _log(1.0 + x) if x <= -1.0 else math.log1p(x)
    if code == K.EXPM1:
        return math.expm1(x)
    if code == K.SQRT:
        return _sqrt(x)
    if code == K.RSQRT:
        return 1.0 / _sqrt(x)
    if code == K.SIN:
        return math.sin(x)
    if code == K.COS:
        return math.cos(x)
    if code == K.TAN:
        return math.tan(x)
    if code == K.TANH:
        return math.tanh(x)
    if code == K.SIGMOID:
        if x >= 0.0:
            return 1.0 / (1.0 + math.exp(-x))
        e = math.exp(x)
        return e / (1.0 + e)
    if code == K.RELU:
        return x if x > 0.0 or x != x else 0.0
    if code == K.ERF:
        return math.erf(x)
    if code == K.CLAMP:
        r = x
        if a0 == a0 and r < a0:
            r = a0
        if a1 == a1 and r > a1:
            r = a1
        return r
    if code == K.POW_SCALAR:
        return _pow(x, a0)
    if code == K.RPOW_SCALAR:
        return _pow(a0, x)
    if code == K.AFFINE:
        if a1 == 0.0:
            return x * a0
        if a0 == 1.0:
            return x + a1
        if a0 == -1.0:
            return a1 - x
        return x * a0 + a1
    if code == K.RDIV_SCALAR:
        return a0 / x
    if code == K.SQUARE:
        return x * x
    if code == K.ATAN:
        return math.atan(x)
    if code == K.ASIN:
        return math.asin(x) if -1.0 <= x <= 1.0 else math.nan
    if code == K.ACOS:
        return math.acos(x) if -1.0 <= x <= 1.0 else math.nan
    if code == K.SINH:
        return math.sinh(x)
    if code == K.COSH:
        return math.cosh(x)
    if code == K.ASINH:
        return math.asinh(x)
    if code == K.ACOSH:
        return math.acosh(x) if x >= 1.0 else math.nan
    if code == K.ATANH:
        return math.atanh(x) if -1.0 < x < 1.0 else (math.copysign(math.inf, x) if abs(x) == 1.0 else math.nan)
    if code == K.LOG2:
        return _log(x) / math.log(2.0)
    if code == K.LOG10:
        return _log(x) / math.log(10.0)
    if code == K.EXP2:
        return math.pow(2.0, x)
    if code == K.ERFC:
        return math.erfc(x)
    if code == K.SINC:
        if x == 0.0:
            return 1.0
        return math.sin(math.pi * x) / (math.pi * x)
    if code == FLOOR:
        return math.floor(x)
    if code == CEIL:
        return math.ceil(x)
    if code == TRUNC:
        return math.trunc(x)
    if code == ROUND:  # half to even, as numpy and torch
        r = math.floor(x + 0.5)
        if r - x == 0.5 and r % 2.0 != 0.0:
            r -= 1.0
        return r
    if code == SIGN:
        if x > 0.0:
            return 1.0
        if x < 0.0:
            return -1.0
        return 0.0 if x == 0.0 else x
    return math.nan


@cuda.jit(device=True)
def binary_value(code, x, y):
    if code == K.ADD:
        return x + y
    if code == K.SUB:
        return x - y
    if code == K.MUL:
        return x * y
    if code == K.DIV:
        if y == 0.0:
            if x == 0.0 or x != x:
                return math.nan
            return math.copysign(math.inf, x) * math.copysign(1.0, y)
        return x / y
    if code == K.POW:
        return _pow(x, y)
    if code == K.MAXIMUM:
        if x != x or y != y:
            return math.nan
        return x if x >= y else y
    if code == K.MINIMUM:
        if x != x or y != y:
            return math.nan
        return x if x <= y else y
    if code == K.TANH_BACKWARD:
        return x * (1.0 - y * y)
    if code == K.ATAN2:
        return math.atan2(x, y)
    if code == K.HYPOT:
        return math.hypot(x, y)
    if code == K.COPYSIGN:
        return math.copysign(x, y)
    if code == K.FMOD:
        if y == 0.0:
            return math.nan
        return math.fmod(x, y)
    if code == K.REMAINDER:  # the sign of y, as numpy's and torch's
        if y == 0.0:
            return math.nan
        r = math.fmod(x, y)
        if r != 0.0 and (r < 0.0) != (y < 0.0):
            r += y
        return r
    if code == K.LOGADDEXP:
        m = x if x >= y else y
        if m == -math.inf:
            return m
        return m + math.log1p(math.exp(-abs(x - y)))
    if code == K.XLOGY:
        if x == 0.0 and y == y:
            return 0.0
        return x * _log(y)
    return math.nan


@cuda.jit
def unary_kernel(code, x, out, a0, a1):
    start = cuda.grid(1)
    for i in range(start, out.shape[0], cuda.gridsize(1)):
        out[i] = unary_value(code, x[i], a0, a1)


@cuda.jit
def binary_kernel(code, x, y, out):
    start = cuda.grid(1)
    for i in range(start, out.shape[0], cuda.gridsize(1)):
        out[i] = binary_value(code, x[i], y[i])


@cuda.jit
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
        else:
            out[i] = a != 0 or b != 0


@cuda.jit
def copy_kernel(x, out):
    """``out[i] = x[i]`` (converting the dtype: casts, bool masks to floats)."""
    start = cuda.grid(1)
    for i in range(start, out.shape[0], cuda.gridsize(1)):
        out[i] = x[i]


@cuda.jit
def where_kernel(cond, x, y, out):
    start = cuda.grid(1)
    for i in range(start, out.shape[0], cuda.gridsize(1)):
        out[i] = x[i] if cond[i] else y[i]


@cuda.jit
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


@cuda.jit
def gather_strided_kernel(x, out, shape, strides, base):
    """``out[i] = x[base + sum_k i_k * strides[k]]`` for ``i`` over ``shape`` (out's shape)."""
    start = cuda.grid(1)
    for i in range(start, out.shape[0], cuda.gridsize(1)):
        out[i] = x[_strided_offset(i, shape, strides, base)]


@cuda.jit
def scatter_add_strided_kernel(x, out, shape, strides, base, scale):
    """``out[base + sum_k i_k * strides[k]] += scale * x[i]`` for ``i`` over ``shape`` (x's shape); atomic,
    since reduced dimensions send many elements to one output."""
    start = cuda.grid(1)
    for i in range(start, x.shape[0], cuda.gridsize(1)):
        cuda.atomic.add(out, _strided_offset(i, shape, strides, base), scale * x[i])


@cuda.jit
def gather_map_kernel(x, out, index):
    """``out[i] = x[index[i]]`` (integer indexing, ``gather``, ``index_select``)."""
    start = cuda.grid(1)
    for i in range(start, out.shape[0], cuda.gridsize(1)):
        out[i] = x[index[i]]


@cuda.jit
def scatter_add_map_kernel(x, out, index):
    """``out[index[i]] += x[i]`` (atomic: repeated indices accumulate)."""
    start = cuda.grid(1)
    for i in range(start, x.shape[0], cuda.gridsize(1)):
        cuda.atomic.add(out, index[i], x[i])


# --- dense layers ------------------------------------------------------------------------------------------


@cuda.jit
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


@cuda.jit
def add_bias_kernel(out, b, N):
    start = cuda.grid(1)
    for i in range(start, out.shape[0], cuda.gridsize(1)):
        out[i] += b[i % N]


@cuda.jit
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


@cuda.jit
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


@cuda.jit
def onehot_kernel(target, out, C):
    """``out[i, target[i]] = 1`` (``out`` zeroed, (M, C) flat)."""
    start = cuda.grid(1)
    for i in range(start, target.shape[0], cuda.gridsize(1)):
        out[i * C + target[i]] = 1.0


@cuda.jit
def fill_kernel(out, value):
    start = cuda.grid(1)
    for i in range(start, out.shape[0], cuda.gridsize(1)):
        out[i] = value


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
    (copy_kernel.py_func, [f"void({_B1}, {_F8})", f"void({_F8}, {_I8})"]),
    (where_kernel.py_func, [f"void({_B1}, {_F8}, {_F8}, {_F8})"]),
    (add_inplace_kernel.py_func, [f"void({_F8}, {_F8})"]),
    (
        gather_strided_kernel.py_func,
        [f"void({_F8}, {_F8}, {_I8}, {_I8}, int64)", f"void({_B1}, {_B1}, {_I8}, {_I8}, int64)"],
    ),
    (scatter_add_strided_kernel.py_func, [f"void({_F8}, {_F8}, {_I8}, {_I8}, int64, float64)"]),
    (gather_map_kernel.py_func, [f"void({_F8}, {_F8}, {_I8})"]),
    (scatter_add_map_kernel.py_func, [f"void({_F8}, {_F8}, {_I8})"]),
    (matmul_kernel.py_func, [f"void({_F8}, {_F8}, {_F8}, {_I8})"]),
    (add_bias_kernel.py_func, [f"void({_F8}, {_F8}, int64)"]),
    (log_softmax_kernel.py_func, [f"void({_F8}, {_F8}, int64, int64, int64)"]),
    (cross_entropy_kernel.py_func, [f"void({_F8}, {_I8}, {_F8}, int64, int64)"]),
    (onehot_kernel.py_func, [f"void({_I8}, {_F8}, int64)"]),
    (fill_kernel.py_func, [f"void({_F8}, float64)", f"void({_B1}, float64)"]),
]
