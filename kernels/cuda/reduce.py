"""Block reductions on the GPU: sum / mean / amax / amin / prod over any set of dims, the broadcast-undoing
backward of binary ops, and the owner-computes adjoint of strided views with repeated elements.

One kernel, ``group_reduce_kernel``, does all of them. Its work is ``nout`` groups of ``nred`` members: group
``j`` enumerates the kept dims, member ``r`` the reduced dims, and a member's value is read at offsets that are
linear in both (the group ``meta``)::

    meta = [nk, nr, kshape[nk], ka[nk], kb[nk], kc[nk], kdst[nk], rshape[nr], ra[nr], rb[nr], rc[nr]]

offset ``a`` of member ``(j, r)`` is ``sum_d j_d * ka[d] + sum_d r_d * ra[d]`` (``b``, ``c`` alike), and the
group's result goes to ``dst[sum_d j_d * kdst[d]]``. A member's value (``mode``):

- ``PLAIN``: ``x[a]`` (reductions, scatter-add of a strided view);
- ``DX``: ``g[a] * dx(x[c], y[b], out[a])`` and ``DY``: ``g[a] * dy(x[b], y[c], out[a])`` (binary backward:
  ``a`` walks the output, ``c`` the operand being differentiated, ``b`` the other one).

A block reduces one group (or one chunk of one): its threads stride over the members, then combine their
partials in shared memory (float64, whatever the dtype) in a tree. A group of one member needs no block: with
``nred == 1`` each thread finishes one group. When there are fewer groups than blocks that fill the GPU
(``FULL_GRID``) and many members, the members are split in ``nchunks`` chunks: a first launch writes each
chunk's partial, a second reduces the partials (two passes, no atomics, deterministic).

Known cost: a block reads its group's members at the group's stride, so reducing over a leading dim (column
sums of a row-major matrix) reads uncoalesced; fine for bias gradients, a transposed layout would be faster.

``reduce_backward`` is the adjoint of the reductions (one elementwise pass, after group statistics for amax,
amin and prod).
"""

import math

import numpy as np
from numba import cuda, float64

from . import launch as L
from .device import (
    binary_partial_x,
    binary_partial_y,
    broadcast_offset,
    maximum_value,
    minimum_value,
    selects,
    times,
)

PLAIN, DX, DY = 0, 1, 2
SUM, PROD, MAX, MIN = 0, 1, 2, 3
OPS = {"sum": SUM, "mean": SUM, "prod": PROD, "amax": MAX, "amin": MIN}
BLOCK = L.BLOCK
COLUMNS = 8 if L.SIMULATOR else 32  # group_reduce_columns_kernel: groups per block ...
ROWS = 4 if L.SIMULATOR else 8  # ... and lanes over each group's members
COLUMN_MIN_GROUPS = 2 if L.SIMULATOR else 2048  # fewer groups than this keep a block each
# Below this many groups a big reduction is split in chunks, up to this many blocks in all: enough to fill an
# H200 (132 SMs, 16 blocks of BLOCK threads each). Each thread has one load in flight, so the bandwidth a launch
# gets grows with its threads: 264 blocks read a 64M-element sum at 144 GB/s on an H200 (6% of a copy's).
FULL_GRID = 2112


@cuda.jit(device=True)
def _kept_offset(j, meta, which):
    nk = meta[0]
    strides = 2 + nk * (1 + which)
    off = 0
    for d in range(nk - 1, -1, -1):
        extent = meta[2 + d]
        off += (j % extent) * meta[strides + d]
        j //= extent
    return off


@cuda.jit(device=True)
def _reduced_offset(r, meta, which):
    nk = meta[0]
    nr = meta[1]
    shape0 = 2 + 5 * nk
    strides = shape0 + nr * (1 + which)
    if nr == 1:  # (merged reduced dims: r < extent, no division; a whole-tensor sum is this case)
        return r * meta[strides]
    off = 0
    for d in range(nr - 1, -1, -1):
        extent = meta[shape0 + d]
        off += (r % extent) * meta[strides + d]
        r //= extent
    return off


@cuda.jit(device=True)
def _identity(op):
    if op == PROD:
        return 1.0
    if op == MAX:
        return -math.inf
    if op == MIN:
        return math.inf
    return 0.0


@cuda.jit(device=True)
def _combine(op, acc, v):
    if op == PROD:
        return acc * v
    if op == MAX:
        return maximum_value(acc, v)
    if op == MIN:
        return minimum_value(acc, v)
    return acc + v


@cuda.jit(device=True)
def _member(mode, code, x, y, g, out, meta, ka, kb, kc, r):
    a = ka + _reduced_offset(r, meta, 0)
    if mode == PLAIN:
        return x[a]
    b = kb + _reduced_offset(r, meta, 1)
    c = kc + _reduced_offset(r, meta, 2)
    if mode == DX:
        return times(code, g[a], binary_partial_x(code, x[c], y[b], out[a]))
    return times(code, g[a], binary_partial_y(code, x[b], y[c], out[a]))


@cuda.jit(device=True)
def _store(dst, d, v, scale, accumulate):
    if accumulate:
        dst[d] += scale * v
    else:
        dst[d] = scale * v


def group_reduce_kernel(mode, op, code, x, y, g, out, meta, dst, nout, nred, nchunks, scale, accumulate):
    """See the module docstring; with ``nchunks > 1`` the partial of chunk ``c`` of group ``j`` goes to
    ``dst[j * nchunks + c]`` instead (unscaled)."""
    if nred == 1:  # nothing to combine: a thread per group
        for j in range(cuda.grid(1), nout, cuda.gridsize(1)):
            v = _member(
                mode,
                code,
                x,
                y,
                g,
                out,
                meta,
                _kept_offset(j, meta, 0),
                _kept_offset(j, meta, 1),
                _kept_offset(j, meta, 2),
                0,
            )
            _store(dst, _kept_offset(j, meta, 3), v, scale, accumulate)
        return
    partial = cuda.shared.array(BLOCK, float64)
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    chunk = (nred + nchunks - 1) // nchunks
    for p in range(cuda.blockIdx.x, nout * nchunks, cuda.gridDim.x):
        j = p // nchunks
        c = p - j * nchunks
        ka = _kept_offset(j, meta, 0)
        kb = _kept_offset(j, meta, 1)
        kc = _kept_offset(j, meta, 2)
        acc = _identity(op)
        for r in range(c * chunk + tid, min(nred, (c + 1) * chunk), nt):
            acc = _combine(op, acc, _member(mode, code, x, y, g, out, meta, ka, kb, kc, r))
        partial[tid] = acc
        cuda.syncthreads()
        s = nt // 2
        while s > 0:
            if tid < s:
                partial[tid] = _combine(op, partial[tid], partial[tid + s])
            cuda.syncthreads()
            s //= 2
        if tid == 0:
            if nchunks == 1:
                _store(dst, _kept_offset(j, meta, 3), partial[0], scale, accumulate)
            else:
                dst[p] = partial[0]
        cuda.syncthreads()  # the shared array is reused by the block's next group


def group_reduce_columns_kernel(mode, op, code, x, y, g, out, meta, dst, nout, nred, nchunks, scale, accumulate):
    """``group_reduce_kernel`` for groups whose neighbours lie at neighbouring addresses (reductions over
    leading dims, bias gradients): a block takes COLUMNS consecutive groups (threadIdx.x) and ROWS lanes over
    their members (threadIdx.y), so that the block's reads of one member row are coalesced. Chunks as
    ``group_reduce_kernel``'s."""
    partial = cuda.shared.array((ROWS, COLUMNS), float64)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    ntiles = (nout + COLUMNS - 1) // COLUMNS
    chunk = (nred + nchunks - 1) // nchunks
    for p in range(cuda.blockIdx.x, ntiles * nchunks, cuda.gridDim.x):
        tile = p // nchunks
        c = p - tile * nchunks
        j = tile * COLUMNS + tx
        acc = _identity(op)
        if j < nout:
            ka = _kept_offset(j, meta, 0)
            kb = _kept_offset(j, meta, 1)
            kc = _kept_offset(j, meta, 2)
            for r in range(c * chunk + ty, min(nred, (c + 1) * chunk), ROWS):
                acc = _combine(op, acc, _member(mode, code, x, y, g, out, meta, ka, kb, kc, r))
        partial[ty, tx] = acc
        cuda.syncthreads()
        s = ROWS // 2
        while s > 0:
            if ty < s:
                partial[ty, tx] = _combine(op, partial[ty, tx], partial[ty + s, tx])
            cuda.syncthreads()
            s //= 2
        if ty == 0 and j < nout:
            if nchunks == 1:
                _store(dst, _kept_offset(j, meta, 3), partial[0, tx], scale, accumulate)
            else:
                dst[j * nchunks + c] = partial[0, tx]
        cuda.syncthreads()


def reduce_backward_kernel(op, x, out, g, count, nonzero, gx, meta, scale, accumulate):
    """``gx[i] (+)= g[j] * d out[j] / d x[i]`` for x element ``i`` of group ``j`` (the broadcast meta's operand 0):
    sum: ``scale``; amax / amin: ``1 / count[j]`` where ``x[i]`` is ``out[j]`` (``selects``: ties share, as
    torch); prod: ``nonzero[j] / x[i]`` without zeros in the group, ``nonzero[j]`` at its only zero (``count[j]`` zeros,
    ``nonzero[j]`` the product of the other members: exact with zeros present, as kernels/cpu.py)."""
    for i in range(cuda.grid(1), gx.shape[0], cuda.gridsize(1)):
        j = broadcast_offset(i, meta, 0)
        v = x[i]
        d = 0.0
        if op == SUM:
            d = g[j] * scale
        elif op == PROD:
            if count[j] == 0:
                d = g[j] * (nonzero[j] / v)
            elif count[j] == 1 and v == 0.0:
                d = g[j] * nonzero[j]
        elif selects(v, out[j]):
            d = g[j] / count[j]
        if accumulate:
            gx[i] += d
        else:
            gx[i] = d


PTX_KERNELS = [
    (
        group_reduce_kernel,
        [
            f"void(int64, int64, int64, {t}[::1], {t}[::1], {t}[::1], {t}[::1], int64[::1], {t}[::1], int64, int64, "
            "int64, float64, boolean)"
            for t in ("float32", "float64")
        ],
    ),
    (
        group_reduce_columns_kernel,
        [
            f"void(int64, int64, int64, {t}[::1], {t}[::1], {t}[::1], {t}[::1], int64[::1], {t}[::1], int64, int64, "
            "int64, float64, boolean)"
            for t in ("float32", "float64")
        ],
    ),
    (
        reduce_backward_kernel,
        [
            f"void(int64, {t}[::1], {t}[::1], {t}[::1], {t}[::1], {t}[::1], {t}[::1], int64[::1], float64, boolean)"
            for t in ("float32", "float64")
        ],
    ),
]

_group_reduce = cuda.jit(cache=True)(group_reduce_kernel)
_group_reduce_columns = cuda.jit(cache=True)(group_reduce_columns_kernel)
_reduce_backward = cuda.jit(cache=True)(reduce_backward_kernel)


def _merge(kshape, kstrides, rshape, rstrides):
    """Drop dims of extent 1 and merge neighbours that are contiguous in every stride set (fewer divisions)."""

    def merged(shape, strides):
        dims = [d for d in range(len(shape)) if shape[d] != 1]
        out_shape, out_strides = [], [[] for _ in strides]
        for d in dims:
            if out_shape and all(st[-1] == s[d] * shape[d] for st, s in zip(out_strides, strides)):
                out_shape[-1] *= shape[d]
                for st, s in zip(out_strides, strides):
                    st[-1] = s[d]
            else:
                out_shape.append(shape[d])
                for st, s in zip(out_strides, strides):
                    st.append(s[d])
        return out_shape, out_strides

    kshape, kstrides = merged(kshape, kstrides)
    rshape, rstrides = merged(rshape, rstrides)
    return kshape, kstrides, rshape, rstrides


def group_meta(kshape, kstrides, rshape, rstrides):
    """The group meta (module docstring) of kept dims ``kshape`` with the four stride lists ``kstrides`` (a, b,
    c, dst) and reduced dims ``rshape`` with three (a, b, c)."""
    kshape, kstrides, rshape, rstrides = _merge(kshape, kstrides, rshape, rstrides)
    meta = [len(kshape), len(rshape), *kshape]
    for st in kstrides:
        meta += st
    meta += rshape
    for st in rstrides:
        meta += st
    return L.to_meta(meta)


def _chunks(nwork, nred, chunks):
    """How many chunks to split each group's ``nred`` members in, for ``nwork`` blocks of work otherwise."""
    if chunks is not None:
        return max(1, min(int(chunks), nred))
    if L.SIMULATOR or nwork >= FULL_GRID or nred <= 8 * BLOCK:
        return 1
    return max(1, min(math.ceil(nred / (4 * BLOCK)), FULL_GRID // nwork))


def run_groups(
    mode, op, code, arrays, kshape, kstrides, rshape, rstrides, dst, scale=1.0, accumulate=False, chunks=None
):
    """Launch the group reduction (module docstring): ``arrays`` = (x, y, g, out) flat device arrays (unused
    ones may repeat x), ``dst`` a flat device array; one launch, or two when the members are split in chunks."""
    nout = int(np.prod(kshape, dtype=np.int64))
    nred = int(np.prod(rshape, dtype=np.int64))
    if nout == 0:
        return
    meta = group_meta(kshape, kstrides, rshape, rstrides)
    if nred == 1:
        _group_reduce[L.flat_grid(nout)](mode, op, code, *arrays, meta, dst, nout, 1, 1, float(scale), bool(accumulate))
        return
    merged = _merge(kshape, kstrides, rshape, rstrides)
    columns = nout >= COLUMN_MIN_GROUPS and merged[1][0][-1] == 1 and 1 not in merged[3][0]
    nwork = math.ceil(nout / COLUMNS) if columns else nout
    nchunks = _chunks(nwork, nred, chunks)
    target = cuda.device_array(nout * nchunks, dtype=dst.dtype) if nchunks > 1 else dst
    blocks = max(1, min(nwork * nchunks, L.MAX_BLOCKS if not L.SIMULATOR else 4))
    if columns:
        _group_reduce_columns[blocks, (COLUMNS, ROWS)](
            mode, op, code, *arrays, meta, target, nout, nred, nchunks, float(scale), bool(accumulate)
        )
    else:
        threads = L.pow2_at_least(math.ceil(nred / nchunks), 16 if L.SIMULATOR else BLOCK)
        _group_reduce[blocks, threads](
            mode, op, code, *arrays, meta, target, nout, nred, nchunks, float(scale), bool(accumulate)
        )
    if nchunks == 1:
        return
    # second pass: group j's partials are target[j * nchunks: (j + 1) * nchunks], stored to dst as before
    kpart = [s * nchunks for s in L.contiguous_strides(kshape)]
    zeros = [0] * len(kshape)
    meta2 = group_meta(kshape, [kpart, zeros, zeros, kstrides[3]], [nchunks], [[1], [0], [0]])
    threads2 = L.pow2_at_least(nchunks, 16 if L.SIMULATOR else BLOCK)
    _group_reduce[max(1, min(nout, L.MAX_BLOCKS)), threads2](
        PLAIN, op, 0, target, target, target, target, meta2, dst, nout, nchunks, 1, float(scale), bool(accumulate)
    )


def _reduced_dims(shape, dims):
    """Sorted non-negative reduced dims of an array of ``shape`` (``dims``: int, iterable, or None for all)."""
    ndim = len(shape)
    if dims is None:
        dims = range(ndim)
    elif isinstance(dims, int):
        dims = (dims,)
    rdims = set()
    for d in dims:
        if not -max(ndim, 1) <= d < max(ndim, 1):
            raise ValueError(f"dim {d} out of range for an array of {ndim} dims")
        rdims.add(d % max(ndim, 1))
    return sorted(d for d in rdims if d < ndim)


def reduce(op, x, out, dims=None, accumulate=False, chunks=None):
    """``out (+)= op(x)`` over ``dims``: ``op`` is ``"sum"``, ``"mean"``, ``"prod"``, ``"amax"`` or ``"amin"``.

    Args: ``x``: a C-contiguous float device array; ``out``: a C-contiguous device array of ``x``'s dtype with
    one element per index of the kept dims, in their order (any shape: keepdim is the caller's); ``dims``: an
    int or iterable of ints (negative counts from the end), None for all; ``accumulate``: add into ``out``
    (sum and mean only); ``chunks``: split each group's members in this many chunks (two passes; default:
    chosen from the sizes).
    Raises: ValueError for an unknown op or a bad dim or size, RuntimeError for amax / amin over an empty dim.
    """
    if op not in OPS:
        raise ValueError(f"unknown reduction {op!r}; expected one of {', '.join(OPS)}")
    x, out = L.device_array(x), L.device_array(out)
    if x.dtype != out.dtype or x.dtype.kind != "f":
        raise TypeError(f"reduce takes float32 or float64 arrays of one dtype, got {x.dtype} and {out.dtype}")
    shape = tuple(x.shape)
    ndim = len(shape)
    rdims = _reduced_dims(shape, dims)
    kdims = [d for d in range(ndim) if d not in rdims]
    strides = L.contiguous_strides(shape)
    kshape = [shape[d] for d in kdims]
    rshape = [shape[d] for d in rdims]
    nred = int(np.prod(rshape, dtype=np.int64))
    L.check_size("out", out, int(np.prod(kshape, dtype=np.int64)))
    if nred == 0 and op in ("amax", "amin"):
        raise RuntimeError(f"{op}(): Expected reduction dim to have non-zero size.")
    if accumulate and op not in ("sum", "mean"):
        raise ValueError(f"accumulate is for sum and mean, not {op}")
    scale = 1.0 / nred if op == "mean" and nred else (math.nan if op == "mean" else 1.0)
    zeros = [0] * len(kshape)
    kstrides = [[strides[d] for d in kdims], zeros, zeros, L.contiguous_strides(kshape)]
    rstrides = [[strides[d] for d in rdims], [0] * len(rdims), [0] * len(rdims)]
    fx, fo = L.flat(x), L.flat(out)
    run_groups(PLAIN, OPS[op], 0, (fx, fx, fx, fx), kshape, kstrides, rshape, rstrides, fo, scale, accumulate, chunks)


def broadcast_backward(code, which, x, y, out, g, grad, accumulate=True, chunks=None):
    """``grad (+)= sum over the broadcast dims of g * d/d(operand)`` for binary opcode ``code``: the operand is
    ``x`` (``which`` 0) or ``y`` (1); shapes as ``elementwise.binary_backward`` (its broadcasting path)."""
    shape = tuple(out.shape)
    own, other = (x, y) if which == 0 else (y, x)
    own_b = L.broadcast_strides(tuple(own.shape), shape)
    other_b = L.broadcast_strides(tuple(other.shape), shape)
    lead = len(shape) - own.ndim
    rdims = [d for d in range(len(shape)) if shape[d] != 1 and (d < lead or own.shape[d - lead] == 1)]
    kdims = [d for d in range(len(shape)) if d not in rdims]
    outs = L.contiguous_strides(shape)
    kstrides = [[s[d] for d in kdims] for s in (outs, other_b, own_b, own_b)]
    rstrides = [[s[d] for d in rdims] for s in (outs, other_b, own_b)]
    arrays = tuple(L.flat(a) for a in (x, y, g, out))
    run_groups(
        DX if which == 0 else DY,
        SUM,
        code,
        arrays,
        [shape[d] for d in kdims],
        kstrides,
        [shape[d] for d in rdims],
        rstrides,
        L.flat(grad),
        1.0,
        accumulate,
        chunks,
    )


def reduce_backward(op, x, out, g, gx, dims=None, accumulate=True):
    """``gx (+)= g * d op(x) / dx`` for ``out = op(x)`` over ``dims`` (as ``reduce``): sum and mean spread ``g``,
    amax / amin share it evenly between the members equal to the result (as torch), prod gives each member the
    product of the others (exact with zeros present).

    Args: ``x``, ``gx``: C-contiguous float device arrays of one shape; ``out``, ``g``: the result and its
    cotangent, one element per index of the kept dims (any shape); ``dims`` as ``reduce``.
    """
    from .elementwise import cast, compare, fill, where

    if op not in OPS:
        raise ValueError(f"unknown reduction {op!r}; expected one of {', '.join(OPS)}")
    x, out, g, gx = (L.device_array(a) for a in (x, out, g, gx))
    if not x.dtype == out.dtype == g.dtype == gx.dtype or x.dtype.kind != "f":
        raise TypeError("reduce_backward takes float32 or float64 arrays of one dtype")
    shape = tuple(x.shape)
    if tuple(gx.shape) != shape:
        raise ValueError(f"gx has shape {tuple(gx.shape)}, expected {shape}")
    rdims = _reduced_dims(shape, dims)
    kept = tuple(1 if d in rdims else shape[d] for d in range(len(shape)))  # keepdim shape of out and g
    nout = int(np.prod(kept, dtype=np.int64))
    L.check_size("out", out, nout)
    L.check_size("g", g, nout)
    if x.size == 0:
        return
    nred = x.size // max(nout, 1)
    code = OPS[op]
    fo, fg = L.flat(out).reshape(kept), L.flat(g).reshape(kept)
    count = nonzero = fo  # (placeholders for sum and mean)
    if op in ("amax", "amin", "prod"):
        mask = cuda.device_array(shape, dtype=np.bool_)
        members = cuda.device_array(shape, dtype=x.dtype)
        count = cuda.device_array(kept, dtype=x.dtype)
        if op == "prod":
            zero = cuda.device_array(1, dtype=x.dtype)
            fill(zero, 0.0)
            compare("eq", x, zero, mask)  # the zeros of each group ...
            cast(mask, members)
            reduce("sum", members, count, rdims)  # ... counted
            one = cuda.device_array(1, dtype=x.dtype)
            fill(one, 1.0)
            where(mask, one, x, members)  # and the product of the others
            nonzero = cuda.device_array(kept, dtype=x.dtype)
            reduce("prod", members, nonzero, rdims)
        else:
            compare("selects", x, fo, mask)  # members equal to the result (NaN: the NaNs), counted
            cast(mask, members)
            reduce("sum", members, count, rdims)
    scale = 1.0 / nred if op == "mean" else 1.0
    meta = L.broadcast_meta(shape, [kept])
    _reduce_backward[L.flat_grid(x.size)](
        code,
        L.flat(x),
        L.flat(fo),
        L.flat(fg),
        L.flat(count),
        L.flat(nonzero),
        L.flat(gx),
        meta,
        scale,
        bool(accumulate),
    )
