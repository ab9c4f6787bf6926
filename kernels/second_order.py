"""Forward over reverse, compiled: the reverse sweep of ``cpu.py`` that also carries the tangents of the cotangents.

When the values of a tape carry tangents (a dual level was active during the forward) and backward runs inside
that level, the cotangents themselves have tangents: the tangent of the gradient is a Hessian-vector product.
``tangent_reverse_sweep`` computes both in one pass over the rows. Beside the arenas of ``cpu.reverse_sweep``
(``vals``: values, ``cot``: cotangents) it takes two more of the same layout:

- ``tvals``: the tangent of each value (zero where a tensor has none);
- ``tcot``: the tangent of each cotangent (zero-filled like ``cot``; seeded with the seeds' tangents).

Each row's rule is the JVP of its VJP. For an elementwise unary row ``out = f(x)`` with partial ``d = f'(x)``
(``pointwise.unary_partial``) and second derivative ``f''(x)`` (``unary_second`` below):

    cot[x]  += g * d
    tcot[x] += tg * d + g * f''(x) * tx

and for a binary row ``out = h(x, y)``, with the second partials ``(dxx, dxy, dyx, dyy)`` of ``binary_second``
(``dxy`` is the derivative of ``dx`` along ``y``, ``dyx`` that of ``dy`` along ``x``: equal where ``h`` is smooth;
they differ only where torch masks one partial, e.g. ``pow`` at ``y = 0``, and each follows the formula torch
differentiates):

    tcot[x] += tg * dx + g * (dxx * tx + dxy * ty)
    tcot[y] += tg * dy + g * (dyx * tx + dyy * ty)

Linear rows (copies, views, sums, gathers, scatters, ``where``) move ``tcot`` exactly as they move ``cot``;
bilinear rows (matmul, linear) add the product rule's second term. Rows without a rule here (``SECOND_ORDER``
is 0 for their opcode) stop the sweep with ``status[0] == UNSUPPORTED``; the caller then runs the
differentiable sweep instead (never a wrong answer). Big rows (``tape.BIG_ROW``) are swept from Python by
``ad/second_order.py`` with ``elementwise_tangent_chunk`` and numpy's matmul.
"""

import math

import numpy as np
from numba import njit
from numba.extending import register_jitable

from . import opcodes as K
from .cpu import (
    KERNEL,
    _column_sum_into,
    binary_partial_x,
    binary_partial_y,
    is_linear_row,
    linear_row_adjoint,
    matmul_layout,
    operand_live,
    saved_values_lost,
    times,
    unary_partial,
)
from .forward_rows import add_bias, linear_into, linear_row, matmul_into
from .pointwise import (
    GELU_CUBIC,
    HALF_SQRT_PI,
    INV_SQRT_2PI,
    LN2,
    LN10,
    PI,
    SQRT_2_OVER_PI,
    TWO_OVER_SQRT_PI,
    erfinv,
    selecting,
    sigmoid,
    softplus,
)

UNSUPPORTED = 3  # status[0]: row status[1] has no compiled second-order rule

# --- second derivatives of the unary ops: f''(x), from x, out = f(x) and the row's attributes ------------------


@register_jitable
def _piecewise_linear(code):
    """A unary op whose first partial is constant between kinks: its f'' is 0 (and no product is formed)."""
    return (
        code == K.COPY
        or code == K.NEG
        or code == K.AFFINE
        or code == K.ABS
        or code == K.RELU
        or code == K.CLAMP
        or code == K.STEP_FN
    )


@register_jitable
def unary_second(code, x, out, a0, a1):
    """f''(x) of an elementwise unary op (the derivative of ``pointwise.unary_partial`` along x)."""
    if _piecewise_linear(code):
        return 0.0
    if code == K.EXP or code == K.EXPM1:
        return out + 1.0 if code == K.EXPM1 else out
    if code == K.LOG:
        return -1.0 / (x * x)
    if code == K.LOG1P:
        return -1.0 / ((x + 1.0) * (x + 1.0))
    if code == K.SQRT:
        return -0.25 / (out * out * out)
    if code == K.RSQRT:
        o2 = out * out
        return 0.75 * o2 * o2 * out
    if code == K.SIN:
        return -math.sin(x)
    if code == K.COS:
        return -math.cos(x)
    if code == K.TAN:
        return 2.0 * out * (1.0 + out * out)
    if code == K.TANH:
        return -2.0 * out * (1.0 - out * out)
    if code == K.SIGMOID:
        return out * (1.0 - out) * (1.0 - 2.0 * out)
    if code == K.ERF:
        return -2.0 * x * TWO_OVER_SQRT_PI * math.exp(-(x * x))
    if code == K.ERFC:
        return 2.0 * x * TWO_OVER_SQRT_PI * math.exp(-(x * x))
    if code == K.SQUARE:
        return 2.0
    if code == K.POW_SCALAR:  # x ** a0; 0 for a0 in {0, 1}, where torch's first partial is a constant
        if a0 == 0.0 or a0 == 1.0:
            return 0.0
        return a0 * (a0 - 1.0) * x ** (a0 - 2.0)
    if code == K.RPOW_SCALAR:
        lg = math.log(a0)
        return out * lg * lg
    if code == K.RDIV_SCALAR:  # a0 / x, from the output as the first partial: r = 1 / x
        if a0 == 0.0:
            return out * 0.0
        r = out / a0
        return 2.0 * a0 * r * r * r
    if code == K.ATAN:
        s = x * x + 1.0
        return -2.0 * x / (s * s)
    if code == K.ASIN or code == K.ACOS:
        s = 1.0 - x * x
        v = x / (s * math.sqrt(s))
        return v if code == K.ASIN else -v
    if code == K.SINH:
        return math.sinh(x)
    if code == K.COSH:
        return math.cosh(x)
    if code == K.ASINH:
        s = x * x + 1.0
        return -x / (s * math.sqrt(s))
    if code == K.ACOSH:
        s = x * x - 1.0
        return -x / (s * math.sqrt(s))
    if code == K.ATANH:
        s = 1.0 - x * x
        return 2.0 * x / (s * s)
    if code == K.LOG2:
        return -1.0 / (x * x * LN2)
    if code == K.LOG10:
        return -1.0 / (x * x * LN10)
    if code == K.EXP2:
        return out * LN2 * LN2
    if code == K.ERFINV:
        y = erfinv(x)
        d = HALF_SQRT_PI * math.exp(y * y)
        return 2.0 * y * d * d
    if code == K.LOGIT:  # 0 outside [eps, 1 - eps] (as the first partial); NaN outside [0, 1] without eps
        if not math.isnan(a0) and (x < a0 or x > 1.0 - a0):
            return 0.0
        if math.isnan(a0) and not (x >= 0.0 and x <= 1.0):
            return math.nan  # (the first partial is NaN there)
        s = x * (1.0 - x)
        return (2.0 * x - 1.0) / (s * s)
    if code == K.SINC:  # sin(u) / u, u = pi x: (-sin u / u - 2 cos u / u^2 + 2 sin u / u^3) pi^2
        u = PI * x
        if x * x < 1e-6:  # the series of pointwise.d_sinc's, differentiated (the quotient below cancels)
            u2 = u * u
            return PI * PI * (-1.0 / 3.0 + u2 * (1.0 / 10.0 - u2 * (1.0 / 168.0 - u2 / 6480.0)))
        s = math.sin(u)
        c = math.cos(u)
        return (-s / u - 2.0 * c / (u * u) + 2.0 * s / (u * u * u)) * PI * PI
    if code == K.SILU:  # s (1 - s) (2 + x (1 - 2 s))
        s = sigmoid(x)
        return s * (1.0 - s) * (2.0 + x * (1.0 - 2.0 * s))
    if code == K.GELU:
        if a0 == 0.0:  # phi(x) (2 - x^2)
            return INV_SQRT_2PI * math.exp(-0.5 * (x * x)) * (2.0 - x * x)
        # d = (1 + t) / 2 + x (1 - t^2) u' / 2, t = tanh(u), u' = k (1 + 3 c x^2): (1 - t^2) (u' - x t u'^2 + 3 c k x^2)
        t = math.tanh(SQRT_2_OVER_PI * (x + GELU_CUBIC * (x * x * x)))
        du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_CUBIC * (x * x))
        return (1.0 - t * t) * (du - x * t * du * du + 3.0 * GELU_CUBIC * SQRT_2_OVER_PI * (x * x))
    if code == K.MISH:  # (1 - t^2) s (2 + x (1 - s) - 2 x t s), t = tanh(softplus(x)), s = sigmoid(x)
        t = math.tanh(softplus(x))
        s = sigmoid(x)
        return (1.0 - t * t) * s * (2.0 + x * (1.0 - s) - 2.0 * x * t * s)
    if code == K.ELU:  # as pointwise.d_elu's derivative: 0 at x = 0 (torch's), and at NaN
        return a1 * a0 * math.exp(x) if x < 0.0 else 0.0
    if code == K.CELU:
        return math.exp(x / a0) / a0 if x < 0.0 else 0.0
    return math.nan  # no second derivative known: poison rather than answer wrong (SECOND_ORDER excludes it)


@register_jitable
def binary_second(code, x, y, out):
    """``(dxx, dxy, dyx, dyy)`` of a same-shape elementwise binary op (see the module docstring)."""
    if code == K.MUL:
        return 0.0, 1.0, 1.0, 0.0
    if code == K.DIV:
        r = 1.0 / y
        return 0.0, -r * r, -r * r, 2.0 * x * r * r * r
    if code == K.POW:
        # torch's rules differentiated as torch does: dx = y x^(y-1), 0 where y = 0; dy = out log x, 0 where
        # x = 0 and y >= 0; and the same masks inside (pow's own partials of x^(y-1) and of out = x^y)
        lx = math.log(x) if x > 0.0 else (-math.inf if x == 0.0 else math.nan)
        dxx = 0.0
        dxy = 0.0
        if y != 0.0:
            if y != 1.0:
                dxx = y * (y - 1.0) * x ** (y - 2.0)
            dxy = x ** (y - 1.0)
            if not (x == 0.0 and y - 1.0 >= 0.0):
                dxy += y * x ** (y - 1.0) * lx
        dyx = 0.0
        dyy = 0.0
        if not (x == 0.0 and y >= 0.0):
            dyx = x**y / x
            if y != 0.0:
                dyx += y * x ** (y - 1.0) * lx
            dyy = out * lx * lx
        return dxx, dxy, dyx, dyy
    if code == K.TANH_BACKWARD:  # x (1 - y^2)
        return 0.0, -2.0 * y, -2.0 * y, -2.0 * x
    if code == K.ATAN2:
        # the first partials' formulas differentiated (pointwise.dx_atan2: y / rs, rs = x^2 + y^2, 1 at (0, 0)
        # where the partials are 0): (x^2 - y^2) / r^2 for both mixed ones, but 1 and -1 at (0, 0), as the
        # recorded rules (grad of grad, forward over reverse) differentiate them
        rs = x * x + y * y
        if rs == 0.0:
            rs = 1.0
        rs2 = rs * rs
        return -2.0 * x * y / rs2, (rs - 2.0 * y * y) / rs2, (2.0 * x * x - rs) / rs2, 2.0 * x * y / rs2
    if code == K.HYPOT:
        o3 = out * out * out
        return y * y / o3, -x * y / o3, -x * y / o3, x * x / o3
    if code == K.LOGADDEXP:
        p = 1.0 / (1.0 + math.exp(y - x))
        q = 1.0 / (1.0 + math.exp(x - y))
        return p * q, -p * q, -p * q, p * q
    if code == K.XLOGY:
        # dx = xlogy(m, y), m = 0 where x = 0 and y <= 0 (pointwise.dx_xlogy): along y, m / y (NaN at (0, 0),
        # 0 on the rest of the masked line); dy = x / y along x: 1 / y everywhere, as the recorded rules
        masked = 1.0 if (x != 0.0 or y > 0.0) else 0.0
        return 0.0, masked / y, 1.0 / y, -x / (y * y)
    if code == K.BCE_LOGITS:  # dx = sigmoid(x) - y, dy = -x
        s = sigmoid(x)
        return s * (1.0 - s), -1.0, -1.0, 0.0
    # add, sub, maximum, minimum, fmod, remainder, copysign: partials piecewise constant
    return 0.0, 0.0, 0.0, 0.0


@register_jitable
def _times(code, t, d):
    """``t * d``, 0 where the tangent ``t`` is exactly 0 (whatever ``d``: torch never forms that product) or
    where a selecting op's partial is 0 (whatever ``t``: ``pointwise.times``)."""
    return times(code, t, d) if t != 0.0 else 0.0


@register_jitable
def _second_term(code, g, da, ta, db, tb):
    """``g * (da * ta + db * tb)`` without the products that have an exact zero factor. A zero second partial is
    mostly a structural one (an operand the first partial does not depend on: mul's ``dxx``, add's, a mask of
    pow's), where torch forms no product: an infinite tangent there (from a value at a pole upstream, log at 0)
    adds nothing, not ``0 * inf``. A selecting op's second partials are 0 (torch's masks have no derivative), so
    an inf ``g`` gives no NaN there."""
    if g == 0.0 or selecting(code):
        return 0.0
    acc = 0.0
    if ta != 0.0 and da != 0.0:
        acc += da * ta
    if tb != 0.0 and db != 0.0:
        acc += db * tb
    return g * acc


@register_jitable
def _unary_second_term(code, g, x, out, a0, a1, tx):
    """``g * f''(x) * tx``, nothing where a factor is an exact zero or the op is piecewise linear (its first
    partial a constant: torch's double backward forms no product there, so an infinite tangent adds nothing)."""
    if g == 0.0 or tx == 0.0 or selecting(code):
        return 0.0
    if _piecewise_linear(code) or (code == K.POW_SCALAR and (a0 == 0.0 or a0 == 1.0)):
        return 0.0
    return g * unary_second(code, x, out, a0, a1) * tx


# Opcodes the compiled forward-over-reverse sweep has a rule for (the rest: the differentiable sweep).
_SECOND = np.zeros(256, np.uint8)
for _code in K.UNARY_CODES:
    _SECOND[_code] = 1
for _code in range(K.BINARY_FIRST, K.BINARY_LAST + 1):
    _SECOND[_code] = 1
for _code in (
    K.WHERE,
    K.GATHER_STRIDED,
    K.SCATTER_STRIDED,
    K.GATHER_MAP,
    K.SCATTER_MAP,
    K.SUM_ALL,
    K.MATMUL,
    K.LINEAR,
    K.LINEAR_BIAS,
    K.SAVED_INPUT,
    K.SAVED_RESULT,
):
    _SECOND[_code] = 1
SECOND_ORDER = _SECOND


@njit(**KERNEL)
def _clear_both_if_big(cot, tcot, big_off, big_n, off):
    """Zero the cotangent and tangent regions at ``off`` if it is one of the big regions (sorted ``big_off``)."""
    k = np.searchsorted(big_off, off)
    if k < big_off.shape[0] and big_off[k] == off:
        cot[off : off + big_n[k]] = 0.0
        tcot[off : off + big_n[k]] = 0.0


@njit(**KERNEL)
def tangent_reverse_sweep(
    rows,
    attrs,
    aux,
    vals,
    tvals,
    cot,
    tcot,
    live,
    visited,
    freed,
    modified,
    saves,
    second,
    transposed,
    start,
    stop,
    lowest,
    status,
    big_off,
    big_n,
):
    """``cpu.reverse_sweep`` with tangents: the same arguments plus ``tvals``, ``tcot``, ``second``
    (``SECOND_ORDER``) and ``transposed``; returns the new ``lowest``, or -1 with ``status`` set (FREED,
    MODIFIED, UNSUPPORTED).

    ``transposed``: use ``dyx`` for x and ``dxy`` for y. Forward over reverse differentiates each partial along
    the tangent (x's cotangent gets ``dxy * ty``, as torch's forward over reverse); a double backward whose
    direction sits on the inputs computes ``d/d(direction) cot[k]``, which torch's reverse over reverse gets by
    differentiating the direction input's partial along ``k``: the transposed mixed partials (they differ only
    where torch masks a partial). A second-order term whose factors include an exact zero (no cotangent, no
    tangent) is skipped, as torch's graphs never form it (an infinite partial times 0 is no NaN there)."""
    r = start
    while r >= stop and r >= lowest:
        o = rows[r, 1]
        if live[o] == 0:
            r -= 1
            continue
        op = rows[r, 0]
        code = op & K.CODE_MASK
        if second[code] == 0:
            status[0] = UNSUPPORTED
            status[1] = r
            return -1
        x = rows[r, 2]
        y = rows[r, 3]
        if saved_values_lost(r, op, o, x, y, freed, modified, saves, status):
            return -1
        visited[r] = 1
        xrg = (op & K.XRG) != 0
        yrg = (op & K.YRG) != 0
        n = rows[r, 4]
        a = rows[r, 5]
        a0 = attrs[r, 0]
        a1 = attrs[r, 1]
        if big_off.shape[0] != 0:
            if xrg and live[x] == 0:
                _clear_both_if_big(cot, tcot, big_off, big_n, x)
            if yrg and live[y] == 0:
                _clear_both_if_big(cot, tcot, big_off, big_n, y)
        if K.is_unary(code):
            if xrg:
                for i in range(n):
                    xv = vals[x + i]
                    ov = vals[o + i]
                    d = unary_partial(code, xv, ov, a0, a1)
                    g = cot[o + i]
                    cot[x + i] += times(code, g, d)
                    tx = tvals[x + i]
                    tcot[x + i] += _times(code, tcot[o + i], d) + _unary_second_term(code, g, xv, ov, a0, a1, tx)
        elif code >= K.BINARY_FIRST and code <= K.BINARY_LAST:
            for i in range(n):
                xv = vals[x + i]
                yv = vals[y + i]
                ov = vals[o + i]
                g = cot[o + i]
                tg = tcot[o + i]
                dxx, dxy, dyx, dyy = binary_second(code, xv, yv, ov)
                tx = tvals[x + i]
                ty = tvals[y + i]
                if transposed:
                    dxy, dyx = dyx, dxy
                if xrg:
                    dx = binary_partial_x(code, xv, yv, ov)
                    cot[x + i] += times(code, g, dx)
                    tcot[x + i] += _times(code, tg, dx) + _second_term(code, g, dxx, tx, dxy, ty)
                if yrg:
                    dy = binary_partial_y(code, xv, yv, ov)
                    cot[y + i] += times(code, g, dy)
                    tcot[y + i] += _times(code, tg, dy) + _second_term(code, g, dyx, tx, dyy, ty)
        elif is_linear_row(code):  # the tangents of the cotangents move as the cotangents
            linear_row_adjoint(code, vals, cot, aux, a, o, x, y, n, a0, xrg, yrg)
            linear_row_adjoint(code, vals, tcot, aux, a, o, x, y, n, a0, xrg, yrg)
        elif code == K.MATMUL:
            _matmul_tangent(vals, tvals, cot, tcot, aux, a, o, x, y, xrg, yrg)
        elif code == K.LINEAR or code == K.LINEAR_BIAS:
            _linear_tangent(vals, tvals, cot, tcot, aux[a], aux[a + 1], aux[a + 2], o, x, y, xrg, yrg)
            if code == K.LINEAR_BIAS and aux[a + 5] != 0:  # the bias: its offset and row live in aux
                b = aux[a + 3]
                if live[b] == 0 and big_off.shape[0] != 0:
                    _clear_both_if_big(cot, tcot, big_off, big_n, b)
                _column_sum_into(cot, aux[a], aux[a + 2], o, b)
                _column_sum_into(tcot, aux[a], aux[a + 2], o, b)
                lowest = operand_live(live, b, aux[a + 4], lowest)
        if xrg:
            lowest = operand_live(live, x, rows[r, 6], lowest)
        if yrg:
            lowest = operand_live(live, y, rows[r, 7], lowest)
        r -= 1
    return lowest


@njit(**KERNEL)
def _matmul_tangent(vals, tvals, cot, tcot, aux, a, o, x, y, xrg, yrg):
    """``gx += g y^T``, ``gy += x^T g`` and their tangents (product rule); aux as ``cpu._matmul_backward``."""
    B, M, K_, N, xbs, ybs = matmul_layout(aux, a)
    for b in range(B):
        g = cot[o + b * M * N : o + (b + 1) * M * N].reshape((M, N))
        tg = tcot[o + b * M * N : o + (b + 1) * M * N].reshape((M, N))
        xb0 = x + b * xbs
        yb0 = y + b * ybs
        if xrg:
            yb = vals[yb0 : yb0 + K_ * N].reshape((K_, N))
            tyb = tvals[yb0 : yb0 + K_ * N].reshape((K_, N))
            gx = cot[xb0 : xb0 + M * K_].reshape((M, K_))
            tgx = tcot[xb0 : xb0 + M * K_].reshape((M, K_))
            gx += np.dot(g, yb.T)
            tgx += np.dot(tg, yb.T) + np.dot(g, tyb.T)
        if yrg:
            xb = vals[xb0 : xb0 + M * K_].reshape((M, K_))
            txb = tvals[xb0 : xb0 + M * K_].reshape((M, K_))
            gy = cot[yb0 : yb0 + K_ * N].reshape((K_, N))
            tgy = tcot[yb0 : yb0 + K_ * N].reshape((K_, N))
            gy += np.dot(xb.T, g)
            tgy += np.dot(xb.T, tg) + np.dot(txb.T, g)


@njit(**KERNEL)
def _linear_tangent(vals, tvals, cot, tcot, M, K_, N, o, x, y, xrg, yrg):
    """out (M, N) = x (M, K) @ y.T with y (N, K): ``gx += g @ y``, ``gy += g.T @ x`` and their tangents."""
    g = cot[o : o + M * N].reshape((M, N))
    tg = tcot[o : o + M * N].reshape((M, N))
    yv = vals[y : y + N * K_].reshape((N, K_))
    xv = vals[x : x + M * K_].reshape((M, K_))
    if xrg:
        gx = cot[x : x + M * K_].reshape((M, K_))
        tgx = tcot[x : x + M * K_].reshape((M, K_))
        gx += np.dot(g, yv)
        tgx += np.dot(tg, yv) + np.dot(g, tvals[y : y + N * K_].reshape((N, K_)))
    if yrg:
        gy = cot[y : y + N * K_].reshape((N, K_))
        tgy = tcot[y : y + N * K_].reshape((N, K_))
        gy += np.dot(g.T, xv)
        tgy += np.dot(tg.T, xv) + np.dot(g.T, tvals[x : x + M * K_].reshape((M, K_)))


@njit(**KERNEL)
def elementwise_tangent_chunk(
    code, binary, x, y, out, tx, ty, g, tg, gx, tgx, gy, tgy, a0, a1, has_x, has_y, transposed
):
    """A big same-shape elementwise row (flat arrays): ``gx += g dx``, ``tgx += tg dx + g (...)`` and the same
    for ``y`` (binary only). The caller zeroes a region before its first write."""
    for i in range(g.shape[0]):
        if binary:
            dxx, dxy, dyx, dyy = binary_second(code, x[i], y[i], out[i])
            if transposed:
                dxy, dyx = dyx, dxy
            if has_x:
                dx = binary_partial_x(code, x[i], y[i], out[i])
                gx[i] += times(code, g[i], dx)
                tgx[i] += _times(code, tg[i], dx) + _second_term(code, g[i], dxx, tx[i], dxy, ty[i])
            if has_y:
                dy = binary_partial_y(code, x[i], y[i], out[i])
                gy[i] += times(code, g[i], dy)
                tgy[i] += _times(code, tg[i], dy) + _second_term(code, g[i], dyx, tx[i], dyy, ty[i])
        elif has_x:
            d = unary_partial(code, x[i], out[i], a0, a1)
            gx[i] += times(code, g[i], d)
            tgx[i] += _times(code, tg[i], d) + _unary_second_term(code, g[i], x[i], out[i], a0, a1, tx[i])


# --- the forward tangent pass: the JVP of each row, in recording order ----------------------------------------
# (what a double backward needs: the tangent of every value along a direction given at some leaves, before
# ``tangent_reverse_sweep`` runs; see ad/double_backward.py). Rows that accumulate into their output (the
# scatters, which may share an output between rows) and rows without a rule here stop it (UNSUPPORTED).

_FORWARD = np.zeros(256, np.uint8)
for _code in K.UNARY_CODES:
    _FORWARD[_code] = 1
for _code in range(K.BINARY_FIRST, K.BINARY_LAST + 1):
    _FORWARD[_code] = 1
for _code in (
    K.WHERE,
    K.GATHER_STRIDED,
    K.GATHER_MAP,
    K.SUM_ALL,
    K.MATMUL,
    K.LINEAR,
    K.LINEAR_BIAS,
    K.SAVED_INPUT,
    K.SAVED_RESULT,
):
    _FORWARD[_code] = 1
FORWARD_TANGENT = _FORWARD


@njit(**KERNEL)
def tangent_forward_sweep(rows, attrs, aux, vals, tvals, forward_ok, start, stop, status):
    """``tvals[out] =`` the JVP of rows ``start..stop`` (increasing) from their operands' tangents in ``tvals``
    (the caller zeroed the arena and wrote the directions), by the rows' reverse partials (the fused double
    backward's rule: see the binary rows). Returns 0, or -1 with ``status[0] ==
    UNSUPPORTED`` and ``status[1]`` the row."""
    for r in range(start, stop + 1):
        op = rows[r, 0]
        code = op & K.CODE_MASK
        if forward_ok[code] == 0:
            status[0] = UNSUPPORTED
            status[1] = r
            return -1
        o = rows[r, 1]
        x = rows[r, 2]
        y = rows[r, 3]
        n = rows[r, 4]
        a = rows[r, 5]
        a0 = attrs[r, 0]
        a1 = attrs[r, 1]
        if K.is_unary(code):
            for i in range(n):
                tvals[o + i] = times(code, tvals[x + i], unary_partial(code, vals[x + i], vals[o + i], a0, a1))
        elif code >= K.BINARY_FIRST and code <= K.BINARY_LAST:
            for i in range(n):
                xv = vals[x + i]
                yv = vals[y + i]
                ov = vals[o + i]
                dx = binary_partial_x(code, xv, yv, ov)
                dy = binary_partial_y(code, xv, yv, ov)
                # the reverse partials, not maximum/minimum's forward rule (pointwise.extreme_tangent): these
                # tangents stand for the double backward's cotangents (ad/double_backward.py), which flow through
                # the reverse rule; the two differ at a NaN operand (torch's double backward and forward over
                # reverse differ there too). ``times``: an unchosen side's inf tangent gives 0, as the mask does.
                tvals[o + i] = times(code, tvals[x + i], dx) + times(code, tvals[y + i], dy)
        elif code == K.WHERE:
            for i in range(n):
                tvals[o + i] = tvals[x + i] if vals[a + i] != 0 else tvals[y + i]
        elif code == K.GATHER_STRIDED or code == K.GATHER_MAP or code == K.SUM_ALL:  # linear: the row's own map
            linear_row(code, aux, a, n, a0, tvals, x, tvals, o)
        elif code == K.MATMUL:  # bilinear: d(x y) = tx y + x ty
            matmul_into(aux, a, tvals, x, vals, y, tvals, o, False)
            matmul_into(aux, a, vals, x, tvals, y, tvals, o, True)
        elif code == K.LINEAR or code == K.LINEAR_BIAS:
            M = aux[a]
            K_ = aux[a + 1]
            N = aux[a + 2]
            linear_into(M, K_, N, tvals, x, vals, y, tvals, o, False)
            linear_into(M, K_, N, vals, x, tvals, y, tvals, o, True)
            if code == K.LINEAR_BIAS:
                add_bias(tvals, o, M, N, tvals, aux[a + 3])
    return 0
