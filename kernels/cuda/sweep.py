"""The reverse sweep on an NVIDIA GPU: the ``@cuda.jit`` twin of ``kernels.cpu.reverse_sweep``.

Inputs: the CPU sweep's (see ``kernels/cpu.py``), as numba device arrays (``cuda.to_device``), in the same
layout: ``rows`` int64 (R, 8), ``attrs`` float64 (R, 2), ``aux`` int64, the value arena ``vals`` and the
cotangent arena ``cot`` (float32 or float64), the per-offset ``live`` and ``modified`` flags, the per-row
``visited`` and ``freed`` flags, ``saves`` (``kernels.cpu.SAVES``), ``big_off``/``big_n`` (the big regions,
cleared at their first write). Results land in ``cot``, ``live`` and ``visited`` as on the CPU.

How the rows are swept (``reverse_sweep``, the host driver, walks rows ``start`` down to ``stop``):

- a run of consecutive small rows is one launch of ``sweep_block_kernel``: a single block that walks the run
  in reverse, its threads striding over each row's elements, with ``cuda.syncthreads()`` between rows (a row
  reads the cotangents that later rows wrote). The block keeps the CPU sweep's control state (skip rows whose
  output has no cotangent, stop below ``lowest``, raise on freed or modified saved values) with every thread
  taking the same branch, so the barriers are uniform;
- a row of at least ``big_threshold`` work items (``row_work``) ends the run and gets full-grid launches:
  ``big_begin_kernel`` (one thread: the control checks, result in ``state``), ``big_clear_kernel`` (only
  when the tape has big regions), ``big_body_kernel`` once per phase, ``big_end_kernel`` (one thread: live
  flags and ``lowest``). Elementwise rows store an operand's first cotangent instead of clearing and adding.
  Big matmul, linear, log_softmax and cross-entropy rows call ``kernels/cuda``'s host functions (cuBLAS
  through CuPy on a GPU, one block per line), so the host reads ``state`` once to know whether the row runs.
  Big elementwise rows launch ``_unary_row`` / ``_binary_row`` specialized for their opcode (no per-element
  branch on it, as ``elementwise.py``'s), which read ``state`` on the device. Otherwise nothing returns to the
  host until the end, where one copy of ``state`` gives the result (each copy back is a wait for the device:
  one per elementwise row cost as much as the row itself for tensors of ~1M elements).

``state`` (int64, device): ``[lowest, error, active, x_new, y_new, b_new, status0, status1, status2]``: the
sweep's ``lowest``, whether a saved-value check failed (then ``status*`` hold the CPU's ``status``), and the
big row in flight (whether it runs, and which operands receive their first cotangent).

The body of each row (``_row_body``) is written once and called with ``(tid, nthreads)`` = (thread, block
size) by the block kernel and (global thread, grid size) by the big-row kernel. Rows whose body has parts
that must not overlap run in phases (``_phases``): matmul and linear write ``gx`` then ``gy`` (``x`` and
``y`` may be one tensor; loops in the block for small rows) then the bias; group reductions (prod, amax,
amin) first have one thread per group (its "leader", the member whose reduced coordinates are 0) count its
zeros or maxima into ``gcount`` and multiply its non-zero members into ``gstat``, then give each member its
share. Adjoints of gathers (broadcasts, integer indexing) add with ``cuda.atomic.add``: several elements may
share a target. GATHER_INDEXED rows (indices computed on the device: ``kernels/cuda/pool.py``) read theirs from
the value arena, at the offset their aux holds.

Per-element partials are ``kernels/pointwise.py``'s formulas as ``kernels/cuda/device.py`` compiles them; the
check of saved values and the per-line bodies of log_softmax and cross-entropy are ``kernels/cpu.py``'s
(``register_jitable``: one source, compiled for either device).
"""

import numpy as np
from numba import cuda, njit
from numba.extending import register_jitable

from .. import opcodes as K
from ..cpu import KERNEL, cross_entropy_sample_backward, log_softmax_line_backward, matmul_layout, saved_error
from . import elementwise as E
from . import launch as L
from .device import (
    aux_view_offset,
    binary_partial_x,
    binary_partial_y,
    counts_as_extreme,
    extreme_share,
    selects,
    times,
    unary_partial,
)
from .matmul import matmul
from .softmax import cross_entropy_backward, log_softmax_backward

# A row with at least this many work items (elements, or products for matmul) gets its own full-grid launch.
BIG_THRESHOLD = 16384
BLOCK_THREADS = 256  # threads of the single-block kernel
GRID_THREADS = 256  # threads per block of the big-row kernels
MAX_GRID_BLOCKS = 4 if L.SIMULATOR else 8192  # grid-stride loops beyond this (the simulator pays per thread)

LOWEST, ERROR, ACTIVE, X_NEW, Y_NEW, B_NEW, STATUS = 0, 1, 2, 3, 4, 5, 6
STATE_SIZE = STATUS + 3
CLEAR_X, CLEAR_Y, CLEAR_B = 1, 2, 4  # big_clear_kernel's ``which``


# --- device helpers (shared by the block and the grid kernels) ---------------------------------------------


@register_jitable
def _phases(code):
    """How many barrier-separated phases the body of a row with opcode ``code`` has."""
    if code == K.LINEAR_BIAS:
        return 3
    if code == K.MATMUL or code == K.LINEAR or code == K.PROD or code == K.AMAX or code == K.AMIN:
        return 2
    return 1


@register_jitable
def _big_size(big_off, big_n, off):
    """Size of the big region starting at ``off`` (``big_off`` sorted), 0 if there is none."""
    lo = 0
    hi = big_off.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if big_off[mid] < off:
            lo = mid + 1
        else:
            hi = mid
    if lo < big_off.shape[0] and big_off[lo] == off:
        return big_n[lo]
    return 0


@register_jitable
def _clear_big(cot, big_off, big_n, off, tid, nthr):
    size = _big_size(big_off, big_n, off)
    for i in range(tid, size, nthr):
        cot[off + i] = 0.0


@register_jitable
def _bias_of(rows, aux, r):
    """The bias offset of a LINEAR_BIAS row whose bias requires grad, else -1."""
    if rows[r, 0] & K.CODE_MASK == K.LINEAR_BIAS and aux[rows[r, 5] + 5] != 0:
        return aux[rows[r, 5] + 3]
    return -1


@register_jitable
def _extent(aux, a):
    """Number of elements of the index space ``aux[a + 2: a + 2 + ndim]`` of a strided row."""
    total = 1
    for k in range(aux[a]):
        total *= aux[a + 2 + k]
    return total


@register_jitable
def _strided_adjoint(cot, aux, a, o, x, scale, gather, tid, nthr):
    """gather: ``cot[x + offset(i)] += cot[o + i]`` (atomic: broadcasts repeat offsets); scatter:
    ``cot[x + i] += scale * cot[o + offset(i)]`` (see cpu._strided_walk)."""
    for i in range(tid, _extent(aux, a), nthr):
        off = aux_view_offset(i, aux, a)
        if gather:
            cuda.atomic.add(cot, x + off, cot[o + i])
        else:
            cot[x + i] += scale * cot[o + off]


@register_jitable
def _matmul_gx(vals, cot, aux, a, o, x, y, tid, nthr):
    """gx[b] += g[b] @ y[b].T; a batch stride of 0 (broadcast x) sums over the batches."""
    B, M, K_, N, xbs, ybs = matmul_layout(aux, a)
    nb = B if xbs != 0 else 1
    for t in range(tid, nb * M * K_, nthr):
        bx = t // (M * K_)
        m = (t - bx * M * K_) // K_
        k = t - bx * M * K_ - m * K_
        b0 = bx if xbs != 0 else 0
        b1 = bx + 1 if xbs != 0 else B
        s = 0.0
        for b in range(b0, b1):
            g0 = o + b * M * N + m * N
            y0 = y + b * ybs + k * N
            for j in range(N):
                s += cot[g0 + j] * vals[y0 + j]
        cot[x + bx * xbs + m * K_ + k] += s


@register_jitable
def _matmul_gy(vals, cot, aux, a, o, x, y, tid, nthr):
    """gy[b] += x[b].T @ g[b]; a batch stride of 0 (broadcast y) sums over the batches."""
    B, M, K_, N, xbs, ybs = matmul_layout(aux, a)
    nb = B if ybs != 0 else 1
    for t in range(tid, nb * K_ * N, nthr):
        by = t // (K_ * N)
        k = (t - by * K_ * N) // N
        n = t - by * K_ * N - k * N
        b0 = by if ybs != 0 else 0
        b1 = by + 1 if ybs != 0 else B
        s = 0.0
        for b in range(b0, b1):
            g0 = o + b * M * N + n
            x0 = x + b * xbs + k
            for m in range(M):
                s += vals[x0 + m * K_] * cot[g0 + m * N]
        cot[y + by * ybs + k * N + n] += s


@register_jitable
def _linear_part(phase, vals, cot, aux, a, o, x, y, xrg, yrg, tid, nthr):
    """out (M, N) = x (M, K) @ y.T (y: (N, K)). Phase 0: gx += g @ y; 1: gy += g.T @ x; 2: the bias."""
    M = aux[a]
    K_ = aux[a + 1]
    N = aux[a + 2]
    if phase == 0 and xrg:
        for t in range(tid, M * K_, nthr):
            m = t // K_
            k = t - m * K_
            s = 0.0
            for n in range(N):
                s += cot[o + m * N + n] * vals[y + n * K_ + k]
            cot[x + t] += s
    elif phase == 1 and yrg:
        for t in range(tid, N * K_, nthr):
            n = t // K_
            k = t - n * K_
            s = 0.0
            for m in range(M):
                s += cot[o + m * N + n] * vals[x + m * K_ + k]
            cot[y + t] += s
    elif phase == 2 and aux[a + 5] != 0:
        b = aux[a + 3]
        for j in range(tid, N, nthr):
            s = 0.0
            for m in range(M):
                s += cot[o + m * N + j]
            cot[b + j] += s


@register_jitable
def _log_softmax_lines(vals, cot, outer, size, inner, o, x, tid, nthr):
    """gx = g - softmax * sum(g) along the middle axis of (outer, size, inner): one thread per line."""
    for t in range(tid, outer * inner, nthr):
        i = t // inner
        log_softmax_line_backward(vals, cot, i * size * inner + (t - i * inner), size, inner, o, o, x)


@register_jitable
def _cross_entropy_lines(vals, cot, aux, a, o, x, tid, nthr):
    """gx[i] = g / M * (softmax(x[i]) - onehot(t_i)): one thread per sample (cpu.cross_entropy_backward's)."""
    M = aux[a]
    C = aux[a + 1]
    scale = cot[o] / M
    for i in range(tid, M, nthr):
        cross_entropy_sample_backward(vals, cot, x + i * C, x + i * C, C, aux[a + 2 + i], scale)


@register_jitable
def _group_leaders(code, vals, aux, a, o, x, gstat, gcount, tid, nthr):
    """Phase 0 of prod/amax/amin: per group (out element j), the number of zeros (prod) or of members equal
    to the result (amax, amin) into ``gcount[j]``, the product of the non-zero members into ``gstat[j]``.
    A group's members differ only along the reduced dims (aux strides 0, as ops._reduce_layout records)."""
    ndim = aux[a]
    shape0 = a + 2
    stride0 = a + 2 + ndim
    for i in range(tid, _extent(aux, a), nthr):
        leader = True
        nred = 1
        rem = i
        for k in range(ndim - 1, -1, -1):
            extent = aux[shape0 + k]
            if aux[stride0 + k] == 0:
                nred *= extent
                if rem % extent != 0:
                    leader = False
            rem //= extent
        if not leader:
            continue
        j = aux_view_offset(i, aux, a)
        count = 0
        nonzero_prod = 1.0
        for t in range(nred):
            member = i
            trem = t
            step = 1
            for k in range(ndim - 1, -1, -1):
                extent = aux[shape0 + k]
                if aux[stride0 + k] == 0:
                    member += (trem % extent) * step
                    trem //= extent
                step *= extent
            v = vals[x + member]
            if code == K.PROD:
                if v == 0.0:
                    count += 1
                else:
                    nonzero_prod *= v
            elif counts_as_extreme(v, vals[o + j], aux[a + 2 + 2 * ndim] != 0):
                count += 1
        gcount[j] = count
        gstat[j] = nonzero_prod


@register_jitable
def _group_apply(code, vals, cot, aux, a, o, x, gstat, gcount, tid, nthr):
    """Phase 1 of prod/amax/amin: each member's share of its group's cotangent (cpu.group_backward)."""
    for i in range(tid, _extent(aux, a), nthr):
        j = aux_view_offset(i, aux, a)
        v = vals[x + i]
        if code == K.PROD:
            if gcount[j] == 0:
                cot[x + i] += cot[o + j] * (gstat[j] / v)
            elif gcount[j] == 1 and v == 0.0:
                cot[x + i] += cot[o + j] * gstat[j]
        else:  # (the aux's last item: the sharing rule, cpu.group_backward)
            evenly = aux[a + 2 + 2 * aux[a]] != 0
            if not evenly or selects(v, vals[o + j]):
                cot[x + i] += extreme_share(cot[o + j], gcount[j], v, vals[o + j], evenly)


@register_jitable
def _elementwise(code):
    """Unary and same-shape binary rows: they write every element of their operands' regions exactly once."""
    return K.is_unary(code) or (code >= K.BINARY_FIRST and code <= K.BINARY_LAST)


@register_jitable
def _stores_first(code):
    """Rows that write every element of their operands' regions exactly once (elementwise rows, and the sum of
    a whole tensor), so they store an operand's first cotangent: its region needs no clearing."""
    return _elementwise(code) or code == K.SUM_ALL


@register_jitable
def _put(cot, i, v, store):
    if store:
        cot[i] = v
    else:
        cot[i] += v


@register_jitable
def _row_body(phase, r, rows, attrs, aux, vals, cot, gstat, gcount, store_x, store_y, tid, nthr):
    """This thread's share of phase ``phase`` of row ``r``'s cotangent update (cpu.reverse_sweep's body).

    ``store_x``/``store_y``: an elementwise or SUM_ALL row writes its operand's first cotangent, so it stores
    instead of adding (no clearing pass over a big region, one read less per element; as the CPU engine's
    fused rows)."""
    op = rows[r, 0]
    code = op & K.CODE_MASK
    o = rows[r, 1]
    x = rows[r, 2]
    y = rows[r, 3]
    n = rows[r, 4]
    a = rows[r, 5]
    a0 = attrs[r, 0]
    a1 = attrs[r, 1]
    xrg = (op & K.XRG) != 0
    yrg = (op & K.YRG) != 0
    if K.is_unary(code):
        if xrg:
            for i in range(tid, n, nthr):
                _put(
                    cot, x + i, times(code, cot[o + i], unary_partial(code, vals[x + i], vals[o + i], a0, a1)), store_x
                )
    elif code >= K.BINARY_FIRST and code <= K.BINARY_LAST:
        for i in range(tid, n, nthr):  # one thread per element for x and y: x and y may be one tensor
            if xrg:
                _put(
                    cot,
                    x + i,
                    times(code, cot[o + i], binary_partial_x(code, vals[x + i], vals[y + i], vals[o + i])),
                    store_x,
                )
            if yrg:
                _put(
                    cot,
                    y + i,
                    times(code, cot[o + i], binary_partial_y(code, vals[x + i], vals[y + i], vals[o + i])),
                    store_y,
                )
    elif code == K.WHERE:
        for i in range(tid, n, nthr):
            m = vals[a + i]
            if xrg and m != 0:
                cot[x + i] += cot[o + i]
            if yrg and m == 0:
                cot[y + i] += cot[o + i]
    elif code == K.GATHER_STRIDED:
        _strided_adjoint(cot, aux, a, o, x, 1.0, True, tid, nthr)
    elif code == K.SCATTER_STRIDED:
        _strided_adjoint(cot, aux, a, o, x, a0, False, tid, nthr)
    elif code == K.SUM_ALL:
        if xrg:
            gs = a0 * cot[o]
            for i in range(tid, a, nthr):
                _put(cot, x + i, gs, store_x)
    elif code == K.GATHER_MAP:
        for i in range(tid, n, nthr):
            cuda.atomic.add(cot, x + aux[a + 1 + i], cot[o + i])
    elif code == K.SCATTER_MAP:
        for i in range(tid, aux[a], nthr):
            cot[x + i] += cot[o + aux[a + 1 + i]]
    elif code == K.GATHER_INDEXED:  # aux -> (offset of the indices in the value arena, shared by the planes)
        if xrg:
            per_out = int(a0)
            per_in = int(a1)
            at = aux[a]
            shared = aux[a + 1] != 0
            for i in range(tid, n, nthr):
                s = vals[at + (i % per_out if shared else i)]
                if s >= 0:
                    cuda.atomic.add(cot, x + (i // per_out) * per_in + int(s), cot[o + i])
    elif code == K.MATMUL:
        if phase == 0 and xrg:
            _matmul_gx(vals, cot, aux, a, o, x, y, tid, nthr)
        elif phase == 1 and yrg:
            _matmul_gy(vals, cot, aux, a, o, x, y, tid, nthr)
    elif code == K.LINEAR or code == K.LINEAR_BIAS:
        _linear_part(phase, vals, cot, aux, a, o, x, y, xrg, yrg, tid, nthr)
    elif code == K.LOG_SOFTMAX:
        if xrg:
            _log_softmax_lines(vals, cot, aux[a], aux[a + 1], aux[a + 2], o, x, tid, nthr)
    elif code == K.CROSS_ENTROPY:
        if xrg:
            _cross_entropy_lines(vals, cot, aux, a, o, x, tid, nthr)
    elif code == K.PROD or code == K.AMAX or code == K.AMIN:
        if phase == 0:
            _group_leaders(code, vals, aux, a, o, x, gstat, gcount, tid, nthr)
        else:
            _group_apply(code, vals, cot, aux, a, o, x, gstat, gcount, tid, nthr)


# --- kernels -----------------------------------------------------------------------------------------------


def _sweep_block(
    rows, attrs, aux, vals, cot, live, visited, freed, modified, saves, hi, lo, big_off, big_n, state, gstat, gcount
):
    """One block sweeps rows ``hi`` down to ``lo`` (and no lower than ``state[LOWEST]``)."""
    tid = cuda.threadIdx.x
    nthr = cuda.blockDim.x
    if state[ERROR] != 0:
        return
    lowest = state[LOWEST]
    r = hi
    while r >= lo and r >= lowest:
        o = rows[r, 1]
        if live[o] == 0:  # every thread reads the same flags (written before the last barrier)
            r -= 1
            continue
        op = rows[r, 0]
        code = op & K.CODE_MASK
        x = rows[r, 2]
        y = rows[r, 3]
        kind, stale = saved_error(r, op, o, x, y, freed, modified, saves)
        if kind != 0:
            if tid == 0:
                state[STATUS] = kind
                state[STATUS + 1] = r
                state[STATUS + 2] = stale
                state[ERROR] = 1
                state[LOWEST] = lowest
            return
        x_new = (op & K.XRG) != 0 and live[x] == 0
        y_new = (op & K.YRG) != 0 and live[y] == 0
        b = _bias_of(rows, aux, r)
        b_new = b >= 0 and live[b] == 0
        if big_off.shape[0] != 0 and not _stores_first(code) and (x_new or y_new or b_new):  # first writes: clear
            if x_new:
                _clear_big(cot, big_off, big_n, x, tid, nthr)
            if y_new:
                _clear_big(cot, big_off, big_n, y, tid, nthr)
            if b_new:
                _clear_big(cot, big_off, big_n, b, tid, nthr)
            cuda.syncthreads()
        for phase in range(_phases(code)):
            if phase > 0:
                cuda.syncthreads()
            store_y = y_new and not (y == x and x_new)  # (x * x: x stores, then y adds)
            _row_body(phase, r, rows, attrs, aux, vals, cot, gstat, gcount, x_new, store_y, tid, nthr)
        cuda.syncthreads()  # every thread has read this row's flags and written its cotangents
        if tid == 0:
            visited[r] = 1
            if x_new:
                live[x] = 1
            if y_new:
                live[y] = 1
            if b_new:
                live[b] = 1
        if x_new and rows[r, 6] < lowest:
            lowest = rows[r, 6]
        if y_new and rows[r, 7] < lowest:
            lowest = rows[r, 7]
        if b_new and aux[rows[r, 5] + 4] < lowest:
            lowest = aux[rows[r, 5] + 4]
        cuda.syncthreads()  # the flags are visible to the next row's reads
        r -= 1
    if tid == 0:
        state[LOWEST] = lowest


def _big_begin(rows, aux, live, visited, freed, modified, saves, r, state):
    """One thread: whether big row ``r`` runs (``state[ACTIVE]``), and which operands it writes first."""
    state[ACTIVE] = 0
    if state[ERROR] != 0 or r < state[LOWEST]:
        return
    o = rows[r, 1]
    if live[o] == 0:
        return
    op = rows[r, 0]
    x = rows[r, 2]
    y = rows[r, 3]
    kind, stale = saved_error(r, op, o, x, y, freed, modified, saves)
    if kind != 0:
        state[STATUS] = kind
        state[STATUS + 1] = r
        state[STATUS + 2] = stale
        state[ERROR] = 1
        return
    visited[r] = 1
    b = _bias_of(rows, aux, r)
    state[X_NEW] = 1 if (op & K.XRG) != 0 and live[x] == 0 else 0
    state[Y_NEW] = 1 if (op & K.YRG) != 0 and live[y] == 0 else 0
    state[B_NEW] = 1 if b >= 0 and live[b] == 0 else 0
    state[ACTIVE] = 1


def _big_clear(rows, aux, cot, big_off, big_n, r, state, which):
    """Clear the big regions that big row ``r`` writes first (before any thread adds into them); ``which``:
    bits CLEAR_X, CLEAR_Y, CLEAR_B of the operands whose first write adds."""
    if state[ACTIVE] == 0:
        return
    tid = cuda.grid(1)
    nthr = cuda.gridsize(1)
    if state[X_NEW] != 0 and (which & CLEAR_X) != 0:
        _clear_big(cot, big_off, big_n, rows[r, 2], tid, nthr)
    if state[Y_NEW] != 0 and (which & CLEAR_Y) != 0 and rows[r, 3] != rows[r, 2]:
        _clear_big(cot, big_off, big_n, rows[r, 3], tid, nthr)
    if state[B_NEW] != 0 and (which & CLEAR_B) != 0:
        _clear_big(cot, big_off, big_n, _bias_of(rows, aux, r), tid, nthr)


def _big_body(phase, r, rows, attrs, aux, vals, cot, state, gstat, gcount):
    """Phase ``phase`` of big row ``r`` over the whole grid."""
    if state[ACTIVE] == 0:
        return
    x_new = state[X_NEW] != 0
    store_y = state[Y_NEW] != 0 and not (rows[r, 3] == rows[r, 2] and x_new)
    _row_body(phase, r, rows, attrs, aux, vals, cot, gstat, gcount, x_new, store_y, cuda.grid(1), cuda.gridsize(1))


def _big_end(rows, aux, live, r, state):
    """One thread: big row ``r`` done; its operands hold cotangents now, and ``lowest`` follows."""
    if state[ACTIVE] == 0:
        return
    lowest = state[LOWEST]
    if state[X_NEW] != 0:
        live[rows[r, 2]] = 1
        if rows[r, 6] < lowest:
            lowest = rows[r, 6]
    if state[Y_NEW] != 0:
        live[rows[r, 3]] = 1
        if rows[r, 7] < lowest:
            lowest = rows[r, 7]
    if state[B_NEW] != 0:
        a = rows[r, 5]
        live[aux[a + 3]] = 1
        if aux[a + 4] < lowest:
            lowest = aux[a + 4]
    state[LOWEST] = lowest
    state[ACTIVE] = 0


def _unary_row(code, x, out, g, gx, a0, a1, state):
    """Big unary row: ``gx (+)= g * d(x, out)`` as ``elementwise.unary_backward``, deciding on the device, from
    ``state`` (``_big_begin``'s), whether the row runs and whether it stores ``gx`` (its first cotangent): the
    host launches it without reading ``state`` back."""
    if state[ACTIVE] != 0:
        E.unary_backward_loop(code, x, out, g, gx, a0, a1, state[X_NEW] == 0)


def _binary_row(code, x, y, out, g, gx, gy, has_x, has_y, same, state):
    """Big same-shape binary row (``_unary_row``'s twin): ``gx``, ``gy`` (+)= ``g`` times the partials, each
    stored where it is its operand's first cotangent; ``same``: x and y are one tensor (``gx`` is ``gy``: each
    thread stores or adds x's share, then adds y's)."""
    if state[ACTIVE] == 0:
        return
    store_x = state[X_NEW] != 0
    store_y = state[Y_NEW] != 0 and not (same and store_x)
    for i in range(cuda.grid(1), g.shape[0], cuda.gridsize(1)):
        if has_x:
            _put(gx, i, times(code, g[i], binary_partial_x(code, x[i], y[i], out[i])), store_x)
        if has_y:
            _put(gy, i, times(code, g[i], binary_partial_y(code, x[i], y[i], out[i])), store_y)


_unary_row_loop = cuda.jit(device=True, inline="always")(_unary_row)
_binary_row_loop = cuda.jit(device=True, inline="always")(_binary_row)


def _unary_row_source(code):
    def unary_row_op(x, out, g, gx, a0, a1, state):
        _unary_row_loop(code, x, out, g, gx, a0, a1, state)

    return unary_row_op


def _binary_row_source(code):
    def binary_row_op(x, y, out, g, gx, gy, has_x, has_y, same, state):
        _binary_row_loop(code, x, y, out, g, gx, gy, has_x, has_y, same, state)

    return binary_row_op


def _row_kernel(binary, code):
    """``_unary_row`` / ``_binary_row`` compiled for opcode ``code`` (``elementwise.specialize``)."""
    return E.specialize(_binary_row_source if binary else _unary_row_source, code)


def _set_flags(flags, offsets):
    """``flags[offsets[i]] = 1``: the ``live`` flags the host set (seeds, custom Functions' gradients) before a
    launch, one small copy of their offsets instead of the arena's flags."""
    for i in range(cuda.grid(1), offsets.shape[0], cuda.gridsize(1)):
        flags[offsets[i]] = 1


sweep_block_kernel = cuda.jit(cache=True)(_sweep_block)
big_begin_kernel = cuda.jit(cache=True)(_big_begin)
big_clear_kernel = cuda.jit(cache=True)(_big_clear)
big_body_kernel = cuda.jit(cache=True)(_big_body)
big_end_kernel = cuda.jit(cache=True)(_big_end)
set_flags_kernel = cuda.jit(cache=True)(_set_flags)


# argument types in the kernels' signatures: ``F`` is the arena's float type (one signature each for float32
# and float64), ``i``/``f`` int64/float64 scalars, a trailing ``[]`` a 1-d array, ``[,]`` a 2-d one
_TYPES = {"i": "int64", "f": "float64", "u": "uint8", "b": "boolean"}


def _signatures(spec):
    """``spec`` (e.g. ``"i[,] f[,] F[] i"``) as numba signature strings for float32 and float64 arenas."""
    out = []
    for ft in ("float32", "float64"):
        names = [
            (ft if t[0] == "F" else _TYPES[t[0]]) + t[1:].replace("[,]", "[:, :]").replace("[]", "[:]")
            for t in spec.split()
        ]
        sig = f"void({', '.join(names)})"
        if sig not in out:
            out.append(sig)
    return out


_ARRAYS = "i[,] f[,] i[] F[] F[] u[] u[] u[] u[] u[]"  # rows .. saves, as reverse_sweep takes them
PTX_KERNELS = [
    (_sweep_block, _signatures(_ARRAYS + " i i i[] i[] i[] f[] i[]")),
    (_big_begin, _signatures("i[,] i[] u[] u[] u[] u[] u[] i i[]")),
    (_big_clear, _signatures("i[,] i[] F[] i[] i[] i i[] i")),
    (_big_body, _signatures("i i i[,] f[,] i[] F[] F[] i[] f[] i[]")),
    (_big_end, _signatures("i[,] i[] u[] i i[]")),
    (_set_flags, _signatures("u[] i[]")),
    (_unary_row, _signatures("i F[] F[] F[] F[] f f i[]")),
    (_binary_row, _signatures("i F[] F[] F[] F[] F[] F[] b b b i[]")),
]


# --- host driver ---------------------------------------------------------------------------------------------


@njit(**KERNEL)
def row_work(rows, aux, start, stop):
    """Work items of rows ``stop..start`` (index ``r - stop``): the elements its body walks, or for matmul
    and linear the largest of its three matrices; what decides whether a row gets its own grid launch."""
    work = np.zeros(max(start - stop + 1, 0), np.int64)
    for r in range(stop, start + 1):
        code = rows[r, 0] & K.CODE_MASK
        n = rows[r, 4]
        a = rows[r, 5]
        w = n
        if code == K.SUM_ALL:
            w = a
        elif code == K.SCATTER_STRIDED or code == K.PROD or code == K.AMAX or code == K.AMIN:
            w = 1
            for k in range(aux[a]):
                w *= aux[a + 2 + k]
        elif code == K.SCATTER_MAP:
            w = aux[a]
        elif code == K.MATMUL:
            B, M, K_, N = aux[a], aux[a + 1], aux[a + 2], aux[a + 3]
            w = B * max(M * K_, K_ * N, M * N)
        elif code == K.LINEAR or code == K.LINEAR_BIAS:
            M, K_, N = aux[a], aux[a + 1], aux[a + 2]
            w = max(M * K_, K_ * N, M * N)
        elif code == K.CROSS_ENTROPY:
            w = aux[a] * aux[a + 1]
        work[r - stop] = w
    return work


LIBRARY_ROWS = (K.MATMUL, K.LINEAR, K.LINEAR_BIAS, K.LOG_SOFTMAX, K.CROSS_ENTROPY)


def _library_row(phase, row, aux, aux_d, vals, cot, flags):
    """Phase ``phase`` of big row ``row`` (host copy; a code of ``LIBRARY_ROWS``) through the host functions of
    ``kernels/cuda`` on views of the arenas: matmul and linear (phase 0: gx, 1: gy; cuBLAS when CuPy is there),
    log_softmax and cross entropy (one block per line). ``aux``/``aux_d``: on the host and the device.
    ``flags``: the host copy of ``state``; an operand's first cotangent is stored, not added."""
    op, o, x, y, n, a = (int(v) for v in row[:6])
    code = op & K.CODE_MASK
    if (op & (K.XRG if phase == 0 else K.YRG)) == 0:
        return
    first = flags[X_NEW] != 0 if phase == 0 else flags[Y_NEW] != 0 and not (y == x and flags[X_NEW] != 0)
    if code == K.LOG_SOFTMAX:
        shape = tuple(int(v) for v in aux[a : a + 3])  # (outer, size, inner): the dim is the middle one
        out, g, gx = (arena[off : off + n].reshape(shape) for arena, off in ((vals, o), (cot, o), (cot, x)))
        log_softmax_backward(out, g, gx, 1, accumulate=not first)
    elif code == K.CROSS_ENTROPY:
        M, C = int(aux[a]), int(aux[a + 1])
        logits, gx = vals[x : x + M * C].reshape(M, C), cot[x : x + M * C].reshape(M, C)
        cross_entropy_backward(logits, aux_d[a + 2 : a + 2 + M], cot[o : o + 1], gx, accumulate=not first)
    elif code == K.MATMUL:
        B, M, K_, N, xbs, ybs = (int(v) for v in aux[a : a + 6])
        bx = B if xbs != 0 else 1  # 1: x broadcast over the batch (its gradient sums the batches)
        by = B if ybs != 0 else 1
        g = cot[o : o + B * M * N].reshape(B, M, N)
        if phase == 0:
            gx = cot[x : x + bx * M * K_].reshape(bx, M, K_)
            matmul(g, vals[y : y + by * K_ * N].reshape(by, K_, N), gx, transpose_y=True, accumulate=not first)
        else:
            gy = cot[y : y + by * K_ * N].reshape(by, K_, N)
            matmul(vals[x : x + bx * M * K_].reshape(bx, M, K_), g, gy, transpose_x=True, accumulate=not first)
    else:  # out (M, N) = x (M, K) @ y.T, y (N, K)
        M, K_, N = (int(v) for v in aux[a : a + 3])
        g = cot[o : o + M * N].reshape(M, N)
        if phase == 0:
            matmul(g, vals[y : y + N * K_].reshape(N, K_), cot[x : x + M * K_].reshape(M, K_), accumulate=not first)
        else:
            gy = cot[y : y + N * K_].reshape(N, K_)
            matmul(g, vals[x : x + M * K_].reshape(M, K_), gy, transpose_x=True, accumulate=not first)


def _elementwise_row(row, attr, vals, cot, state):
    """Big elementwise row ``row`` (host copies of it and its attributes): one launch of ``_unary_row`` or
    ``_binary_row`` specialized for its opcode, which reads ``state`` on the device (whether the row runs, which
    operands it writes first), so the host waits for nothing."""
    op, o, x, y, n = (int(v) for v in row[:5])
    code = op & K.CODE_MASK
    out, g = vals[o : o + n], cot[o : o + n]
    xrg, yrg = (op & K.XRG) != 0, (op & K.YRG) != 0
    grid = L.flat_grid(n)
    if not K.BINARY_FIRST <= code <= K.BINARY_LAST:
        if xrg:
            a0, a1 = float(attr[0]), float(attr[1])
            _row_kernel(False, code)[grid](vals[x : x + n], out, g, cot[x : x + n], a0, a1, state)
        return
    gx = cot[x : x + n] if xrg else g  # (an unused placeholder of the right type)
    gy = cot[y : y + n] if yrg else g
    _row_kernel(True, code)[grid](vals[x : x + n], vals[y : y + n], out, g, gx, gy, xrg, yrg, x == y, state)


def set_flags(flags, offsets):
    """``flags[off] = 1`` (a uint8 device array) at each of ``offsets`` (host ints): one copy of the offsets and
    one launch, whatever their number."""
    if len(offsets):
        dev_offsets = cuda.to_device(np.asarray(offsets, dtype=np.int64))
        set_flags_kernel[L.flat_grid(len(offsets))](flags, dev_offsets)


def _on_host(arr):
    return arr.copy_to_host() if hasattr(arr, "copy_to_host") else np.asarray(arr)


def reverse_sweep(
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
    start,
    stop,
    lowest,
    status,
    big_off,
    big_n,
    *,
    big_threshold=BIG_THRESHOLD,
    threads=BLOCK_THREADS,
    grid_threads=GRID_THREADS,
    host_rows=None,
    host_aux=None,
    host_attrs=None,
):
    """Sweep rows ``start`` down to ``stop`` of a tape on the device; ``kernels.cpu.reverse_sweep``'s contract.

    Args:
        rows, attrs, aux: the tape's ``Tape.arrays()`` as device arrays (``rows`` int64 (R, 8), ``attrs``
            float64 (R, 2), ``aux`` int64, at least one element).
        vals, cot: the value arena and the cotangent arena (device, float32 or float64, one dtype), ``cot``
            zero outside the big regions and holding the seeds.
        live: uint8 per arena offset (device): 1 where a tensor has a cotangent; updated.
        visited: uint8 per row (device): set for each row swept.
        freed: uint8 per row (device): rows whose saved values were released.
        modified: uint8 per arena offset (device): values modified in place since they were recorded.
        saves: ``kernels.cpu.SAVES`` (device, uint8).
        start, stop, lowest: ints, as for the CPU sweep (rows ``start`` down to ``stop``, never below the
            lowest row that produced a live tensor; ``stop`` is the row after one that needs Python).
        status: int64 array of 3 (host or device): on a failed check, ``(FREED | MODIFIED, row, offset)``.
        big_off, big_n: int64 device arrays, the big regions (sorted offsets and sizes; may be empty).
        big_threshold: rows with this many work items (``row_work``) or more get full-grid launches.
        threads: threads of the single-block kernel; grid_threads: per block of the big-row kernels.
        host_rows, host_aux, host_attrs: the same ``rows``, ``aux`` and ``attrs`` on the host, when the caller
            has them (saves copying them back to plan the launches).

    Returns:
        The new ``lowest``, or -1 when a row's saved values were freed or modified (``status`` says which);
        as the CPU sweep, the cotangent arena is then partly swept and must be discarded.
    """
    if start < stop or start < lowest:
        return lowest
    rows_h = _on_host(rows) if host_rows is None else host_rows
    aux_h = _on_host(aux) if host_aux is None else host_aux
    work = row_work(rows_h, aux_h, start, stop)
    codes = rows_h[stop : start + 1, 0] & K.CODE_MASK
    groups = (codes == K.PROD) | (codes == K.AMAX) | (codes == K.AMIN)
    nstat = int(rows_h[stop : start + 1, 4][groups].max()) if groups.any() else 1
    gstat = cuda.device_array(max(nstat, 1), np.float64)
    gcount = cuda.device_array(max(nstat, 1), np.int64)
    state_h = np.zeros(STATE_SIZE, np.int64)
    state_h[LOWEST] = lowest
    state = cuda.to_device(state_h)
    has_big_regions = big_off.shape[0] != 0
    attrs_h = None
    r = start
    for big in (np.flatnonzero(work >= big_threshold)[::-1] + stop).tolist():
        if big < r:
            sweep_block_kernel[1, threads](
                rows, attrs, aux, vals, cot, live, visited, freed, modified, saves, r, big + 1, big_off, big_n,
                state, gstat, gcount,
            )  # fmt: skip
        blocks = max(1, min(MAX_GRID_BLOCKS, -(-int(work[big - stop]) // grid_threads)))
        code = int(codes[big - stop])
        big_begin_kernel[1, 1](rows, aux, live, visited, freed, modified, saves, big, state)
        elementwise = _elementwise(code)
        library = code in LIBRARY_ROWS
        if library:  # launched from the host (cuBLAS, block-per-line kernels): it must know whether the row runs
            flags = state.copy_to_host()
            if flags[ACTIVE] == 0:
                r = big - 1
                continue
        if has_big_regions and not _stores_first(code):  # (those and library rows store first writes)
            which = CLEAR_B if library else CLEAR_X | CLEAR_Y | CLEAR_B
            big_clear_kernel[blocks, grid_threads](rows, aux, cot, big_off, big_n, big, state, which)
        for phase in range(_phases(code)):
            if elementwise:
                if attrs_h is None:
                    attrs_h = _on_host(attrs) if host_attrs is None else host_attrs
                _elementwise_row(rows_h[big], attrs_h[big], vals, cot, state)
            elif library and phase < 2:
                _library_row(phase, rows_h[big], aux_h, aux, vals, cot, flags)
            else:
                big_body_kernel[blocks, grid_threads](phase, big, rows, attrs, aux, vals, cot, state, gstat, gcount)
        big_end_kernel[1, 1](rows, aux, live, big, state)
        r = big - 1
    if r >= stop:
        sweep_block_kernel[1, threads](
            rows, attrs, aux, vals, cot, live, visited, freed, modified, saves, r, stop, big_off, big_n, state,
            gstat, gcount,
        )  # fmt: skip
    state_h = state.copy_to_host()
    if state_h[ERROR] != 0:
        result = state_h[STATUS : STATUS + 3]
        if hasattr(status, "copy_to_device"):
            status.copy_to_device(result)
        else:
            status[:3] = result
        return -1
    return int(state_h[LOWEST])
