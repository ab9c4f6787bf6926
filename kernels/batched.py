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
- ``addrs`` int64 ``(R, 2)`` (or ``(0, 2)``: none): per row, the data address of its x and y values where they
  are not in the arena (0 where they are): a big tensor imported without its values (``tape.BIG_ROW``) that a
  product swept here reads from its own array (``_operand_values``), where the caller copied it into the arena.

The arena is zero-filled by the caller (no "store at first write" regions, unlike the one-VJP sweep), so a
row always adds. Blocks of the arena may be shared by regions whose cotangents are never needed at the same
time (``recycled_bases``, at the end): ``zero_row``/``zero_base``/``zero_len`` list the blocks to clear when the
sweep reaches a row, in descending row order. Rows the one-VJP kernel skips are skipped here too; ``live``
(per value offset), ``visited``, ``freed``, ``modified`` and the returned ``lowest`` mean the same. Ops whose
backward walks groups or rows (log_softmax, cross_entropy, prod, amax, amin) run once per column ``cot[:, b]``.
"""

import numpy as np
from numba import carray, njit, types
from numba.extending import intrinsic

from . import opcodes as K
from .chain_sweep import _pointer
from .cpu import (
    KERNEL,
    binary_partial_x,
    binary_partial_y,
    cross_entropy_backward,
    group_backward,
    log_softmax_backward,
    matmul_layout,
    odometer_step,
    operand_live,
    saved_values_lost,
    times,
    unary_partial,
    unsigned,
)


@njit(**KERNEL)
def reverse_sweep_batched(
    rows,
    attrs,
    aux,
    vals,
    cot,
    cmap,
    live,
    visited,
    freed,
    modified,
    saves,
    start,
    stop,
    lowest,
    status,
    zero_row,
    zero_base,
    zero_len,
    addrs,
):
    nb = cot.shape[1]
    nzero = zero_row.shape[0]
    z = 0
    r = start
    while r >= stop and r >= lowest:
        while z < nzero and zero_row[z] >= r:  # a recycled block's new owner is born here (see recycled_bases)
            cot[zero_base[z] : zero_base[z] + zero_len[z]] = 0.0
            z += 1
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
        co = cmap[o]
        cx = cmap[x] if x >= 0 else -1
        cy = cmap[y] if y >= 0 else -1
        xrg = (op & K.XRG) != 0
        yrg = (op & K.YRG) != 0
        n = rows[r, 4]
        a = rows[r, 5]
        a0 = attrs[r, 0]
        a1 = attrs[r, 1]
        if K.is_unary(code):
            if xrg:
                uo, ux, uco, ucx = unsigned(o), unsigned(x), unsigned(co), unsigned(cx)
                for i in range(unsigned(n)):
                    d = unary_partial(code, vals[ux + i], vals[uo + i], a0, a1)
                    for b in range(unsigned(nb)):
                        cot[ucx + i, b] += times(code, cot[uco + i, b], d)
        elif code >= K.BINARY_FIRST and code <= K.BINARY_LAST:
            uo, ux, uy, uco = unsigned(o), unsigned(x), unsigned(y), unsigned(co)
            for i in range(unsigned(n)):
                if xrg:
                    dx = binary_partial_x(code, vals[ux + i], vals[uy + i], vals[uo + i])
                    ucx = unsigned(cx)
                    for b in range(unsigned(nb)):
                        cot[ucx + i, b] += times(code, cot[uco + i, b], dx)
                if yrg:
                    dy = binary_partial_y(code, vals[ux + i], vals[uy + i], vals[uo + i])
                    ucy = unsigned(cy)
                    for b in range(unsigned(nb)):
                        cot[ucy + i, b] += times(code, cot[uco + i, b], dy)
        elif code == K.WHERE:
            for i in range(n):
                m = vals[a + i]
                if xrg and m != 0:
                    _add_slot(cot, cx + i, co + i, 1.0)
                if yrg and m == 0:
                    _add_slot(cot, cy + i, co + i, 1.0)
        elif code == K.GATHER_STRIDED:
            _strided_walk_batched(cot, aux, a, co, cx, 1.0, True)
        elif code == K.SCATTER_STRIDED:
            _strided_walk_batched(cot, aux, a, co, cx, a0, False)
        elif code == K.SUM_ALL:
            if xrg:
                ucx = unsigned(cx)
                for i in range(unsigned(a)):
                    for b in range(unsigned(nb)):
                        cot[ucx + i, b] += a0 * cot[co, b]
        elif code == K.GATHER_MAP:
            for i in range(n):
                _add_slot(cot, cx + aux[a + 1 + i], co + i, 1.0)
        elif code == K.SCATTER_MAP:
            for i in range(aux[a]):
                _add_slot(cot, cx + i, co + aux[a + 1 + i], 1.0)
        elif code == K.MATMUL:
            _matmul_backward_batched(vals, cot, aux, a, co, x, y, cx, cy, xrg, yrg, addrs, r)
        elif code == K.LINEAR or code == K.LINEAR_BIAS:
            _linear_backward_batched(vals, cot, aux[a], aux[a + 1], aux[a + 2], co, x, y, cx, cy, xrg, yrg, addrs, r)
            if code == K.LINEAR_BIAS and aux[a + 5] != 0:  # the bias: a third operand (offset and row in aux)
                bias = aux[a + 3]
                cb = cmap[bias]
                for i in range(aux[a]):
                    for j in range(aux[a + 2]):
                        _add_slot(cot, cb + j, co + i * aux[a + 2] + j, 1.0)
                lowest = operand_live(live, bias, aux[a + 4], lowest)
        elif code == K.LOG_SOFTMAX:
            if xrg:
                for b in range(nb):
                    log_softmax_backward(vals, cot[:, b], aux[a], aux[a + 1], aux[a + 2], o, co, cx)
        elif code == K.CROSS_ENTROPY:
            if xrg:
                for b in range(nb):
                    cross_entropy_backward(vals, cot[:, b], aux, a, co, x, cx)
        elif code == K.PROD or code == K.AMAX or code == K.AMIN:
            for b in range(nb):
                group_backward(code, vals, cot[:, b], aux, a, o, x, co, cx, n)
        if xrg:
            lowest = operand_live(live, x, rows[r, 6], lowest)
        if yrg:
            lowest = operand_live(live, y, rows[r, 7], lowest)
        r -= 1
    return lowest


@njit(inline="always", **KERNEL)
def _add_slot(cot, dst, src, scale):
    """The B cotangents of slot ``dst`` += ``scale`` times those of slot ``src``."""
    udst, usrc = unsigned(dst), unsigned(src)
    for b in range(unsigned(cot.shape[1])):
        cot[udst, b] += scale * cot[usrc, b]


@njit(**KERNEL)
def _strided_walk_batched(cot, aux, a, o, x, scale, gather):
    """``kernels.cpu._strided_walk`` on (S, B) slots: each index moves a row of B cotangents."""
    ndim = aux[a]
    off = aux[a + 1]
    if ndim == 0:
        if gather:
            _add_slot(cot, x + off, o, 1.0)
        else:
            _add_slot(cot, x, o + off, scale)
        return
    shape0 = a + 2
    stride0 = a + 2 + ndim
    total = 1
    for k in range(ndim):
        total *= aux[shape0 + k]
    if total == 0:
        return
    nb = cot.shape[1]
    inner = aux[shape0 + ndim - 1]
    inner_stride = aux[stride0 + ndim - 1]
    counter = np.zeros(ndim, np.int64)
    i = 0
    while i < total:
        for j in range(inner):
            if gather:
                src = o + i + j
                dst = x + off + j * inner_stride
                for b in range(nb):
                    cot[dst, b] += cot[src, b]
            else:
                src = o + off + j * inner_stride
                dst = x + i + j
                for b in range(nb):
                    cot[dst, b] += scale * cot[src, b]
        i += inner
        off = odometer_step(counter, off, aux, shape0, stride0, ndim)


@njit(**KERNEL)
def _matmul_backward_batched(vals, cot, aux, a, co, x, y, cx, cy, xrg, yrg, addrs, r):
    """aux[a:a+6] = (Bm, M, K, N, x batch stride, y batch stride), as the one-VJP kernel. With B cotangents
    per slot, g of matrix ``bm`` is ``(M, N * B)``: ``gy += x.T @ g`` is one GEMM with B times the columns;
    ``gx[m] += y @ g[m]`` is one GEMM ``(K, N) @ (N, B)`` per row ``m`` of x. Operand values: see
    ``_operand_values`` (row ``r``)."""
    nb = cot.shape[1]
    Bm, M, K_, N, xbs, ybs = matmul_layout(aux, a)
    xv = _operand_values(vals, addrs, r, 0, x, (Bm - 1) * xbs + M * K_)
    yv = _operand_values(vals, addrs, r, 1, y, (Bm - 1) * ybs + K_ * N)
    for bm in range(Bm):
        go = co + bm * M * N
        xb0 = bm * xbs
        yb0 = bm * ybs
        if yrg:
            g = cot[go : go + M * N].reshape((M, N * nb))
            gyb = cy + bm * ybs
            gy = cot[gyb : gyb + K_ * N].reshape((K_, N * nb))
            _gemm_add(gy, xv[xb0 : xb0 + M * K_], g, True)  # gy += x.T @ g
        if xrg:
            gxb = cx + bm * xbs
            for m in range(M):
                gm = cot[go + m * N : go + (m + 1) * N]
                _gemm_add(cot[gxb + m * K_ : gxb + (m + 1) * K_], yv[yb0 : yb0 + K_ * N], gm, False)  # y @ g[m]


@njit(**KERNEL)
def _operand_values(vals, addrs, r, k, off, n):
    """The ``n`` values of operand ``k`` (0: x, 1: y) of row ``r``, at value offset ``off``: in the arena, or in
    the tensor's own array where ``addrs[r, k]`` holds its address (a big tensor imported without its values,
    read by a product the kernel sweeps: ``ad/batched.py``'s ``_big_operands``)."""
    if r < addrs.shape[0] and addrs[r, k] != 0:
        return carray(_pointer(addrs[r, k], vals), n)
    return vals[off : off + n]


@njit(**KERNEL)
def _linear_backward_batched(vals, cot, M, K_, N, co, x, y, cx, cy, xrg, yrg, addrs, r):
    """out (M, N) = x (M, K) @ y.T with y (N, K): ``gx[m] += y.T @ g[m]`` (a GEMM (K, N) @ (N, B) per row),
    ``gy[n, k] += g[m, n] * x[m, k]`` summed over m (B values at a time). Where g of a vector x (M = 1) is the
    identity (``functional.jacobian``'s seeds, at the root: its last layer), ``y.T @ I`` is ``y.T``, added
    without the GEMM (the GEMM's values where the weights are finite: each is one weight times 1.0 plus zeros).
    y's values: see ``_operand_values`` (row ``r``)."""
    nb = cot.shape[1]
    weight = _operand_values(vals, addrs, r, 1, y, N * K_)
    for m in range(M):
        gm = cot[co + m * N : co + (m + 1) * N]
        if xrg:
            if M == 1 and N == nb and _is_identity(gm):
                _add_transposed(cot[cx : cx + K_], weight.reshape((N, K_)))
            else:
                _gemm_add(cot[cx + m * K_ : cx + (m + 1) * K_], weight, gm, True)  # y.T @ g[m]
        if yrg:
            for nn in range(N):
                for k in range(K_):
                    xv = vals[x + m * K_ + k]
                    for b in range(nb):
                        cot[cy + nn * K_ + k, b] += gm[nn, b] * xv


# --- products that accumulate in place ---------------------------------------------------------------------------
#
# ``c += a @ b`` as ``np.dot`` then ``+=`` allocates the product and passes over it a second time (the MLP
# Jacobian's 128x128 layer: 64 KB per GEMM); BLAS's own ``beta = 1`` adds while it writes. numba's np.dot calls
# its helper ``numba_xxgemm`` (scipy's BLAS, column-major); it is called here directly, as an external symbol
# (cacheable, unlike a ctypes pointer), with the arrays' data pointers.

_xxgemm = types.ExternalFunction(
    "numba_xxgemm",
    types.intc(
        types.char,  # kind: 's' or 'd'
        types.char,  # transa
        types.char,  # transb
        types.intp,  # m
        types.intp,  # n
        types.intp,  # k
        types.voidptr,  # alpha
        types.voidptr,  # a
        types.intp,  # lda
        types.voidptr,  # b
        types.intp,  # ldb
        types.voidptr,  # beta
        types.voidptr,  # c
        types.intp,  # ldc
    ),
)


@intrinsic
def _data(typingctx, arr):
    """The data pointer of an array (for ``_xxgemm``)."""

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        return builder.bitcast(ary.data, context.get_value_type(types.voidptr))

    return types.voidptr(arr), codegen


# OpenBLAS runs a GEMM of at most this many multiply-adds on the calling thread, whatever its thread count
# (``interface/gemm.c``: SMP_THRESHOLD_MIN * GEMM_MULTITHREAD_THRESHOLD; ``ad.blas_threads.THREADED_MIN_MACS``)
SERIAL_GEMM_MACS = 65536 * 4


@njit(**KERNEL)
def _gemm_add(c, w, g, transpose):
    """``c += W.T @ g`` (``transpose``: ``w`` holds W of shape (P, R) in C order) or ``c += W @ g`` (W (R, P)),
    for C-contiguous ``c`` (R, Q) and ``g`` (P, Q): BLAS calls with ``beta = 1``, no temporary. In BLAS's
    column-major terms, ``c.T (Q, R) += g.T (Q, P) @ W (P, R)``: ``g`` is read as is, W transposed or not.

    The product is cut into blocks of rows (and of columns, where one row is more) of at most
    ``SERIAL_GEMM_MACS`` multiply-adds, which OpenBLAS runs on the calling thread: no worker to wake, or to
    wait for on a loaded machine, and no thread count to set around the sweep. Each block sums over all of P in
    one call, as the whole product does (the cut is along R and Q only). Measured on the 2-core machine
    (OpenBLAS 0.3.31), the MLP Jacobian's 128x128x64 product: 37 us as four such blocks, 46 us as one call with
    OpenBLAS set to one thread (and 2.6 us more to set it and put it back)."""
    R, Q = c.shape
    P = g.shape[0]
    if R == 0 or Q == 0 or P == 0:
        return
    one = np.ones(1, c.dtype)
    kind = ord("d") if c.itemsize == 8 else ord("s")
    transb = ord("t") if transpose else ord("n")
    ldb = R if transpose else P
    cols = min(Q, max(1, SERIAL_GEMM_MACS // P))  # columns of c per block, then rows per block
    rows = min(R, max(1, SERIAL_GEMM_MACS // (P * cols)))
    cf = c.reshape(-1)
    wf = w.reshape(-1)
    gf = g.reshape(-1)
    for r0 in range(0, R, rows):
        r = min(rows, R - r0)
        wb = wf[r0:] if transpose else wf[r0 * P :]  # W's rows r0.. (W.T's columns: a stride of R)
        for q0 in range(0, Q, cols):
            q = min(cols, Q - q0)
            status = _xxgemm(
                kind, ord("n"), transb, q, r, P, _data(one), _data(gf[q0:]), Q, _data(wb), ldb, _data(one),
                _data(cf[r0 * Q + q0 :]), Q,
            )
            if status != 0:
                raise RuntimeError("BLAS gemm failed in the batched sweep")


@njit(**KERNEL)
def _add_transposed(c, w):
    """``c += w.T`` in 8 x 8 tiles of constant size (``w`` read along its rows, ``c`` written within a tile
    that stays in L1; constant bounds let the compiler unroll the tile: 2.8 us for 128 x 64 against 6.0 with
    32 x 32 tiles of variable bounds), then the edges."""
    K_, N = c.shape
    k8 = K_ - K_ % 8
    n8 = N - N % 8
    for k0 in range(0, k8, 8):
        for n0 in range(0, n8, 8):
            for n in range(n0, n0 + 8):
                for k in range(k0, k0 + 8):
                    c[k, n] += w[n, k]
    for k in range(k8, K_):  # the last rows of c, and its last columns
        for n in range(N):
            c[k, n] += w[n, k]
    for n in range(n8, N):
        for k in range(k8):
            c[k, n] += w[n, k]


@njit(**KERNEL)
def _is_identity(g):
    """Whether the square ``g`` is the identity: per row, one nonzero (a count, which vectorizes, where a test
    per element branched: 0.6 us against 2.7 for 64 x 64), and that one is 1.0 on the diagonal."""
    n = g.shape[0]
    for i in range(n):
        nonzero = 0
        for j in range(n):
            nonzero += g[i, j] != 0.0
        if nonzero != 1 or g[i, i] != 1.0:
            return False
    return True


# --- recycled cotangent blocks ---------------------------------------------------------------------------------
#
# A batched arena as large as the tape (B values per slot) does not fit in the caches (a 2,000-row chain of 16
# elements with B = 64 is 16 MB): clearing it and sweeping it ran at memory speed. But the cotangent of a row's
# output is only needed from its first writer (the highest row that reads it as an operand: its "birth") down to
# the row that produced it (its "death"), so blocks are reused: a chain needs two. ``recycled_bases`` assigns
# them, ``reverse_sweep_batched`` clears a reused block at its new owner's birth row (while it is in cache).


@njit(**KERNEL)
def recycled_bases(rows, aux, starts, sizes, pinned, recyclable_code, bases, nrows):
    """Arena rows for the regions ``starts``/``sizes`` (sizes 0: no cotangent) of a tape's batched arena.

    Regions that may share memory: a row's output region (its producer is the first row with that ``out``; any
    later rows with the same ``out`` are guard rows, ``SAVED_*``) that is not ``pinned`` (seeded before the sweep
    or read after it), whose producer's code is in ``recyclable_code`` (rows the kernel reads a cotangent of only
    while sweeping its producer) and spans the whole output (no region starts inside it). The others keep the
    compact layout in offset order (consecutive regions stay contiguous), written to ``bases``; the shared ones
    follow, assigned greedily from birth to death, in sweep order; a row output that no row reads and nothing
    seeds gets none (its ``sizes`` entry is set to 0). Returns ``(size, fixed, zero_row, zero_base, zero_len)``:
    the arena rows in all, the rows of the fixed part (the shared blocks follow it), and the blocks to clear
    when the sweep reaches ``zero_row`` (descending): every owner's, the first one's too, so that only the fixed
    part is cleared before the sweep.
    """
    k = starts.shape[0]
    death = np.full(k, -1, np.int64)
    birth = np.full(k, -1, np.int64)
    ok = (sizes > 0) & (pinned == 0)
    for r in range(nrows):
        op = rows[r, 0]
        code = op & K.CODE_MASK
        j = np.searchsorted(starts, rows[r, 1])
        if j < k and starts[j] == rows[r, 1]:
            if death[j] < 0:
                death[j] = r
                if recyclable_code[code] == 0 or rows[r, 4] > sizes[j]:
                    ok[j] = False
            elif code != K.SAVED_INPUT and code != K.SAVED_RESULT:
                ok[j] = False
        for operand in (rows[r, 2], rows[r, 3], aux[rows[r, 5] + 3] if code == K.LINEAR_BIAS else -1):
            if operand >= 0:
                j = np.searchsorted(starts, operand)
                if j < k and starts[j] == operand:
                    birth[j] = r
                else:  # an operand inside a region (not expected): share nothing
                    ok[:] = False
    fixed = 0
    for j in range(k):
        if death[j] < 0:
            ok[j] = False
        if not ok[j]:
            bases[j] = fixed
            fixed += sizes[j]
        elif birth[j] < 0:  # no row writes it and it is not seeded (pinned): it needs no block
            ok[j] = False
            sizes[j] = 0
            bases[j] = fixed
    shared = np.flatnonzero(ok)
    m = shared.shape[0]
    by_birth = shared[np.argsort(-birth[shared], kind="mergesort")]
    by_death = shared[np.argsort(-death[shared], kind="mergesort")]
    free_base = np.empty(m, np.int64)
    free_size = np.empty(m, np.int64)
    nfree = 0
    zero_row = np.empty(m, np.int64)
    zero_base = np.empty(m, np.int64)
    zero_len = np.empty(m, np.int64)
    nzero = 0
    top = fixed
    d = 0
    for i in range(m):
        j = by_birth[i]
        r = birth[j]
        while d < m and death[by_death[d]] > r:  # blocks freed by rows swept before row r
            f = by_death[d]
            free_base[nfree] = bases[f]
            free_size[nfree] = sizes[f]
            nfree += 1
            d += 1
        found = -1
        for q in range(nfree - 1, -1, -1):  # the most recently freed first: it is in cache
            if free_size[q] == sizes[j]:
                found = q
                break
        if found < 0:
            bases[j] = top
            top += sizes[j]
        else:
            bases[j] = free_base[found]
            nfree -= 1
            free_base[found] = free_base[nfree]
            free_size[found] = free_size[nfree]
        zero_row[nzero] = r
        zero_base[nzero] = bases[j]
        zero_len[nzero] = sizes[j]
        nzero += 1
    return top, fixed, zero_row[:nzero].copy(), zero_base[:nzero].copy(), zero_len[:nzero].copy()
