"""Per-element local partials, in scalar form, for the elementwise ops of ``opcodes.py``.

These are plain Python functions over ``math``: ``cpu.py`` compiles them with ``@njit`` and the CUDA
kernels with ``cuda.jit(device=True)``, so each derivative formula exists once for both targets. The
differentiable rules in ``ad/ops.py`` state the same formulas with ``ad`` ops (for ``create_graph``); the
op-table tests check that both agree.

Conventions follow torch: relu'(0) = 0, abs'(0) = abs'(NaN) = 0, d/dx x**0 = 0, maximum/minimum ties split 0.5/0.5.
"""

import math

from . import opcodes as K

TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def unary_partial(code, x, out, a0, a1):
    """d out / d x for an elementwise unary op, from its input ``x``, output ``out`` and attributes."""
    if code == K.COPY:
        return 1.0
    if code == K.AFFINE:
        return a0
    if code == K.NEG:
        return -1.0
    if code == K.EXP:
        return out
    if code == K.LOG:
        return 1.0 / x
    if code == K.SIN:
        return math.cos(x)
    if code == K.COS:
        return -math.sin(x)
    if code == K.TANH:
        return 1.0 - out * out
    if code == K.SIGMOID:
        return out * (1.0 - out)
    if code == K.RELU:
        return 1.0 if out > 0.0 else 0.0
    if code == K.SQUARE:
        return 2.0 * x
    if code == K.ABS:
        if x > 0.0:
            return 1.0
        if x < 0.0:
            return -1.0
        return 0.0  # at 0 and at NaN: torch's sgn
    if code == K.LOG1P:
        return 1.0 / (1.0 + x)
    if code == K.EXPM1:
        return out + 1.0
    if code == K.SQRT:
        return 0.5 / out
    if code == K.RSQRT:
        return -0.5 * out * out * out
    if code == K.TAN:
        return 1.0 + out * out
    if code == K.ERF:
        return TWO_OVER_SQRT_PI * math.exp(-x * x)
    if code == K.CLAMP:
        above_lo = x >= a0 or math.isnan(a0)
        below_hi = x <= a1 or math.isnan(a1)
        return 1.0 if (above_lo and below_hi) else 0.0
    if code == K.POW_SCALAR:
        if a0 == 0.0:
            return 0.0
        return a0 * x ** (a0 - 1.0)
    if code == K.RPOW_SCALAR:
        return out * math.log(a0)
    if code == K.RDIV_SCALAR:
        return -a0 / (x * x)
    return math.nan  # unknown opcode: poison the result rather than return a wrong number


def binary_partial_x(code, x, y, out):
    """d out / d x for a same-shape elementwise binary op."""
    if code == K.ADD or code == K.SUB:
        return 1.0
    if code == K.MUL:
        return y
    if code == K.DIV:
        return 1.0 / y
    if code == K.POW:
        if y == 0.0:
            return 0.0
        return y * x ** (y - 1.0)
    if code == K.MAXIMUM:
        return 1.0 if x > y else (0.5 if x == y else (0.0 if x < y else 1.0))
    if code == K.MINIMUM:
        return 1.0 if x < y else (0.5 if x == y else (0.0 if x > y else 1.0))
    if code == K.TANH_BACKWARD:
        return 1.0 - y * y
    return math.nan


def binary_partial_y(code, x, y, out):
    """d out / d y for a same-shape elementwise binary op."""
    if code == K.ADD:
        return 1.0
    if code == K.SUB:
        return -1.0
    if code == K.MUL:
        return x
    if code == K.DIV:
        return -x / (y * y)
    if code == K.POW:
        if x == 0.0 and y >= 0.0:
            return 0.0
        return out * math.log(x)
    if code == K.MAXIMUM:
        return 1.0 if y > x else (0.5 if x == y else (0.0 if y < x else 1.0))
    if code == K.MINIMUM:
        return 1.0 if y < x else (0.5 if x == y else (0.0 if y > x else 1.0))
    if code == K.TANH_BACKWARD:
        return -2.0 * x * y
    return math.nan
