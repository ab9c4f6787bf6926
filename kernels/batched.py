"""The batched reverse sweep on the CPU: B vector-Jacobian products in one pass over a tape's rows.

Same inputs as ``kernels/cpu.py``'s ``reverse_sweep`` (read its header first), except the cotangent arena:

- ``cot``  2-D, ``(C, B)`` C-contiguous: the cotangents of slot ``off`` sit in row ``cmap[off]``, B of them
  side by side. So an elementwise row computes its local partial once per element and applies it to B
  contiguous values (the inner loop vectorizes), and the slots of a tensor of n elements form an ``(n, B)``
  block: a matrix operand's block reshapes to ``(rows, cols * B)``, so a matmul row's cotangent of ``y`` is
  one GEMM with B times the columns.
- ``cmap`` int64 per value-arena offset: the row of ``cot`` where the region starting there begins. Regions
  that can never hold a cotangent (big constants, such as a weight matrix that does not require grad) have
  no rows, so the arena is B times the differentiable part of the tape, not of all of it. Values are read at
  their own offsets (``vals[x + i]``), cotangents at the mapped ones (``cot[cmap[x] + i]``).

The arena is zero-filled by the caller (no "store at first write" regions, unlike the one-VJP sweep), so a
row always adds. The sweep is ``kernels.cpu.walk`` (rows skipped, ``live``, ``visited``, ``freed``,
``modified`` and the returned ``lowest`` as there) over a ``BatchedArena``; this module holds that layout's
rules: a slot moves B values, ops whose backward walks groups or rows (log_softmax, cross_entropy, prod, amax,
amin) run once per column ``cot[:, b]``.
"""

from collections import namedtuple

import numpy as np
from numba import njit
from numba.core import types

from .cpu import (
    KERNEL,
    binary_adjoint,
    binary_partial_x,
    binary_partial_y,
    clear_region,
    column,
    columns,
    cot_slot,
    layout_rule,
    linear_adjoint,
    matmul_adjoint,
    move,
    supports,
    unary_adjoint,
    unary_partial,
    walk,
)

BatchedArena = namedtuple("BatchedArena", ["cot", "cmap"])


@njit(**KERNEL)
def reverse_sweep_batched(
    rows, attrs, aux, vals, cot, cmap, live, visited, freed, modified, saves, start, stop, lowest, status
):
    no_big = np.empty(0, np.int64)  # the caller zero-fills the whole arena
    arena = BatchedArena(cot, cmap)
    return walk(
        rows,
        attrs,
        aux,
        vals,
        arena,
        live,
        visited,
        freed,
        modified,
        saves,
        start,
        stop,
        lowest,
        status,
        no_big,
        no_big,
    )


def _batched(arena):
    return isinstance(arena, types.BaseNamedTuple) and arena.instance_class is BatchedArena


@layout_rule(supports, _batched, "always")
def _batched_supports(arena, code):
    return True


@layout_rule(cot_slot, _batched, "always")
def _batched_slot(arena, off):
    if off < 0:
        return -1
    return arena.cmap[off]


@layout_rule(move, _batched, "always")
def _batched_move(arena, dst, src, scale):
    cot = arena.cot
    for b in range(cot.shape[1]):
        cot[dst, b] += scale * cot[src, b]


@layout_rule(unary_adjoint, _batched)
def _batched_unary(arena, code, vals, o, x, co, cx, n, a0, a1):
    cot = arena.cot
    for i in range(n):
        d = unary_partial(code, vals[x + i], vals[o + i], a0, a1)
        for b in range(cot.shape[1]):
            cot[cx + i, b] += cot[co + i, b] * d


@layout_rule(binary_adjoint, _batched)
def _batched_binary(arena, code, vals, o, x, y, co, cx, cy, n, xrg, yrg):
    cot = arena.cot
    for i in range(n):
        if xrg:
            dx = binary_partial_x(code, vals[x + i], vals[y + i], vals[o + i])
            for b in range(cot.shape[1]):
                cot[cx + i, b] += cot[co + i, b] * dx
        if yrg:
            dy = binary_partial_y(code, vals[x + i], vals[y + i], vals[o + i])
            for b in range(cot.shape[1]):
                cot[cy + i, b] += cot[co + i, b] * dy


@layout_rule(clear_region, _batched)
def _batched_clear(arena, off, size):
    c = arena.cmap[off]
    arena.cot[c : c + size] = 0.0


@layout_rule(columns, _batched, "always")
def _batched_columns(arena):
    return arena.cot.shape[1]


@layout_rule(column, _batched, "always")
def _batched_column(arena, b):
    return arena.cot[:, b]


@layout_rule(matmul_adjoint, _batched)
def _matmul_backward_batched(arena, vals, aux, a, o, x, y, xrg, yrg):
    """aux[a:a+6] = (Bm, M, K, N, x batch stride, y batch stride), as the one-VJP kernel. With B cotangents
    per slot, g of matrix ``bm`` is ``(M, N * B)``: ``gy += x.T @ g`` is one GEMM with B times the columns;
    ``gx[m] += y @ g[m]`` is one GEMM ``(K, N) @ (N, B)`` per row ``m`` of x."""
    cot = arena.cot
    co = arena.cmap[o]
    nb = cot.shape[1]
    Bm = aux[a]
    M = aux[a + 1]
    K_ = aux[a + 2]
    N = aux[a + 3]
    xbs = aux[a + 4]
    ybs = aux[a + 5]
    for bm in range(Bm):
        go = co + bm * M * N
        xb0 = x + bm * xbs
        yb0 = y + bm * ybs
        if yrg:
            g = cot[go : go + M * N].reshape((M, N * nb))
            xb = vals[xb0 : xb0 + M * K_].reshape((M, K_))
            gyb = arena.cmap[y] + bm * ybs
            gy = cot[gyb : gyb + K_ * N].reshape((K_, N * nb))
            gy += np.dot(xb.T, g)
        if xrg:
            yb = vals[yb0 : yb0 + K_ * N].reshape((K_, N))
            gxb = arena.cmap[x] + bm * xbs
            for m in range(M):
                gm = cot[go + m * N : go + (m + 1) * N]
                cot[gxb + m * K_ : gxb + (m + 1) * K_] += np.dot(yb, gm)


@layout_rule(linear_adjoint, _batched)
def _linear_backward_batched(arena, vals, M, K_, N, o, x, y, xrg, yrg):
    """out (M, N) = x (M, K) @ y.T with y (N, K): ``gx[m] += y.T @ g[m]`` (a GEMM (K, N) @ (N, B) per row),
    ``gy[n, k] += g[m, n] * x[m, k]`` summed over m (B values at a time)."""
    cot = arena.cot
    co = arena.cmap[o]
    nb = cot.shape[1]
    yt = np.ascontiguousarray(vals[y : y + N * K_].reshape((N, K_)).T)
    for m in range(M):
        gm = cot[co + m * N : co + (m + 1) * N]
        if xrg:
            cx = arena.cmap[x]
            cot[cx + m * K_ : cx + (m + 1) * K_] += np.dot(yt, gm)
        if yrg:
            cy = arena.cmap[y]
            for nn in range(N):
                for k in range(K_):
                    xv = vals[x + m * K_ + k]
                    for b in range(nb):
                        cot[cy + nn * K_ + k, b] += gm[nn, b] * xv
