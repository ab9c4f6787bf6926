"""The forward sweep of ``ad.compile``: one ``@njit`` call recomputes a recorded tape's rows in order.

A tape (``ad/tape.py``) records, per op, an opcode and arena offsets; ``reverse_sweep`` (``cpu.py``) walks
the rows backwards. Replaying a recorded step walks them forwards instead: each row's output region of the
value arena is recomputed from its operands' regions (which earlier rows, or the caller's copies of the
inputs and leaves, have filled), so a whole step's forward pass is one kernel call with no Python per op.

Inputs are the tape's own arrays (``rows`` (R, 8), ``attrs`` (R, 2), ``aux``), the value arena ``vals`` and
``flags`` (uint8 per row, ``FLAG_*``) that ``ad/compile.py`` computes once per template:

- ``FLAG_ZERO``: the row is the first of a scatter node (``sum`` over dims, ``cat``, ``stack``): its output
  region is cleared before the row adds into it (a node of several rows shares one output region).
- ``FLAG_SKIP``: the row computes nothing forwards (saved-tensor guard rows, ``ad/saved.py``).
- ``FLAG_FUSED``: the row is elementwise and continues a run of elementwise rows of the same size: the run
  (from its first row, which is not flagged) is computed block by block through all its rows, each block
  staying in L1 from one row to the next (each row's output is still written: the backward sweep reads
  them).

Runs of fused rows over big arrays are split into chunks across threads by ``forward_chunk`` (the caller
passes a row range and an element range; the kernel releases the GIL).

Extern slots: a big input or parameter (``tape.BIG_ROW`` elements or more) is not copied into ``vals`` (its
region there stays unwritten, as in an eager tape, whose backward never reads it: big rows are swept from
Python on the tensors' own arrays). Instead a kernel call takes up to two such arrays, ``ext0`` and
``ext1``, with the arena offsets ``e0`` and ``e1`` of their regions (-1: the slot is unused); a read of an
operand inside such a region reads the extern array (``_operand``).

Values follow the CPU forward of the eager ops within rounding (``pointwise_values.unary_value`` /
``binary_value`` are the per-element formulas, except sin, cos, exp and tanh: ``vmath``'s loops, within 2 ulps
of numpy's; reductions sum in a different order than numpy's pairwise
sums, small matmuls call BLAS through ``np.dot``: scipy's OpenBLAS, not numpy's; the big matmul and linear rows
are replayed from Python through numpy's, as the eager ops compute them: ``ad/compile_template.py``'s "m"
segments).
"""

import math

import numpy as np
from numba import njit
from numba.extending import overload

from . import opcodes as K
from . import pointwise_values
from .cpu import KERNEL, cross_entropy_forward, strided_offset, trig_forward, unsigned
from .forward_rows import add_bias, linear_into, linear_row, matmul_into
from .pointwise_values import scale_only
from .vmath import exp as vexp
from .vmath import tanh as vtanh


# numba's CPU target has no ``math.fmod`` (its CUDA target has): give it numpy's, for ``pointwise_values.fmod_value``
@overload(math.fmod)
def _fmod(x, y):
    return lambda x, y: np.fmod(x, y)


unary_value = njit(inline="always", **KERNEL)(pointwise_values.unary_value)
binary_value = njit(inline="always", **KERNEL)(pointwise_values.binary_value)

FLAG_ZERO = 1
# Elementwise rows are fused into runs from this size: below, every operand is in L1 anyway and a plain loop
# per row (the opcode test hoisted out of it) is faster than switching opcodes per element
FUSE_MIN = 2048
BLOCK = 512  # elements per block of a fused run (each operand block stays in L1 between rows)
FLAG_SKIP = 2
FLAG_FUSED = 4

# What the forward kernel computes (``ad/compile.py`` replays a template only if every row's opcode is here)
_REPLAYABLE = np.zeros(256, np.uint8)
for _code in K.UNARY_CODES:
    _REPLAYABLE[_code] = 1
for _code in range(K.BINARY_FIRST, K.BINARY_LAST + 1):
    _REPLAYABLE[_code] = 1
for _code in (
    K.GATHER_STRIDED,
    K.GATHER_MAP,
    K.SCATTER_STRIDED,
    K.SUM_ALL,
    K.MATMUL,
    K.LINEAR,
    K.LINEAR_BIAS,
    K.LOG_SOFTMAX,
    K.CROSS_ENTROPY,
    K.PROD,
    K.AMAX,
    K.AMIN,
    K.SAVED_INPUT,
    K.SAVED_RESULT,
):
    _REPLAYABLE[_code] = 1
REPLAYABLE = _REPLAYABLE


def is_elementwise(code):
    return K.is_unary(code) or is_binary(code)


def is_binary(code):
    return K.BINARY_FIRST <= code <= K.BINARY_LAST


@njit(inline="always", **KERNEL)
def _is_unary(code):
    return K.is_unary(code)


@njit(inline="always", **KERNEL)
def _operand(vals, off, ext0, e0, ext1, e1):
    """``(array, offset)`` to read the operand at arena offset ``off`` from: an extern slot's array when ``off``
    falls in its region, else the arena."""
    if e0 >= 0 and off >= e0 and off < e0 + ext0.shape[0]:
        return ext0, off - e0
    if e1 >= 0 and off >= e1 and off < e1 + ext1.shape[0]:
        return ext1, off - e1
    return vals, off


@njit(**KERNEL)
def forward_sweep(rows, attrs, aux, vals, flags, start, stop, ext0, e0, ext1, e1):
    """Recompute rows ``start..stop-1`` of a tape into ``vals``, in recording order (big operands read from
    the extern slots: see the module docstring)."""
    r = start
    while r < stop:
        f = flags[r]
        if f & FLAG_SKIP:
            r += 1
            continue
        code = rows[r, 0] & K.CODE_MASK
        n = rows[r, 4]
        if _is_unary(code) or (code >= K.BINARY_FIRST and code <= K.BINARY_LAST):
            end = r + 1
            while end < stop and (flags[end] & FLAG_FUSED) != 0:
                end += 1
            _elementwise_run(rows, attrs, vals, r, end, 0, n, ext0, e0, ext1, e1)
            r = end
            continue
        _structural_row(rows, attrs, aux, vals, r, code, n, f, ext0, e0, ext1, e1)
        r += 1


@njit(**KERNEL)
def forward_chunk(rows, attrs, vals, first, end, ext0, e0, ext1, e1, lo, hi):
    """Elements ``lo:hi`` of the fused elementwise run of rows ``first..end-1`` (one thread's share)."""
    _elementwise_run(rows, attrs, vals, first, end, lo, hi, ext0, e0, ext1, e1)


@njit(inline="always", **KERNEL)
def _elementwise_run(rows, attrs, vals, first, end, lo, hi, ext0, e0, ext1, e1):
    """Rows ``first..end-1``, all elementwise over the same number of elements, in blocks of ``BLOCK``
    elements: every row of the run over one block before the next block, so that each operand a row reads
    from the previous one is still in L1 (memory is read and written once per run, as one fused loop would,
    while each row's loop stays a plain one that vectorizes)."""
    if end == first + 1:
        _row_block(rows, attrs, vals, first, lo, hi, ext0, e0, ext1, e1)
        return
    for blo in range(lo, hi, BLOCK):
        bhi = min(blo + BLOCK, hi)
        for r in range(first, end):
            _row_block(rows, attrs, vals, r, blo, bhi, ext0, e0, ext1, e1)


@njit(inline="always", **KERNEL)
def _row_block(rows, attrs, vals, r, lo, hi, ext0, e0, ext1, e1):
    """Elements ``lo:hi`` of elementwise row ``r``, its operands read from the arena, or from the extern slots
    where they lie there (a separate path: resolving arrays per row costs a small row twice its time)."""
    if e0 < 0 and e1 < 0:
        _row_block_arena(rows, attrs, vals, r, lo, hi)
        return
    xa, x = _operand(vals, rows[r, 2], ext0, e0, ext1, e1)
    ya, y = _operand(vals, rows[r, 3], ext0, e0, ext1, e1)
    _block(rows, attrs, vals, r, lo, hi, xa, x, ya, y)


@njit(inline="always", **KERNEL)
def _row_block_arena(rows, attrs, vals, r, lo, hi):
    """Elements ``lo:hi`` of elementwise row ``r`` whose operands are all in the arena (no extern slot: the
    path of small rows, kept apart from ``_block``, whose separate operand arrays cost LLVM its aliasing
    knowledge and a small row about 45% more); the common opcodes as loops of their own (they vectorize),
    the others through ``pointwise_values``'s per-element values."""
    code = rows[r, 0] & K.CODE_MASK
    o = rows[r, 1]
    x = rows[r, 2]
    uo, ux, ulo, uhi = unsigned(o), unsigned(x), unsigned(lo), unsigned(hi)
    if code >= K.BINARY_FIRST and code <= K.BINARY_LAST:
        uy = unsigned(rows[r, 3])
        if code == K.ADD:
            for i in range(ulo, uhi):
                vals[uo + i] = vals[ux + i] + vals[uy + i]
        elif code == K.SUB:
            for i in range(ulo, uhi):
                vals[uo + i] = vals[ux + i] - vals[uy + i]
        elif code == K.MUL:
            for i in range(ulo, uhi):
                vals[uo + i] = vals[ux + i] * vals[uy + i]
        elif code == K.DIV:
            for i in range(ulo, uhi):
                vals[uo + i] = vals[ux + i] / vals[uy + i]
        else:
            for i in range(ulo, uhi):
                vals[uo + i] = binary_value(code, vals[ux + i], vals[uy + i])
        return
    a0 = attrs[r, 0]
    a1 = attrs[r, 1]
    if code == K.SIN or code == K.COS:  # the vectorized polynomial loop, as the eager op on big arrays
        trig_forward(code, vals[x + lo : x + hi], vals[o + lo : o + hi])
    elif code == K.AFFINE and scale_only(a1):  # (pointwise_values.affine_value's cases, each a loop of its own)
        for i in range(ulo, uhi):
            vals[uo + i] = vals[ux + i] * a0
    elif code == K.AFFINE and a0 == 1.0:
        for i in range(ulo, uhi):
            vals[uo + i] = vals[ux + i] + a1
    elif code == K.COPY:
        for i in range(ulo, uhi):
            vals[uo + i] = vals[ux + i]
    elif code == K.TANH:  # (vmath's loops that vectorize: libm's math.tanh is 10x numpy's np.tanh)
        for i in range(ulo, uhi):
            vals[uo + i] = vtanh(vals[ux + i])
    elif code == K.EXP:
        for i in range(ulo, uhi):
            vals[uo + i] = vexp(vals[ux + i])
    else:
        for i in range(ulo, uhi):
            vals[uo + i] = unary_value(code, vals[ux + i], a0, a1)


@njit(**KERNEL)
def _block(rows, attrs, vals, r, lo, hi, xa, x, ya, y):
    """Elements ``lo:hi`` of elementwise row ``r`` (operands ``xa`` at ``x``, ``ya`` at ``y``), through the block
    loops below."""
    code = rows[r, 0] & K.CODE_MASK
    o = rows[r, 1]
    out = vals[o + lo : o + hi]
    if code >= K.BINARY_FIRST and code <= K.BINARY_LAST:
        binary_block(code, xa[x + lo : x + hi], ya[y + lo : y + hi], out)
    else:
        unary_block(code, xa[x + lo : x + hi], out, attrs[r, 0], attrs[r, 1])


@njit(**KERNEL)
def _structural_row(rows, attrs, aux, vals, r, code, n, f, ext0, e0, ext1, e1):
    o = rows[r, 1]
    xa, x = _operand(vals, rows[r, 2], ext0, e0, ext1, e1)
    ya, y = _operand(vals, rows[r, 3], ext0, e0, ext1, e1)
    a = rows[r, 5]
    a0 = attrs[r, 0]
    if code == K.GATHER_STRIDED or code == K.SUM_ALL or code == K.GATHER_MAP:
        linear_row(code, aux, a, n, a0, xa, x, vals, o)
    elif code == K.SCATTER_STRIDED:
        if f & FLAG_ZERO:
            vals[o : o + n] = 0.0
        ndim = aux[a]
        nx = 1
        for k in range(ndim):
            nx *= aux[a + 2 + k]
        for i in range(nx):  # (signed i: strided_offset's arithmetic; indices cast whole, see cpu.unsigned)
            vals[unsigned(o + strided_offset(i, aux, a, ndim))] += a0 * xa[unsigned(x + i)]
    elif code == K.MATMUL:
        matmul_into(aux, a, xa, x, ya, y, vals, o, False)
    elif code == K.LINEAR or code == K.LINEAR_BIAS:
        linear_into(aux[a], aux[a + 1], aux[a + 2], xa, x, ya, y, vals, o, False)
        if code == K.LINEAR_BIAS:
            ba, b = _operand(vals, aux[a + 3], ext0, e0, ext1, e1)
            add_bias(vals, o, aux[a], aux[a + 2], ba, b)
    elif code == K.LOG_SOFTMAX:
        _log_softmax(xa, vals, aux[a], aux[a + 1], aux[a + 2], o, x)
    elif code == K.CROSS_ENTROPY:
        M = aux[a]
        C = aux[a + 1]
        vals[o] = cross_entropy_forward(xa[x : x + M * C].reshape((M, C)), aux[a + 2 : a + 2 + M])
    elif code == K.PROD or code == K.AMAX or code == K.AMIN:
        _group(code, xa, vals, aux, a, o, x, n)


@njit(**KERNEL)
def _log_softmax(xa, vals, outer, size, inner, o, x):
    """``x - max - log(sum(exp(x - max)))`` along the middle axis of an (outer, size, inner) layout (a
    non-finite max shifts by 0, as the eager op)."""
    for i in range(outer):
        for k in range(inner):
            base = i * size * inner + k
            m = -math.inf
            for j in range(size):
                v = xa[x + base + j * inner]
                if v > m or v != v:
                    m = v
            if not math.isfinite(m):
                m = 0.0
            s = 0.0
            for j in range(size):
                s += math.exp(xa[x + base + j * inner] - m)
            ls = math.log(s)
            for j in range(size):
                e = base + j * inner
                vals[o + e] = (xa[x + e] - m) - ls


@njit(**KERNEL)
def _group(code, xa, vals, aux, a, o, x, nout):
    """prod / amax / amin over groups (the group of x element i: ``strided_offset(i)``); NaN propagates."""
    ndim = aux[a]
    nx = 1
    for k in range(ndim):
        nx *= aux[a + 2 + k]
    init = 1.0 if code == K.PROD else (-math.inf if code == K.AMAX else math.inf)
    for j in range(nout):
        vals[o + j] = init
    for i in range(nx):
        j = o + strided_offset(i, aux, a, ndim)
        v = xa[x + i]
        if code == K.PROD:
            vals[j] *= v
        elif code == K.AMAX:
            if v > vals[j] or v != v:
                vals[j] = v
        elif v < vals[j] or v != v:
            vals[j] = v


# --- blocks of one elementwise row: a big row's operands at extern slots (``_block``), the steps of a fused run
# of big rows (kernels/fused_run.py, and ad/chain_forward.py's blocks from Python) ----------------------------


@njit(**KERNEL)
def unary_block(code, x, out, a0, a1):
    """``out = f(x)`` for elementwise opcode ``code`` (attributes ``a0``, ``a1``), flat arrays of one size (``out``
    may be ``x``): the common opcodes as loops of their own (they vectorize), the others through ``pointwise_values``'s
    per-element values; the values of ``_row_block_arena``'s loops."""
    if code == K.SIN or code == K.COS:  # the vectorized polynomial loop, as the eager op on big arrays
        trig_forward(code, x, out)
    elif code == K.TANH:
        for i in range(x.shape[0]):
            out[i] = vtanh(x[i])
    elif code == K.EXP:
        for i in range(x.shape[0]):
            out[i] = vexp(x[i])
    elif code == K.AFFINE and scale_only(a1):  # (pointwise_values.affine_value's cases, each a loop of its own)
        for i in range(x.shape[0]):
            out[i] = x[i] * a0
    elif code == K.AFFINE and a0 == 1.0:
        for i in range(x.shape[0]):
            out[i] = x[i] + a1
    elif code == K.COPY:
        for i in range(x.shape[0]):
            out[i] = x[i]
    else:
        for i in range(x.shape[0]):
            out[i] = unary_value(code, x[i], a0, a1)


@njit(**KERNEL)
def binary_block(code, x, y, out):
    """``out = f(x, y)`` for binary opcode ``code``, flat arrays of one size (as ``unary_block``)."""
    if code == K.ADD:
        for i in range(x.shape[0]):
            out[i] = x[i] + y[i]
    elif code == K.SUB:
        for i in range(x.shape[0]):
            out[i] = x[i] - y[i]
    elif code == K.MUL:
        for i in range(x.shape[0]):
            out[i] = x[i] * y[i]
    elif code == K.DIV:
        for i in range(x.shape[0]):
            out[i] = x[i] / y[i]
    else:
        for i in range(x.shape[0]):
            out[i] = binary_value(code, x[i], y[i])
