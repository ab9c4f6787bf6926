"""The reverse sweep on the CPU: one ``@njit`` call walks a tape's rows backwards.

Inputs (all built by ``ad/tape.py`` without per-row Python work; see its header for the layout):

- ``rows``  int64 (R, 8): ``[opcode|XRG|YRG, out, x, y, n, aux, x_row, y_row]``; ``out``/``x``/``y`` are
  offsets into the value arena, ``n`` the element count of ``out``, ``aux`` an offset into ``aux``,
  ``x_row``/``y_row`` the rows that produced the operands (used to stop the sweep early).
- ``attrs`` float64 (R, 2): per-row scalar attributes (exponents, clamp bounds, affine coefficients).
- ``aux``   int64: shapes, strides and index maps of structural ops.
- ``vals``  the value arena (float32 or float64), ``cot`` the cotangent arena (same layout, zero-filled).
- ``live``  uint8 per arena offset: 1 once the tensor starting there has received a cotangent.
- ``visited`` uint8 per row: set for each row the sweep ran (the caller marks them freed afterwards).
- ``freed``  uint8 per row: rows whose saved values were released by an earlier backward.

Rows whose output has no cotangent are skipped, so sweeping a tape shared by several graphs only does the
work of the graph being differentiated. The sweep runs from row ``start`` down to row ``stop`` (a row whose
tensor has a Python hook), and no further than ``lowest``, the smallest row that produced a live tensor
(lowered as operands become live). The return value is the new
``lowest``, or ``-2 - r`` if row ``r`` had been freed (nothing is written to the caller's ``.grad`` then).
"""

import math

import numpy as np
from numba import njit, uint64
from numba.extending import register_jitable

from . import opcodes as K
from . import pointwise
from .vmath import exp as vexp
from .vmath import in_trig_range, sin_cos

# Every kernel: cached on disk, releases the GIL, and follows numpy's floating-point error model (x / 0 is
# inf or nan, as in the forward pass, not Python's ZeroDivisionError); never fastmath (NaN and inf stay exact).
KERNEL = {"cache": True, "nogil": True, "error_model": "numpy"}

unary_partial = njit(inline="always", **KERNEL)(pointwise.unary_partial)
binary_partial_x = njit(inline="always", **KERNEL)(pointwise.binary_partial_x)
binary_partial_y = njit(inline="always", **KERNEL)(pointwise.binary_partial_y)
# The same partials as functions numba does not inline: the big-row loops below call them with a constant opcode,
# which LLVM inlines and folds to the one formula (the loop vectorizes), at a fraction of the compile time of
# numba's own inlining (a deep copy of the whole opcode switch per call site: ~16 s of a chunk kernel's compile).
unary_partial_call = njit(**KERNEL)(pointwise.unary_partial)
binary_partial_x_call = njit(**KERNEL)(pointwise.binary_partial_x)
binary_partial_y_call = njit(**KERNEL)(pointwise.binary_partial_y)
times = njit(inline="always", **KERNEL)(pointwise.times)  # g * d, selecting where torch selects
extreme_tangent = njit(inline="always", **KERNEL)(pointwise.extreme_tangent)  # maximum / minimum: torch's jvp

# What each op's backward reads (torch's "saved variables"): its operand x, y, its output, or other data
# (a mask). Sweeping such a row after its graph was freed is an error, and so is reading a value that was
# modified in place since it was recorded; ops that read nothing (add, copies, sums, indexing) may be swept
# again, as in torch.
READS_X = 1
READS_Y = 2
READS_OUT = 4
READS_OTHER = 8
_SAVES = np.zeros(256, np.uint8)
for _code in (K.ABS, K.LOG, K.LOG1P, K.SIN, K.COS, K.ERF, K.SQUARE, K.CLAMP, K.POW_SCALAR):
    _SAVES[_code] = READS_X
for _code in (
    K.ATAN,
    K.ASIN,
    K.ACOS,
    K.SINH,
    K.COSH,
    K.ASINH,
    K.ACOSH,
    K.ATANH,
    K.LOG2,
    K.LOG10,
    K.ERFC,
    K.LOGIT,
    K.SINC,
):
    _SAVES[_code] = READS_X
for _code in (K.SILU, K.GELU, K.MISH, K.ELU, K.CELU):  # the activations: torch's nodes save self
    _SAVES[_code] = READS_X
_SAVES[K.ERFINV] = READS_X  # its partial recomputes erfinv(x): torch's node saves the input, not the result
for _code in (K.EXP2, K.RDIV_SCALAR):  # rdiv: torch's reciprocal saves its result
    _SAVES[_code] = READS_OUT
_SAVES[K.SAVED_INPUT] = READS_X  # guard rows of composites (ad/saved.py): they check, and compute nothing
_SAVES[K.SAVED_RESULT] = READS_OUT
for _code in (K.ATAN2, K.FMOD, K.REMAINDER, K.XLOGY, K.BCE_LOGITS):
    _SAVES[_code] = READS_X | READS_Y
for _code in (K.HYPOT, K.COPYSIGN):
    _SAVES[_code] = READS_X | READS_Y | READS_OUT
_SAVES[K.LOGADDEXP] = READS_X | READS_Y  # its partials read x and y only, as torch's node
_SAVES[K.CROSS_ENTROPY] = READS_X  # the logits: its backward recomputes their softmax
for _code in (K.EXP, K.EXPM1, K.SQRT, K.RSQRT, K.TAN, K.TANH, K.SIGMOID, K.RELU, K.RPOW_SCALAR, K.LOG_SOFTMAX):
    _SAVES[_code] = READS_OUT
for _code in (K.MUL, K.DIV, K.MAXIMUM, K.MINIMUM, K.TANH_BACKWARD, K.MATMUL, K.LINEAR, K.LINEAR_BIAS):
    _SAVES[_code] = READS_X | READS_Y
_SAVES[K.POW] = READS_X | READS_Y | READS_OUT
for _code in (K.PROD, K.AMAX, K.AMIN):
    _SAVES[_code] = READS_X | READS_OUT
_SAVES[K.WHERE] = READS_OTHER
# Products read each operand only for the other's gradient (torch saves ``other`` only when ``self`` requires
# grad): an operand that is modified in place after the op is no error when the other needs no gradient.
X_FOR_Y = 16  # x is read only for y's gradient
Y_FOR_X = 32  # y is read only for x's gradient
for _code in (K.MUL, K.MATMUL, K.LINEAR, K.LINEAR_BIAS):
    _SAVES[_code] |= X_FOR_Y | Y_FOR_X
_SAVES[K.DIV] |= X_FOR_Y  # d/dx x / y reads y only; d/dy reads both
SAVES = _SAVES


# (register_jitable: one source for Python callers, the CPU kernels and the CUDA sweep)
@register_jitable
def needed_reads_py(reads, op):
    """The values a row with opcode bits ``op`` (its ``XRG``/``YRG`` flags) and ``SAVES`` entry ``reads`` reads
    in backward."""
    if (reads & X_FOR_Y) != 0 and (op & K.YRG) == 0:
        reads &= ~READS_X
    if (reads & Y_FOR_X) != 0 and (op & K.XRG) == 0:
        reads &= ~READS_Y
    return reads & (READS_X | READS_Y | READS_OUT | READS_OTHER)


# status[0] after a sweep that returned -1
FREED = 1  # row status[1] had its saved values released by an earlier backward
MODIFIED = 2  # row status[1] reads the value at offset status[2], which was modified in place since


@register_jitable
def saved_error(r, op, o, x, y, freed, modified, saves):
    """``(FREED, 0)`` or ``(MODIFIED, offset)`` when row ``r`` (opcode bits ``op``, output ``o``, operands ``x``,
    ``y``) must not be swept because a value its backward reads was released or modified in place, else
    ``(0, 0)``: the check of every reverse sweep, CPU and CUDA."""
    reads = needed_reads_py(int(saves[op & K.CODE_MASK]), op)  # (int: numpy 2 refuses ~flags on a uint8)
    if reads != 0:
        if freed[r] != 0:
            return FREED, 0
        if (reads & READS_OUT) != 0 and modified[o] != 0:
            return MODIFIED, o
        if (reads & READS_X) != 0 and x >= 0 and modified[x] != 0:
            return MODIFIED, x
        if (reads & READS_Y) != 0 and y >= 0 and modified[y] != 0:
            return MODIFIED, y
    return 0, 0


@njit(inline="always", **KERNEL)
def saved_values_lost(r, op, o, x, y, freed, modified, saves, status):
    """Whether row ``r`` must not be swept (``saved_error``); if so, ``status`` says why (the sweep returns -1)."""
    kind, stale = saved_error(r, op, o, x, y, freed, modified, saves)
    if kind == 0:
        return False
    status[0] = kind
    status[1] = r
    status[2] = stale
    return True


@njit(inline="always", **KERNEL)
def unsigned(i):
    """``i`` (an offset or count, >= 0) as an unsigned index, for element loops: ``a[unsigned(x) + i]`` over
    ``i in range(unsigned(n))``, or an index made of signed terms cast whole, ``a[unsigned(x + map[i])]``.

    numba reads ``a[k]`` with a signed ``k`` as Python does (``a[k + len]`` when k < 0): a test per access,
    which keeps a loop over arena offsets from vectorizing; an unsigned ``k`` is used as is. On W1's rows of 16
    (``scripts/row_kernels_bench.py``): replay forward 97 -> 34 ns a row, fused step 135 -> 63, reverse sweep
    91 -> 78; slices taken per row (``vals[x:x + n]``) came out slower than unsigned offsets. Never apply it to
    the -1 of an absent operand, and keep every term of an index unsigned (numba types int64 + uint64 as
    float64: a typing error, not a wrong index).
    """
    return uint64(i)


@njit(inline="always", **KERNEL)
def operand_live(live, off, producer, lowest):
    """An operand at ``off`` (made by row ``producer``) received a cotangent: mark it live; returns the sweep's
    new ``lowest`` (the producer's row, if it is the lowest live one so far)."""
    if live[off] == 0:
        live[off] = 1
        if producer < lowest:
            return producer
    return lowest


@njit(inline="always", **KERNEL)
def strided_offset(i, aux, a, ndim):
    """Offset ``base + sum_k i_k * stride_k`` of flat C-order index ``i`` over ``aux[a + 2: a + 2 + ndim]``."""
    shape0 = a + 2
    stride0 = a + 2 + ndim
    off = aux[a + 1]
    rem = i
    for k in range(ndim - 1, -1, -1):
        extent = aux[shape0 + k]
        off += (rem % extent) * aux[stride0 + k]
        rem //= extent
    return off


@njit(**KERNEL)
def zero_byte_ranges(raw, ranges):
    """``raw[lo:hi] = 0`` for each row ``(lo, hi)`` of ``ranges``: the regions of a recycled sweep buffer to clear
    (engine._TapeSweep.allocate), in one call instead of one numpy call per range."""
    for k in range(ranges.shape[0]):
        raw[ranges[k, 0] : ranges[k, 1]] = 0


@njit(**KERNEL)
def reverse_sweep(
    rows, attrs, aux, vals, cot, live, visited, freed, modified, saves, start, stop, lowest, status, big_off, big_n
):
    r = start
    while r >= stop and r >= lowest:
        o = rows[r, 1]
        if live[o] == 0:
            r -= 1
            continue
        op = rows[r, 0]
        code = op & K.CODE_MASK
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
        if big_off.shape[0] != 0:  # big regions are not cleared in advance: clear one at its first write
            if xrg and live[x] == 0:
                _clear_if_big(cot, big_off, big_n, x)
            if yrg and live[y] == 0:
                _clear_if_big(cot, big_off, big_n, y)
        if K.is_unary(code):
            if xrg:
                uo, ux = unsigned(o), unsigned(x)
                for i in range(unsigned(n)):
                    cot[ux + i] += times(code, cot[uo + i], unary_partial(code, vals[ux + i], vals[uo + i], a0, a1))
        elif code >= K.BINARY_FIRST and code <= K.BINARY_LAST:
            uo, ux, uy = unsigned(o), unsigned(x), unsigned(y)
            if xrg:
                for i in range(unsigned(n)):
                    cot[ux + i] += times(
                        code, cot[uo + i], binary_partial_x(code, vals[ux + i], vals[uy + i], vals[uo + i])
                    )
            if yrg:
                for i in range(unsigned(n)):
                    cot[uy + i] += times(
                        code, cot[uo + i], binary_partial_y(code, vals[ux + i], vals[uy + i], vals[uo + i])
                    )
        elif is_linear_row(code):
            linear_row_adjoint(code, vals, cot, aux, a, o, x, y, n, a0, xrg, yrg)
        elif code == K.MATMUL:
            _matmul_backward(vals, cot, aux, a, o, x, y, xrg, yrg)
        elif code == K.LINEAR:
            _linear_backward(vals, cot, aux[a], aux[a + 1], aux[a + 2], o, x, y, xrg, yrg)
        elif code == K.LINEAR_BIAS:
            _linear_backward(vals, cot, aux[a], aux[a + 1], aux[a + 2], o, x, y, xrg, yrg)
            if aux[a + 5] != 0:  # the bias (a third operand: its offset and row live in aux)
                b = aux[a + 3]
                if live[b] == 0 and big_off.shape[0] != 0:
                    _clear_if_big(cot, big_off, big_n, b)
                _column_sum_into(cot, aux[a], aux[a + 2], o, b)
                lowest = operand_live(live, b, aux[a + 4], lowest)
        elif code == K.LOG_SOFTMAX:
            if xrg:
                log_softmax_backward(vals, cot, aux[a], aux[a + 1], aux[a + 2], o, o, x)
        elif code == K.CROSS_ENTROPY:
            if xrg:
                cross_entropy_backward(vals, cot, aux, a, o, x, x)
        elif code == K.PROD or code == K.AMAX or code == K.AMIN:
            group_backward(code, vals, cot, aux, a, o, x, o, x, n)
        if xrg:
            lowest = operand_live(live, x, rows[r, 6], lowest)
        if yrg:
            lowest = operand_live(live, y, rows[r, 7], lowest)
        r -= 1
    return lowest


@njit(inline="always", **KERNEL)
def is_linear_row(code):
    """Rows whose backward is a fixed linear map of the output's cotangent (``linear_row_adjoint``): their
    cotangent's tangent moves the same way (``second_order``)."""
    return (
        code == K.WHERE
        or code == K.GATHER_STRIDED
        or code == K.SCATTER_STRIDED
        or code == K.SUM_ALL
        or code == K.GATHER_MAP
        or code == K.SCATTER_MAP
    )


@njit(**KERNEL)
def linear_row_adjoint(code, vals, cot, aux, a, o, x, y, n, a0, xrg, yrg):
    """``cot[x]`` (and ``cot[y]``) += the adjoint map of a row of ``is_linear_row`` applied to ``cot[o]`` (``vals``:
    where's mask, at ``a``); ``second_order`` applies it to the cotangents' tangents too."""
    if code == K.WHERE:
        ua, uo = unsigned(a), unsigned(o)
        for i in range(unsigned(n)):
            m = vals[ua + i]
            if xrg and m != 0:
                cot[unsigned(x) + i] += cot[uo + i]
            if yrg and m == 0:
                cot[unsigned(y) + i] += cot[uo + i]
    elif code == K.GATHER_STRIDED:
        _strided_walk(cot, aux, a, o, x, 1.0, True)
    elif code == K.SCATTER_STRIDED:
        _strided_walk(cot, aux, a, o, x, a0, False)
    elif code == K.SUM_ALL:
        if xrg:
            gs = a0 * cot[o]
            ux = unsigned(x)
            for i in range(unsigned(a)):
                cot[ux + i] += gs
    elif code == K.GATHER_MAP:  # (an index made of signed terms: cast whole, its value is an offset, >= 0)
        for i in range(unsigned(n)):
            cot[unsigned(x + aux[unsigned(a + 1) + i])] += cot[unsigned(o) + i]
    elif code == K.SCATTER_MAP:
        for i in range(unsigned(aux[a])):
            cot[unsigned(x) + i] += cot[unsigned(o + aux[unsigned(a + 1) + i])]


@njit(**KERNEL)
def _clear_if_big(cot, big_off, big_n, off):
    """Zero the cotangent region at ``off`` if it is one of the big regions (sorted ``big_off``)."""
    k = np.searchsorted(big_off, off)
    if k < big_off.shape[0] and big_off[k] == off:
        cot[off : off + big_n[k]] = 0.0


@njit(**KERNEL)
def _strided_walk(cot, aux, a, o, x, scale, gather):
    """Adjoint of a strided view, walking its index space with an odometer (no division per element).

    The view (``aux[a:]`` = ndim, base, shape, strides) maps flat index ``i`` of its shape to offset
    ``base + sum_k i_k * stride_k``. gather: ``cot[x + offset(i)] += cot[o + i]`` (adjoint of a gather from x);
    scatter: ``cot[x + i] += scale * cot[o + offset(i)]`` (adjoint of a scatter into o).
    """
    ndim = aux[a]
    off = aux[a + 1]
    if ndim == 0:
        if gather:
            cot[x + off] += cot[o]
        else:
            cot[x] += scale * cot[o + off]
        return
    shape0 = a + 2
    stride0 = a + 2 + ndim
    total = 1
    for k in range(ndim):
        total *= aux[shape0 + k]
    if total == 0:
        return
    inner = aux[shape0 + ndim - 1]
    inner_stride = aux[stride0 + ndim - 1]
    counter = np.zeros(ndim, np.int64)
    i = 0
    while i < total:
        if gather:  # (strides may be negative: each index is cast whole, see ``unsigned``)
            for j in range(inner):
                cot[unsigned(x + off + j * inner_stride)] += cot[unsigned(o + i + j)]
        else:
            for j in range(inner):
                cot[unsigned(x + i + j)] += scale * cot[unsigned(o + off + j * inner_stride)]
        i += inner
        off = odometer_step(counter, off, aux, shape0, stride0, ndim)


@njit(inline="always", **KERNEL)
def odometer_step(counter, off, aux, shape0, stride0, ndim):
    """The next line of a strided walk (``_strided_walk``): advance the index ``counter`` over all dims but the
    innermost, carrying as an odometer; returns the offset of the line's first element."""
    k = ndim - 2
    while k >= 0:
        counter[k] += 1
        off += aux[stride0 + k]
        if counter[k] < aux[shape0 + k]:
            break
        off -= aux[shape0 + k] * aux[stride0 + k]
        counter[k] = 0
        k -= 1
    return off


@njit(**KERNEL)
def log_softmax_backward(vals, cot, outer, size, inner, o, co, cx):
    """gx = g - softmax * sum(g) along the middle axis of an (outer, size, inner) layout: the output's values at
    ``o``, its cotangents at ``co``, x's at ``cx`` (one offset in the one-VJP arena; ``batched`` compacts the
    cotangents, one column at a time)."""
    for i in range(outer):
        for k in range(inner):
            log_softmax_line_backward(vals, cot, i * size * inner + k, size, inner, o, co, cx)


@register_jitable
def log_softmax_line_backward(vals, cot, base, size, inner, o, co, cx):
    """One line of ``log_softmax_backward`` (elements ``base + j * inner``); the CUDA sweep runs one per thread."""
    total = 0.0
    for j in range(size):
        total += cot[co + base + j * inner]
    for j in range(size):
        e = base + j * inner
        cot[cx + e] += cot[co + e] - math.exp(vals[o + e]) * total


@register_jitable
def matmul_layout(aux, a):
    """A ``MATMUL`` row's ``aux[a:a + 6]``: ``(B, M, K, N, x batch stride, y batch stride)``, out (B, M, N) =
    x (B, M, K) @ y (B, K, N); a batch stride of 0 broadcasts that operand."""
    return aux[a], aux[a + 1], aux[a + 2], aux[a + 3], aux[a + 4], aux[a + 5]


@njit(**KERNEL)
def _matmul_backward(vals, cot, aux, a, o, x, y, xrg, yrg):
    """aux[a:a+6] = (B, M, K, N, x batch stride, y batch stride); a stride of 0 broadcasts that operand."""
    B, M, K_, N, xbs, ybs = matmul_layout(aux, a)
    for b in range(B):
        g = cot[o + b * M * N : o + (b + 1) * M * N].reshape((M, N))
        xb0 = x + b * xbs
        yb0 = y + b * ybs
        if xrg:
            yb = vals[yb0 : yb0 + K_ * N].reshape((K_, N))
            gx = cot[xb0 : xb0 + M * K_].reshape((M, K_))
            gx += np.dot(g, yb.T)
        if yrg:
            xb = vals[xb0 : xb0 + M * K_].reshape((M, K_))
            gy = cot[yb0 : yb0 + K_ * N].reshape((K_, N))
            gy += np.dot(xb.T, g)


@njit(**KERNEL)
def _linear_backward(vals, cot, M, K_, N, o, x, y, xrg, yrg):
    """out (M, N) = x (M, K) @ y.T with y (N, K): gx += g @ y, gy += g.T @ x."""
    g = cot[o : o + M * N].reshape((M, N))
    if xrg:
        gx = cot[x : x + M * K_].reshape((M, K_))
        gx += np.dot(g, vals[y : y + N * K_].reshape((N, K_)))
    if yrg:
        gy = cot[y : y + N * K_].reshape((N, K_))
        gy += np.dot(g.T, vals[x : x + M * K_].reshape((M, K_)))


@njit(**KERNEL)
def class_targets_ok(target, C, ignore_index):
    """Whether every class index of ``target`` is in ``[0, C)`` and none equals ``ignore_index``."""
    for i in range(target.shape[0]):
        t = target[i]
        if t < 0 or t >= C or t == ignore_index:
            return False
    return True


@njit(**KERNEL)
def cross_entropy_forward(x, target):
    """``mean_i(logsumexp(x[i]) - x[i, t_i])`` for logits ``x`` (M, C), M > 0, and class indices ``target``
    in ``[0, C)``: one call instead of a dozen small numpy ones."""
    M, C = x.shape
    total = 0.0
    for i in range(M):
        m = x[i, 0]
        for j in range(1, C):
            if x[i, j] > m:
                m = x[i, j]
        if not math.isfinite(m):
            m = 0.0  # a row of infinities: log_softmax's convention (ad/ops.py, log_softmax_dim)
        s = 0.0
        for j in range(C):
            s += math.exp(x[i, j] - m)
        total += math.log(s) - (x[i, target[i]] - m)
    return total / M


@njit(**KERNEL)
def cross_entropy_backward(vals, cot, aux, a, co, x, cx):
    """gx[i] = g / M * (softmax(x[i]) - onehot(t_i)), the softmax recomputed stably from the saved logits (values
    at ``x``, cotangents at ``co`` and ``cx``: see ``log_softmax_backward``)."""
    M = aux[a]
    C = aux[a + 1]
    scale = cot[co] / M
    for i in range(M):
        cross_entropy_sample_backward(vals, cot, x + i * C, cx + i * C, C, aux[a + 2 + i], scale)


@register_jitable
def cross_entropy_sample_backward(vals, cot, row, crow, C, target, scale):
    """One sample of ``cross_entropy_backward``: logits at ``vals[row:row + C]``, their cotangents at ``crow``,
    class ``target``; the CUDA sweep runs one per thread."""
    m = vals[row]
    for j in range(1, C):
        if vals[row + j] > m:
            m = vals[row + j]
    if not math.isfinite(m):
        m = 0.0
    total = 0.0
    for j in range(C):
        total += math.exp(vals[row + j] - m)
    for j in range(C):
        cot[crow + j] += scale * (math.exp(vals[row + j] - m) / total)
    cot[crow + target] -= scale


@njit(**KERNEL)
def _column_sum_into(cot, M, N, o, b):
    """cot[b: b + N] += column sums of the (M, N) block at ``o`` (the bias of a linear layer)."""
    ub = unsigned(b)
    for i in range(M):
        row = unsigned(o + i * N)
        for j in range(unsigned(N)):
            cot[ub + j] += cot[row + j]


@njit(**KERNEL)
def group_backward(code, vals, cot, aux, a, o, x, co, cx, nout):
    """prod / amax / amin over groups; the group of x element i is ``o + strided_offset(i)`` (values at ``o`` and
    ``x``, cotangents at ``co`` and ``cx``: see ``log_softmax_backward``). amax / amin rows end their aux with the
    ``evenly`` flag of torch's max() / min() over all elements (``pointwise.extreme_share``)."""
    ndim = aux[a]
    nx = 1
    for k in range(ndim):
        nx *= aux[a + 2 + k]
    count = np.zeros(nout, np.int64)
    if code == K.PROD:
        # prod of the non-zero members and the number of zeros: exact gradients with zeros present
        nonzero_prod = np.ones(nout, np.float64)
        for i in range(nx):
            j = strided_offset(i, aux, a, ndim)
            v = vals[x + i]
            if v == 0.0:
                count[j] += 1
            else:
                nonzero_prod[j] *= v
        for i in range(nx):
            j = strided_offset(i, aux, a, ndim)
            v = vals[x + i]
            if count[j] == 0:
                cot[cx + i] += cot[co + j] * (nonzero_prod[j] / v)
            elif count[j] == 1 and v == 0.0:
                cot[cx + i] += cot[co + j] * nonzero_prod[j]
    else:
        evenly = aux[a + 2 + 2 * ndim] != 0  # (the row's sharing rule: pointwise.extreme_share)
        for i in range(nx):
            j = strided_offset(i, aux, a, ndim)
            if pointwise.counts_as_extreme(vals[x + i], vals[o + j], evenly):
                count[j] += 1
        for i in range(nx):
            j = strided_offset(i, aux, a, ndim)
            v = vals[x + i]
            e = vals[o + j]
            if not evenly or pointwise.selects(v, e):
                cot[cx + i] += pointwise.extreme_share(cot[co + j], count[j], v, e, evenly)


# --- forward mode: tangents of elementwise ops from the same partials (one active dual level) -------------


@njit(**KERNEL)
def jvp_unary(code, x, out, t, res, a0, a1):
    """Tangent of an elementwise unary op: ``res = t * d(x, out)`` (flat arrays; the caller allocates ``res``,
    which is cheaper than returning a new array from a kernel)."""
    if code == K.SIN or code == K.COS:
        _trig_partial_times(code, x, t, res, False)
        return
    for i in range(out.shape[0]):
        res[i] = times(code, t[i], unary_partial(code, x[i], out[i], a0, a1))


@njit(**KERNEL)
def jvp_binary(code, x, y, out, tx, ty, res, has_tx, has_ty):
    """Tangent of a same-shape elementwise binary op: ``res = tx * dx + ty * dy`` (flat arrays; maximum and
    minimum: ``pointwise.extreme_tangent``, torch's forward rule)."""
    if code == K.MAXIMUM or code == K.MINIMUM:
        for i in range(out.shape[0]):
            res[i] = extreme_tangent(code, tx[i] if has_tx else 0.0, ty[i] if has_ty else 0.0, x[i], y[i])
        return
    for i in range(out.shape[0]):
        acc = 0.0
        if has_tx:
            acc += tx[i] * binary_partial_x(code, x[i], y[i], out[i])
        if has_ty:
            acc += ty[i] * binary_partial_y(code, x[i], y[i], out[i])
        res[i] = acc


# --- gelu's partial over a big row (ad/ops/activation_ops.py) -----------------------------------------------


@njit(**KERNEL)
def gelu_partial_from_output(x, out, d):
    """``d = Phi(x) + x phi(x)``, gelu's partial (``pointwise.d_gelu``, approximate='none'), with ``Phi(x)`` read
    from the intact output as ``out / x`` (0.5 where ``|x| < 1e-290``) and ``phi`` by vmath's exp: erf per element
    is a libm call that does not vectorize, and numpy's passes over the row cost 3x this one loop."""
    for i in range(x.shape[0]):
        v = x[i]
        cdf = 0.5 if abs(v) < 1e-290 else out[i] / v
        d[i] = cdf + v * pointwise.INV_SQRT_2PI * vexp(-0.5 * (v * v))


# --- sin and cos in loops that vectorize (kernels/vmath.py) ------------------------------------------------
# Each loop runs the polynomial path on every element and counts those outside its range (big, inf, NaN);
# only when there are some does a second, scalar pass give them libm's value.


@njit(**KERNEL)
def trig_forward(code, x, out):
    """``out = sin(x)`` (code SIN) or ``cos(x)`` (COS), flat arrays; ``out`` may be ``x``."""
    n_out_of_range = 0
    for i in range(x.shape[0]):
        v = x[i]
        s, c = sin_cos(v)
        ok = in_trig_range(v)
        # out of range: leave the input there (results in range are within [-1, 1], so never mistaken for it)
        out[i] = (s if code == K.SIN else c) if ok else v
        n_out_of_range += 0 if ok else 1
    if n_out_of_range:
        for i in range(x.shape[0]):
            v = out[i]
            if not in_trig_range(v):
                out[i] = math.sin(v) if code == K.SIN else math.cos(v)


@njit(**KERNEL)
def _trig_partial_times(code, x, g, res, accumulate):
    """``res (+)= g * d/dx sin(x)`` or ``cos(x)``: the JVP and the big-row VJP of sin and cos."""
    n_out_of_range = 0
    for i in range(x.shape[0]):
        v = x[i]
        s, c = sin_cos(v)
        ok = in_trig_range(v)
        d = g[i] * (c if code == K.SIN else -s) if ok else 0.0
        if accumulate:
            res[i] += d
        else:
            res[i] = d
        n_out_of_range += 0 if ok else 1
    if n_out_of_range:
        for i in range(x.shape[0]):
            if not in_trig_range(x[i]):
                res[i] += g[i] * unary_partial(code, x[i], x[i], 0.0, 0.0)


# --- big elementwise rows: fused, one pass, called per chunk from several threads (nogil) ----------------

# Partials that need no libm call (sin and cos use the vectorized loops above): for these the fused loop
# beats numpy's several passes. (erf and powers call libm per element, where numpy's ufuncs are faster.)
_CHEAP = np.zeros(256, np.uint8)
for _code in (
    K.SIN,
    K.COS,
    K.COPY,
    K.NEG,
    K.ABS,
    K.EXP,
    K.LOG,
    K.LOG1P,
    K.EXPM1,
    K.SQRT,
    K.RSQRT,
    K.TAN,
    K.TANH,
    K.SIGMOID,
    K.RELU,
    K.CLAMP,
    K.AFFINE,
    K.RDIV_SCALAR,
    K.SQUARE,
    K.ADD,
    K.SUB,
    K.MUL,
    K.DIV,
    K.MAXIMUM,
    K.MINIMUM,
    K.TANH_BACKWARD,
):
    _CHEAP[_code] = 1
CHEAP_PARTIAL = _CHEAP


def read_only(a):
    """A read-only view of ``a``: the chunk kernels take their operands (x, y, out) so, whatever the caller's
    arrays, because numba types read-only and writable arrays apart and compiles each mix anew (~5 s each)."""
    if not a.flags.writeable:
        return a
    v = a.view()
    v.flags.writeable = False
    return v


@njit(**KERNEL)
def unary_backward_chunk(code, x, out, g, gx, a0, a1, accumulate):
    """``gx += g * d(x, out)`` (or ``=``, without ``accumulate``) over one chunk of a big elementwise row."""
    if code == K.SIN or code == K.COS:
        _trig_partial_times(code, x, g, gx, accumulate)
    # tanh, sigmoid, exp: the op passed as a constant, so that the inlined partial folds to its one formula and
    # the loop vectorizes (tanh on 32k elements: ~27 us with the op chosen per element, ~8 us so)
    elif code == K.TANH:
        _partial_times(K.TANH, x, out, g, gx, 0.0, 0.0, accumulate)
    elif code == K.SIGMOID:
        _partial_times(K.SIGMOID, x, out, g, gx, 0.0, 0.0, accumulate)
    elif code == K.EXP:
        _partial_times(K.EXP, x, out, g, gx, 0.0, 0.0, accumulate)
    elif code == K.AFFINE:  # the scalar forms of + - * / (a multiply by a0: 2x faster than the generic loop)
        _partial_times(K.AFFINE, x, out, g, gx, a0, a1, accumulate)
    elif code == K.RELU:  # (the selecting ops' ``times`` folds to one select: 4x faster than the generic loop)
        _partial_times(K.RELU, x, out, g, gx, 0.0, 0.0, accumulate)
    elif code == K.CLAMP:
        _partial_times(K.CLAMP, x, out, g, gx, a0, a1, accumulate)
    else:
        _any_partial_times(code, x, out, g, gx, a0, a1, accumulate)


@njit(inline="always", **KERNEL)
def _partial_times(code, x, out, g, gx, a0, a1, accumulate):
    """``gx (+)= g * d(x, out)``, the partial from ``pointwise.unary_partial`` (its one definition)."""
    if accumulate:
        for i in range(g.shape[0]):
            gx[i] += times(code, g[i], unary_partial_call(code, x[i], out[i], a0, a1))
    else:
        for i in range(g.shape[0]):
            gx[i] = times(code, g[i], unary_partial_call(code, x[i], out[i], a0, a1))


@njit(**KERNEL)
def _any_partial_times(code, x, out, g, gx, a0, a1, accumulate):
    """``_partial_times`` for an opcode known only at run time (the opcode switch inlined once per loop)."""
    if accumulate:
        for i in range(g.shape[0]):
            gx[i] += times(code, g[i], unary_partial(code, x[i], out[i], a0, a1))
    else:
        for i in range(g.shape[0]):
            gx[i] = times(code, g[i], unary_partial(code, x[i], out[i], a0, a1))


@njit(**KERNEL)
def binary_backward_chunk(code, x, y, out, g, gx, gy, has_x, has_y, acc_x, acc_y):
    """``gx += g * dx``, ``gy += g * dy`` (``=`` where not ``acc_*``) over one chunk of a big same-shape
    binary row."""
    # the common ops passed as constants, as in unary_backward_chunk: the partial folds and the loop vectorizes
    # (a product with a constant operand, x * c on 4M elements: ~8 ms so, ~15 ms with the op chosen per element)
    if code == K.MUL:
        _binary_times(K.MUL, x, y, out, g, gx, gy, has_x, has_y, acc_x, acc_y)
    elif code == K.ADD:
        _binary_times(K.ADD, x, y, out, g, gx, gy, has_x, has_y, acc_x, acc_y)
    elif code == K.SUB:
        _binary_times(K.SUB, x, y, out, g, gx, gy, has_x, has_y, acc_x, acc_y)
    elif code == K.DIV:
        _binary_times(K.DIV, x, y, out, g, gx, gy, has_x, has_y, acc_x, acc_y)
    elif code == K.MAXIMUM:  # (the selecting ops' ``times`` folds to one select: 3x faster than the generic loop)
        _binary_times(K.MAXIMUM, x, y, out, g, gx, gy, has_x, has_y, acc_x, acc_y)
    elif code == K.MINIMUM:
        _binary_times(K.MINIMUM, x, y, out, g, gx, gy, has_x, has_y, acc_x, acc_y)
    else:
        _any_binary_times(code, x, y, out, g, gx, gy, has_x, has_y, acc_x, acc_y)


@njit(inline="always", **KERNEL)
def _binary_times(code, x, y, out, g, gx, gy, has_x, has_y, acc_x, acc_y):
    """``binary_backward_chunk``'s loops: one pass for both operands, or a branch-free loop for one."""
    if has_x and has_y:
        for i in range(g.shape[0]):
            dx = times(code, g[i], binary_partial_x_call(code, x[i], y[i], out[i]))
            if acc_x:
                gx[i] += dx
            else:
                gx[i] = dx
            dy = times(code, g[i], binary_partial_y_call(code, x[i], y[i], out[i]))
            if acc_y:
                gy[i] += dy
            else:
                gy[i] = dy
    elif has_x:
        if acc_x:
            for i in range(g.shape[0]):
                gx[i] += times(code, g[i], binary_partial_x_call(code, x[i], y[i], out[i]))
        else:
            for i in range(g.shape[0]):
                gx[i] = times(code, g[i], binary_partial_x_call(code, x[i], y[i], out[i]))
    elif has_y:
        if acc_y:
            for i in range(g.shape[0]):
                gy[i] += times(code, g[i], binary_partial_y_call(code, x[i], y[i], out[i]))
        else:
            for i in range(g.shape[0]):
                gy[i] = times(code, g[i], binary_partial_y_call(code, x[i], y[i], out[i]))


@njit(**KERNEL)
def _any_binary_times(code, x, y, out, g, gx, gy, has_x, has_y, acc_x, acc_y):
    """``_binary_times`` for an opcode known only at run time: one loop, the opcode switch inlined once."""
    for i in range(g.shape[0]):
        if has_x:
            dx = times(code, g[i], binary_partial_x(code, x[i], y[i], out[i]))
            if acc_x:
                gx[i] += dx
            else:
                gx[i] = dx
        if has_y:
            dy = times(code, g[i], binary_partial_y(code, x[i], y[i], out[i]))
            if acc_y:
                gy[i] += dy
            else:
                gy[i] = dy
