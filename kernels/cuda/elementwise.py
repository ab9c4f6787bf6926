"""Elementwise CUDA kernels: unary and binary forward and backward (numpy broadcasting), comparisons, where,
fill and cast.

Each kernel is a grid-stride loop over the flat output; the per-element values and partials are
``kernels/pointwise.py``'s (through ``device.py``). Broadcasting reads operands through the broadcast
``meta`` of ``launch.py``; the backward of a broadcast operand is a block reduction (``reduce.py``) over the
dims it was broadcast along, so no two threads add into the same element.
"""

import functools

from numba import cuda

from .. import opcodes as K
from . import launch as L
from .device import (
    binary_partial_x,
    binary_partial_y,
    binary_value,
    broadcast_offset,
    broadcast_offsets2,
    extreme_tangent,
    selects,
    times,
    unary_partial,
    unary_value,
)

# comparison codes of ``compare`` (torch's names)
COMPARISONS = {"eq": 0, "ne": 1, "lt": 2, "le": 3, "gt": 4, "ge": 5, "logical_and": 6, "logical_or": 7}
COMPARISONS["selects"] = 8  # (equal, or both NaN: the members an amax / amin returned; pointwise.selects)
COMPARISONS.update(equal=0, not_equal=1, less=2, less_equal=3, greater=4, greater_equal=5)  # numpy's names


# --- forward and backward loops: each written once, compiled two ways -------------------------------------------
# ``*_kernel``: the opcode is an argument, so every element walks the formula's if-chain (uniform across a launch,
# but branches in the loop): one kernel for all opcodes (the PTX list, and ``bench.py``'s comparison).
# ``specialized(kind, code)``: the same loop as an inlined device function called with ``code`` a closure
# constant, so numba compiles one kernel per opcode with only that op's formula (compiled on first use). The host
# functions below launch these.


def unary_forward_kernel(code, x, out, a0, a1):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, out.shape[0], step):
        out[i] = unary_value(code, x[i], a0, a1)


def binary_forward_kernel(code, x, y, out):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, out.shape[0], step):
        out[i] = binary_value(code, x[i], y[i])


def binary_forward_broadcast_kernel(code, x, y, out, meta):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, out.shape[0], step):
        xo, yo = broadcast_offsets2(i, meta)
        out[i] = binary_value(code, x[xo], y[yo])


def unary_backward_kernel(code, x, out, g, gx, a0, a1, accumulate):
    start, step = cuda.grid(1), cuda.gridsize(1)
    if accumulate:
        for i in range(start, g.shape[0], step):
            gx[i] += times(code, g[i], unary_partial(code, x[i], out[i], a0, a1))
    else:
        for i in range(start, g.shape[0], step):
            gx[i] = times(code, g[i], unary_partial(code, x[i], out[i], a0, a1))


def binary_backward_kernel(code, x, y, out, g, gx, gy, has_x, has_y, accumulate):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, g.shape[0], step):
        if has_x:
            dx = times(code, g[i], binary_partial_x(code, x[i], y[i], out[i]))
            if accumulate:
                gx[i] += dx
            else:
                gx[i] = dx
        if has_y:
            dy = times(code, g[i], binary_partial_y(code, x[i], y[i], out[i]))
            if accumulate:
                gy[i] += dy
            else:
                gy[i] = dy


_unary_forward_loop = cuda.jit(device=True, inline="always")(unary_forward_kernel)
_binary_forward_loop = cuda.jit(device=True, inline="always")(binary_forward_kernel)
_unary_backward_loop = unary_backward_loop = cuda.jit(device=True, inline="always")(unary_backward_kernel)
_binary_backward_loop = cuda.jit(device=True, inline="always")(binary_backward_kernel)


def unary_forward_source(code):
    def unary_forward_op(x, out, a0, a1):
        _unary_forward_loop(code, x, out, a0, a1)

    return unary_forward_op


def binary_forward_source(code):
    def binary_forward_op(x, y, out):
        _binary_forward_loop(code, x, y, out)

    return binary_forward_op


def unary_backward_source(code):
    def unary_backward_op(x, out, g, gx, a0, a1, accumulate):
        _unary_backward_loop(code, x, out, g, gx, a0, a1, accumulate)

    return unary_backward_op


def binary_backward_source(code):
    def binary_backward_op(x, y, out, g, gx, gy, has_x, has_y, accumulate):
        _binary_backward_loop(code, x, y, out, g, gx, gy, has_x, has_y, accumulate)

    return binary_backward_op


_SOURCES = {
    "unary_forward": unary_forward_source,
    "binary_forward": binary_forward_source,
    "unary_backward": unary_backward_source,
    "binary_backward": binary_backward_source,
}


@functools.cache
def specialize(source, code):
    """The kernel ``source(code)`` compiled for opcode ``code`` (``source`` returns a closure over ``code``: no
    per-element branch on it); also the device sweep's big elementwise rows (``sweep._row_kernel``)."""
    return cuda.jit(cache=True)(source(code))


def specialized(kind, code):
    """The kernel ``kind`` (a key of ``_SOURCES``) compiled for opcode ``code``."""
    return specialize(_SOURCES[kind], code)


def binary_jvp_kernel(code, x, y, out, tx, ty, res, meta, has_tx, has_ty):
    for i in range(cuda.grid(1), res.shape[0], cuda.gridsize(1)):
        xo, yo = broadcast_offsets2(i, meta)
        if code == K.MAXIMUM or code == K.MINIMUM:
            res[i] = extreme_tangent(code, tx[xo] if has_tx else 0.0, ty[yo] if has_ty else 0.0, x[xo], y[yo])
            continue
        acc = 0.0
        if has_tx:
            acc += tx[xo] * binary_partial_x(code, x[xo], y[yo], out[i])
        if has_ty:
            acc += ty[yo] * binary_partial_y(code, x[xo], y[yo], out[i])
        res[i] = acc


def compare_kernel(cmp, x, y, out, meta):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, out.shape[0], step):
        xo, yo = broadcast_offsets2(i, meta)
        a = x[xo]
        b = y[yo]
        if cmp == 0:
            r = a == b
        elif cmp == 1:
            r = a != b
        elif cmp == 2:
            r = a < b
        elif cmp == 3:
            r = a <= b
        elif cmp == 4:
            r = a > b
        elif cmp == 5:
            r = a >= b
        elif cmp == 6:
            r = a != 0.0 and b != 0.0
        elif cmp == 7:
            r = a != 0.0 or b != 0.0
        else:
            r = selects(a, b)
        out[i] = r


def where_kernel(mask, x, y, out, meta):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, out.shape[0], step):
        if mask[broadcast_offset(i, meta, 0)]:
            out[i] = x[broadcast_offset(i, meta, 1)]
        else:
            out[i] = y[broadcast_offset(i, meta, 2)]


def fill_kernel(out, value):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, out.shape[0], step):
        out[i] = value


def cast_kernel(x, out):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, out.shape[0], step):
        out[i] = x[i]


_FLOATS = ("float32", "float64")
_META = "int64[::1]"
PTX_KERNELS = [
    (unary_forward_kernel, [f"void(int64, {t}[::1], {t}[::1], float64, float64)" for t in _FLOATS]),
    (binary_forward_kernel, [f"void(int64, {t}[::1], {t}[::1], {t}[::1])" for t in _FLOATS]),
    (binary_forward_broadcast_kernel, [f"void(int64, {t}[::1], {t}[::1], {t}[::1], {_META})" for t in _FLOATS]),
    (
        unary_backward_kernel,
        [f"void(int64, {t}[::1], {t}[::1], {t}[::1], {t}[::1], float64, float64, boolean)" for t in _FLOATS],
    ),
    (
        binary_backward_kernel,
        [
            f"void(int64, {t}[::1], {t}[::1], {t}[::1], {t}[::1], {t}[::1], {t}[::1], boolean, boolean, boolean)"
            for t in _FLOATS
        ],
    ),
    (
        binary_jvp_kernel,
        [
            f"void(int64, {t}[::1], {t}[::1], {t}[::1], {t}[::1], {t}[::1], {t}[::1], {_META}, boolean, boolean)"
            for t in _FLOATS
        ],
    ),
    # the per-opcode kernels, for a few opcodes (each compiles the same way: only ``code`` differs)
    *(
        (unary_forward_source(code), [f"void({t}[::1], {t}[::1], float64, float64)" for t in _FLOATS])
        for code in (K.TANH, K.EXP, K.CLAMP)
    ),
    *(
        (
            unary_backward_source(code),
            [f"void({t}[::1], {t}[::1], {t}[::1], {t}[::1], float64, float64, boolean)" for t in _FLOATS],
        )
        for code in (K.TANH, K.EXP, K.CLAMP)
    ),
    (binary_forward_source(K.MUL), [f"void({t}[::1], {t}[::1], {t}[::1])" for t in _FLOATS]),
    (
        binary_backward_source(K.DIV),
        [
            f"void({t}[::1], {t}[::1], {t}[::1], {t}[::1], {t}[::1], {t}[::1], boolean, boolean, boolean)"
            for t in _FLOATS
        ],
    ),
    (compare_kernel, [f"void(int64, {t}[::1], {t}[::1], boolean[::1], {_META})" for t in _FLOATS]),
    (where_kernel, [f"void({m}[::1], {t}[::1], {t}[::1], {t}[::1], {_META})" for t in _FLOATS for m in ("boolean", t)]),
    (fill_kernel, [f"void({t}[::1], float64)" for t in (*_FLOATS, "int64", "boolean")]),
    (
        cast_kernel,
        [f"void({a}[::1], {b}[::1])" for a in (*_FLOATS, "boolean") for b in _FLOATS]
        + [f"void({a}[::1], {b}[::1])" for a, b in (("float64", "int64"), ("int64", "float64"), ("int64", "int64"))]
        + ["void(boolean[::1], int64[::1])", "void(int64[::1], boolean[::1])", "void(boolean[::1], boolean[::1])"],
    ),
]

_unary_forward = cuda.jit(cache=True)(unary_forward_kernel)
_binary_forward = cuda.jit(cache=True)(binary_forward_kernel)
_binary_forward_broadcast = cuda.jit(cache=True)(binary_forward_broadcast_kernel)
_unary_backward = cuda.jit(cache=True)(unary_backward_kernel)
_binary_backward = cuda.jit(cache=True)(binary_backward_kernel)
_binary_jvp = cuda.jit(cache=True)(binary_jvp_kernel)
_compare = cuda.jit(cache=True)(compare_kernel)
_where = cuda.jit(cache=True)(where_kernel)
_fill = cuda.jit(cache=True)(fill_kernel)
_cast = cuda.jit(cache=True)(cast_kernel)


def _is_unary(code):
    return K.is_unary(code)


def _check_float(*arrays):
    dt = arrays[0].dtype
    if dt.kind != "f" or dt.itemsize not in (4, 8):
        raise TypeError(f"CUDA kernels take float32 or float64 arrays, got {dt}")
    for a in arrays[1:]:
        if a.dtype != dt:
            raise TypeError(f"expected arrays of one dtype, got {dt} and {a.dtype}")


def unary_forward(code, x, out, a0=0.0, a1=0.0):
    """``out = f(x)`` for an elementwise unary opcode (``opcodes.UNARY_FIRST..`` / ``UNARY2_FIRST..``).

    Args: ``x``, ``out``: device arrays of one float dtype and size (any shape, C-contiguous; ``out`` may be
    ``x``); ``a0``, ``a1``: the row's float attributes (clamp's bounds, pow's exponent, affine's ``a0 * x + a1``,
    logit's eps; for ``STEP_FN``, ``a1`` chooses floor / ceil / trunc / round / sign: ``pointwise_values.STEP_*``,
    and ``a0`` is round's decimals).
    """
    if not _is_unary(code):
        raise ValueError(f"opcode {code} is not an elementwise unary op")
    x, out = L.flat(x), L.flat(out)
    _check_float(x, out)
    L.check_size("x", x, out.size)
    specialized("unary_forward", code)[L.flat_grid(out.size)](x, out, float(a0), float(a1))


def binary_forward(code, x, y, out):
    """``out = f(x, y)`` for a binary opcode (``opcodes.BINARY_FIRST..BINARY_LAST``), numpy broadcasting.

    Args: ``x``, ``y``: C-contiguous device arrays (one float dtype) whose shapes broadcast to ``out.shape``;
    ``out``: C-contiguous, of the broadcast shape (may be ``x`` or ``y`` when that one has the full shape).
    """
    if not K.BINARY_FIRST <= code <= K.BINARY_LAST:
        raise ValueError(f"opcode {code} is not an elementwise binary op")
    x, y, out = L.device_array(x), L.device_array(y), L.device_array(out)
    _check_float(x, y, out)
    shape = L.broadcast_shape(x.shape, y.shape)
    if L.broadcast_shape(shape, out.shape) != tuple(out.shape):
        raise ValueError(f"out has shape {tuple(out.shape)}, expected the broadcast shape {shape}")
    grid = L.flat_grid(out.size)
    if x.size == out.size and y.size == out.size:
        specialized("binary_forward", code)[grid](L.flat(x), L.flat(y), L.flat(out))
    else:
        meta = L.broadcast_meta(out.shape, [x.shape, y.shape])
        _binary_forward_broadcast[grid](code, L.flat(x), L.flat(y), L.flat(out), meta)


def unary_backward(code, x, out, g, gx, a0=0.0, a1=0.0, accumulate=True):
    """``gx += g * d(x, out, a0, a1)`` (``=`` without ``accumulate``) for an elementwise unary opcode.

    Args: ``x`` the op's input, ``out`` its output, ``g`` the cotangent of ``out``, ``gx`` that of ``x``:
    device arrays of one float dtype and size (C-contiguous); ``a0``, ``a1`` the row's attributes.
    """
    if not _is_unary(code):
        raise ValueError(f"opcode {code} is not an elementwise unary op")
    x, out, g, gx = L.flat(x), L.flat(out), L.flat(g), L.flat(gx)
    _check_float(x, out, g, gx)
    for name, a in (("x", x), ("out", out), ("gx", gx)):
        L.check_size(name, a, g.size)
    kernel = specialized("unary_backward", code)
    kernel[L.flat_grid(g.size)](x, out, g, gx, float(a0), float(a1), bool(accumulate))


def binary_backward(code, x, y, out, g, gx=None, gy=None, accumulate=True):
    """``gx += g * dx(x, y, out)``, ``gy += g * dy(x, y, out)`` for a binary opcode, broadcasting undone: the
    gradient of an operand that was broadcast is summed over the broadcast dims (a block reduction per element
    of the operand, no atomics).

    Args: ``x``, ``y``: the operands (C-contiguous, shapes broadcasting to ``out.shape``); ``out``, ``g``: the
    output and its cotangent (C-contiguous, the broadcast shape); ``gx`` / ``gy``: the cotangents of ``x`` /
    ``y`` (their shapes), or None where not wanted; ``accumulate``: add into them (else overwrite). One float
    dtype throughout.
    """
    from . import reduce

    if not K.BINARY_FIRST <= code <= K.BINARY_LAST:
        raise ValueError(f"opcode {code} is not an elementwise binary op")
    arrays = [L.device_array(a) for a in (x, y, out, g)]
    x, y, out, g = arrays
    grads = [L.device_array(a) for a in (gx, gy) if a is not None]
    _check_float(*arrays, *grads)
    shape = L.broadcast_shape(x.shape, y.shape)
    if tuple(out.shape) != shape or tuple(g.shape) != shape:
        raise ValueError(f"out and g must have the broadcast shape {shape}, got {tuple(out.shape)}, {tuple(g.shape)}")
    for name, grad, operand in (("gx", gx, x), ("gy", gy, y)):
        if grad is not None and L.device_array(grad).size != operand.size:
            raise ValueError(f"{name} has {L.device_array(grad).size} elements, expected {operand.size}")
    if x.size == g.size and y.size == g.size:
        has_x, has_y = gx is not None, gy is not None
        fx = L.flat(gx) if has_x else L.flat(g)  # (an unused placeholder of the right type)
        fy = L.flat(gy) if has_y else L.flat(g)
        flat_ops = (L.flat(x), L.flat(y), L.flat(out), L.flat(g))
        kernel = specialized("binary_backward", code)
        kernel[L.flat_grid(g.size)](*flat_ops, fx, fy, has_x, has_y, bool(accumulate))
        return
    if gx is not None:
        reduce.broadcast_backward(code, 0, x, y, out, g, L.device_array(gx), accumulate)
    if gy is not None:
        reduce.broadcast_backward(code, 1, x, y, out, g, L.device_array(gy), accumulate)


def unary_jvp(code, x, out, t, res, a0=0.0, a1=0.0):
    """Tangent of an elementwise unary op: ``res = t * d(x, out, a0, a1)`` (arrays as ``unary_backward``)."""
    unary_backward(code, x, out, t, res, a0, a1, accumulate=False)


def binary_jvp(code, x, y, out, tx, ty, res):
    """Tangent of a binary op: ``res = tx * dx(x, y, out) + ty * dy(x, y, out)``, numpy broadcasting.

    Args: ``x``, ``y``: the operands (C-contiguous, shapes broadcasting to ``out.shape``); ``tx``, ``ty``: their
    tangents (their shapes), or None for a zero tangent; ``out``, ``res``: the output and its tangent (the
    broadcast shape). One float dtype.
    """
    if not K.BINARY_FIRST <= code <= K.BINARY_LAST:
        raise ValueError(f"opcode {code} is not an elementwise binary op")
    x, y, out, res = (L.device_array(a) for a in (x, y, out, res))
    tangents = [L.device_array(t) for t in (tx, ty) if t is not None]
    _check_float(x, y, out, res, *tangents)
    shape = L.broadcast_shape(x.shape, y.shape)
    if tuple(out.shape) != shape or tuple(res.shape) != shape:
        raise ValueError(f"out and res must have the broadcast shape {shape}")
    for name, t, operand in (("tx", tx, x), ("ty", ty, y)):
        if t is not None and L.device_array(t).size != operand.size:
            raise ValueError(f"{name} has {L.device_array(t).size} elements, expected {operand.size}")
    fx, fy = L.flat(x), L.flat(y)
    ftx = L.flat(tx) if tx is not None else fx  # (an unused placeholder of the right type)
    fty = L.flat(ty) if ty is not None else fy
    meta = L.broadcast_meta(shape, [x.shape, y.shape])
    grid = L.flat_grid(res.size)
    _binary_jvp[grid](code, fx, fy, L.flat(out), ftx, fty, L.flat(res), meta, tx is not None, ty is not None)


def compare(op, x, y, out):
    """``out = x <op> y`` (bool), ``op`` one of torch's ``eq ne lt le gt ge logical_and logical_or`` (or numpy's
    names), numpy broadcasting.

    Args: ``x``, ``y``: C-contiguous float device arrays of one dtype; ``out``: a bool device array of the
    broadcast shape.
    """
    if op not in COMPARISONS:
        raise ValueError(f"unknown comparison {op!r}; expected one of {', '.join(COMPARISONS)}")
    x, y, out = L.device_array(x), L.device_array(y), L.device_array(out)
    _check_float(x, y)
    if out.dtype.kind != "b":
        raise TypeError(f"compare writes a bool array, got {out.dtype}")
    shape = L.broadcast_shape(x.shape, y.shape)
    if tuple(out.shape) != shape:
        raise ValueError(f"out has shape {tuple(out.shape)}, expected {shape}")
    meta = L.broadcast_meta(shape, [x.shape, y.shape])
    _compare[L.flat_grid(out.size)](COMPARISONS[op], L.flat(x), L.flat(y), L.flat(out), meta)


def where(mask, x, y, out):
    """``out = x where mask else y``, numpy broadcasting of all three.

    Args: ``mask``: a bool device array, or 0/1 of ``x``'s dtype (a WHERE row's mask in the value arena);
    ``x``, ``y``: float device arrays of one dtype; ``out``: C-contiguous, of the broadcast shape of the three,
    the dtype of ``x``.
    """
    mask, x, y, out = (L.device_array(a) for a in (mask, x, y, out))
    _check_float(x, y, out)
    if mask.dtype.kind != "b" and mask.dtype != x.dtype:
        raise TypeError(f"where's mask must be bool or {x.dtype}, got {mask.dtype}")
    shape = L.broadcast_shape(mask.shape, x.shape, y.shape)
    if tuple(out.shape) != shape:
        raise ValueError(f"out has shape {tuple(out.shape)}, expected {shape}")
    meta = L.broadcast_meta(shape, [mask.shape, x.shape, y.shape])
    _where[L.flat_grid(out.size)](L.flat(mask), L.flat(x), L.flat(y), L.flat(out), meta)


def fill(out, value):
    """``out[...] = value`` (a C-contiguous device array: float32, float64, int64 or bool)."""
    out = L.flat(out)
    _fill[L.flat_grid(out.size)](out, float(value))


def cast(x, out):
    """``out[...] = x`` converted to ``out``'s dtype (float32 / float64 / int64 / bool, in and out, both
    C-contiguous, of one size; as numpy's ``astype``: floats to integers truncate, nonzero to bool is True):
    dtype casts and contiguous copies."""
    x, out = L.flat(x), L.flat(out)
    if out.dtype.kind not in "fib":
        raise TypeError(f"cast writes float32, float64, int64 or bool, got {out.dtype}")
    L.check_size("x", x, out.size)
    _cast[L.flat_grid(out.size)](x, out)


def copy(x, out):
    """``out[...] = x`` for C-contiguous device arrays of one size (a copy of a view: ``strided.gather_strided``)."""
    cast(x, out)
