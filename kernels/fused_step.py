"""A replayed training step in one compiled call: a small-row tape's forward rows, then its reverse sweep from a
scalar loss (``ad/compile_fused.py`` decides when, and hands the gradients to the next plain ``backward()``).

Inputs are those of ``replay.forward_sweep`` (``rows`` (R, 8), ``attrs`` (R, 2), ``aux``, the value arena
``vals``, the per-row replay ``flags``) and of ``cpu.reverse_sweep`` (the cotangent arena ``cot`` and the
``live`` flags, both of at least ``used + 1`` elements, ``visited`` (R + 1), ``freed`` and ``modified``:
all zero, ``saves``, ``status``), plus:

- ``part``: the saved partials. The forward loop of an elementwise unary row whose operand requires grad
  also writes ``d out / d x`` of each element to ``part[part_off[r]:][:n]`` (``part_off[r]``: -1 for other
  rows), so the reverse loop of that row is one multiply-add per element: sin's cosine comes from the same
  ``sin_cos`` evaluation as its value, tanh's and exp's from their outputs, while the values are in registers.
- ``root``: the arena offset of the scalar loss (its cotangent is seeded with 1).

The kernel clears ``cot``, ``live`` and ``visited`` itself (no separate pass from Python). Elementwise rows,
``SUM_ALL`` and ``SCATTER_STRIDED`` rows (linear, reading no saved value) are swept here; every other row
(gathers, other reductions, matmul, cross-entropy, saved-value guards) by ``reverse_sweep`` over that one row
(a general call per row: on W6's 2,000 sums and stack slots, sweeping those here halved the kernel), so the
gradients equal the generic sweep's up to the rounding of the partials (sin's cosine within 1 ulp of libm's,
``vmath``). Returns 0, or -1 where ``reverse_sweep`` did (``status`` says why: cannot happen on a fresh replay,
whose values nothing has freed or modified).
"""

import math

from numba import njit

from . import opcodes as K
from .cpu import (
    KERNEL,
    binary_partial_x,
    binary_partial_y,
    linear_row_adjoint,
    reverse_sweep,
    times,
    unary_partial,
    unsigned,
)
from .forward_rows import linear_row
from .replay import FLAG_SKIP, _is_unary, _row_block_arena, _structural_row
from .vmath import in_trig_range, sin_cos


@njit(**KERNEL)
def forward_backward(
    rows, attrs, aux, vals, flags, part, part_off, root, cot, live, visited, freed, modified, saves, status, used
):
    nrows = rows.shape[0]
    none = vals[:0]
    for r in range(nrows):
        f = flags[r]
        if f & FLAG_SKIP:
            continue
        code = rows[r, 0] & K.CODE_MASK
        n = rows[r, 4]
        if _is_unary(code):
            _unary_saving(rows, attrs, vals, part, part_off[r], r, code, n)
        elif code >= K.BINARY_FIRST and code <= K.BINARY_LAST:
            _row_block_arena(rows, attrs, vals, r, 0, n)
        elif code == K.SUM_ALL:  # (what _structural_row does for it, without its general call: W6's 2,000 sums)
            linear_row(code, aux, rows[r, 5], n, attrs[r, 0], vals, rows[r, 2], vals, rows[r, 1])
        else:
            _structural_row(rows, attrs, aux, vals, r, code, n, f, none, -1, none, -1)
    for i in range(used + 1):
        cot[i] = 0.0
        live[i] = 0
    for r in range(nrows + 1):
        visited[r] = 0
    cot[root] = 1.0
    live[root] = 1
    no_regions = part_off[:0]
    for r in range(nrows - 1, -1, -1):
        o = rows[r, 1]
        if live[o] == 0:
            continue
        op = rows[r, 0]
        code = op & K.CODE_MASK
        if _is_unary(code):
            visited[r] = 1
            if op & K.XRG:
                x = rows[r, 2]
                uo, ux, up = unsigned(o), unsigned(x), unsigned(part_off[r])
                for i in range(unsigned(rows[r, 4])):
                    cot[ux + i] += times(code, cot[uo + i], part[up + i])
                live[x] = 1
        elif code >= K.BINARY_FIRST and code <= K.BINARY_LAST:
            visited[r] = 1
            _binary_reverse(rows, vals, cot, r, op, code, o)
            if op & K.XRG:
                live[rows[r, 2]] = 1
            if op & K.YRG:
                live[rows[r, 3]] = 1
        elif code == K.SUM_ALL or code == K.SCATTER_STRIDED:
            # linear rows that read no saved value (SAVES: 0, so reverse_sweep's check has nothing to find): their
            # adjoint directly, without reverse_sweep's general call per row (W6: a sum and a stack slot per leaf)
            visited[r] = 1
            if op & K.XRG:
                x = rows[r, 2]
                linear_row_adjoint(code, vals, cot, aux, rows[r, 5], o, x, -1, rows[r, 4], attrs[r, 0], True, False)
                live[x] = 1
        elif (
            reverse_sweep(
                rows,
                attrs,
                aux,
                vals,
                cot,
                live,
                visited,
                freed,
                modified,
                saves,
                r,
                r,
                0,
                status,
                no_regions,
                no_regions,
            )
            < 0
        ):
            return -1
    return 0


@njit(**KERNEL)
def _unary_saving(rows, attrs, vals, part, p, r, code, n):
    """Row ``r``'s values and, when ``p >= 0``, its partials into ``part[p:p + n]`` (the formulas of
    ``pointwise.unary_partial``; sin and cos from one ``sin_cos`` call, libm beyond its range)."""
    if p < 0:
        _row_block_arena(rows, attrs, vals, r, 0, n)
        return
    o = rows[r, 1]
    x = rows[r, 2]
    uo, ux, up = unsigned(o), unsigned(x), unsigned(p)
    a0 = attrs[r, 0]
    a1 = attrs[r, 1]
    if code == K.SIN or code == K.COS:
        if _trig_saving(code, vals[x : x + n], vals[o : o + n], part[p : p + n]):
            for i in range(unsigned(n)):  # (beyond the polynomials' range: libm's values, as cpu.trig_forward)
                v = vals[ux + i]
                if not in_trig_range(v):
                    vals[uo + i] = math.sin(v) if code == K.SIN else math.cos(v)
                    part[up + i] = unary_partial(code, v, vals[uo + i], a0, a1)
        return
    _row_block_arena(rows, attrs, vals, r, 0, n)
    if code == K.TANH:
        for i in range(unsigned(n)):
            part[up + i] = 1.0 - vals[uo + i] * vals[uo + i]
    elif code == K.EXP:
        for i in range(unsigned(n)):
            part[up + i] = vals[uo + i]
    elif code == K.AFFINE:
        for i in range(unsigned(n)):
            part[up + i] = a0
    else:
        for i in range(unsigned(n)):
            part[up + i] = unary_partial(code, vals[ux + i], vals[uo + i], a0, a1)


@njit(**KERNEL)
def _binary_reverse(rows, vals, cot, r, op, code, o):
    """Row ``r``'s cotangents into its operands that require grad (``reverse_sweep``'s rule, the common opcodes'
    partials written out so that their loops vectorize)."""
    x = rows[r, 2]
    y = rows[r, 3]
    n = rows[r, 4]
    uo, ux, uy = unsigned(o), unsigned(x), unsigned(y)
    if op & K.XRG:
        if code == K.ADD or code == K.SUB:
            for i in range(unsigned(n)):
                cot[ux + i] += cot[uo + i]
        elif code == K.MUL:
            for i in range(unsigned(n)):
                cot[ux + i] += cot[uo + i] * vals[uy + i]
        else:
            for i in range(unsigned(n)):
                cot[ux + i] += times(
                    code, cot[uo + i], binary_partial_x(code, vals[ux + i], vals[uy + i], vals[uo + i])
                )
    if op & K.YRG:
        if code == K.ADD:
            for i in range(unsigned(n)):
                cot[uy + i] += cot[uo + i]
        elif code == K.SUB:
            for i in range(unsigned(n)):
                cot[uy + i] -= cot[uo + i]
        elif code == K.MUL:
            for i in range(unsigned(n)):
                cot[uy + i] += cot[uo + i] * vals[ux + i]
        else:
            for i in range(unsigned(n)):
                cot[uy + i] += times(
                    code, cot[uo + i], binary_partial_y(code, vals[ux + i], vals[uy + i], vals[uo + i])
                )


@njit(**KERNEL)
def _trig_saving(code, x, out, d):
    """``out = sin(x)`` (code SIN) or ``cos(x)`` and ``d`` its derivative, from one ``sin_cos`` per element (a
    call of its own, on separate arrays, so that the loop vectorizes as ``cpu.trig_forward``'s); returns how
    many elements lie beyond the polynomials' range (their values are left for the caller to fix)."""
    out_of_range = 0
    for i in range(x.shape[0]):
        v = x[i]
        s, c = sin_cos(v)
        ok = in_trig_range(v)
        out[i] = (s if code == K.SIN else c) if ok else v
        d[i] = c if code == K.SIN else -s
        out_of_range += 0 if ok else 1
    return out_of_range
