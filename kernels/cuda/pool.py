"""Gathers by indices that live on the device (``ad/ops/indexing.gather_indexed``, the GATHER_INDEXED row of the
device sweep), the picks of max pooling (``window_argmax_kernel``) and the source map of max unpooling, so that
pooling ops whose index maps are computed from values never copy them back to the host.

Layout: a gather reads ``x`` (flat, float) as ``planes`` blocks of ``per_in`` elements and writes ``out`` as
``planes`` blocks of ``per_out``: ``out[i] = x[(i // per_out) * per_in + t[i]]`` with ``t`` (int64, one per
output, or one plane's worth shared by every plane) an index within the plane; ``t == -1``: no source (0.0),
``t < -1``: an invalid source (NaN, so that a bad index shows in the values instead of vanishing: the host is
never asked). Every kernel walks its arrays with a grid-stride loop (any launch size is correct;
``ad_glue.launch`` sizes the grid).
"""

import math

from numba import cuda

NO_SOURCE = -1
BAD_SOURCE = -2


@cuda.jit(cache=True)
def gather_indexed_kernel(x, t, out, per_out, per_in, shared):
    """``out[i] = x[(i // per_out) * per_in + t[i]]``; 0.0 where ``t[i] == -1``, NaN where ``t[i] < -1``;
    ``shared``: ``t`` holds one plane's ``per_out`` indices, the same for every plane (``t[i % per_out]``:
    a convolution's columns, whose geometry is the same for every sample)."""
    start = cuda.grid(1)
    for i in range(start, out.shape[0], cuda.gridsize(1)):
        s = t[i % per_out] if shared else t[i]
        if s >= 0:
            out[i] = x[(i // per_out) * per_in + s]
        elif s == NO_SOURCE:
            out[i] = 0.0
        else:
            out[i] = math.nan


@cuda.jit(cache=True)
def window_argmax_kernel(x, taps, t, per_in, per_out, shared):
    """Max pooling's picks: ``t[i]`` = the in-plane index of the first maximum of window ``i % per_out`` of plane
    ``i // per_out`` of ``x`` (planes of ``per_in``), a NaN counting as the maximum (the first NaN), as the CPU's
    ``kernels/conv.window_argmax``. ``taps`` (int64, (windows, K) flat): each window's in-plane tap indices, -1 for
    taps outside the input (never picked: an all -inf window picks its first valid tap); ``shared``: one table
    for every plane (max and adaptive pooling), else ``per_out`` windows per plane (fractional pooling)."""
    k = taps.shape[0] // (per_out if shared else t.shape[0])
    start = cuda.grid(1)
    for i in range(start, t.shape[0], cuda.gridsize(1)):
        plane = i // per_out
        row = (i - plane * per_out if shared else i) * k
        base = plane * per_in
        best = NO_SOURCE
        top = 0.0
        for j in range(k):
            c = taps[row + j]
            if c < 0:
                continue
            v = x[base + c]
            if math.isnan(v):
                best = c
                break
            if best == NO_SOURCE or v > top:
                best = c
                top = v
        t[i] = best


@cuda.jit(cache=True)
def unpool_clear_kernel(source, bad):
    """``source`` to -1 (no input yet) and ``bad`` to 0, in one launch, before ``unpool_sources_kernel``."""
    start = cuda.grid(1)
    for i in range(start, source.shape[0], cuda.gridsize(1)):
        source[i] = NO_SOURCE
    for i in range(start, bad.shape[0], cuda.gridsize(1)):
        bad[i] = 0


@cuda.jit(cache=True)
def unpool_sources_kernel(index, source, bad, per_in, per_out):
    """Max unpooling's winners: input ``j`` (plane ``j // per_in``) writes output ``index[j]`` of its plane
    (``per_out`` elements); where several inputs name one output the last one wins (torch's loop order), by an
    atomic max of ``j``'s position in its plane into ``source`` (-1 before: ``unpool_clear_kernel``). An index
    outside the plane marks the plane in ``bad``."""
    start = cuda.grid(1)
    for j in range(start, index.shape[0], cuda.gridsize(1)):
        plane = j // per_in
        p = index[j]
        if p < 0 or p >= per_out:
            bad[plane] = 1
        else:
            cuda.atomic.max(source, plane * per_out + p, j - plane * per_in)


@cuda.jit(cache=True)
def unpool_targets_kernel(index, source, bad, target, per_in, per_out):
    """The inverse of ``source``: ``target[j]`` = the output that input ``j`` won (-1: a later input took it), so
    that the adjoint of the unpooling gather is a gather too; every output of a ``bad`` plane becomes
    ``BAD_SOURCE`` (NaN)."""
    start = cuda.grid(1)
    for j in range(start, index.shape[0], cuda.gridsize(1)):
        plane = j // per_in
        p = index[j]
        won = p >= 0 and p < per_out and source[plane * per_out + p] == j - plane * per_in
        target[j] = p if won and bad[plane] == 0 else NO_SOURCE
    for i in range(start, source.shape[0], cuda.gridsize(1)):
        if bad[i // per_out] != 0:
            source[i] = BAD_SOURCE


_F8, _I8 = "float64[::1]", "int64[::1]"
PTX_KERNELS = [
    (gather_indexed_kernel.py_func, [f"void({_F8}, {_I8}, {_F8}, int64, int64, boolean)",
                                     f"void(float32[::1], {_I8}, float32[::1], int64, int64, boolean)"]),
    (window_argmax_kernel.py_func, [f"void({_F8}, {_I8}, {_I8}, int64, int64, boolean)",
                                    f"void(float32[::1], {_I8}, {_I8}, int64, int64, boolean)"]),
    (unpool_clear_kernel.py_func, [f"void({_I8}, uint8[::1])"]),
    (unpool_sources_kernel.py_func, [f"void({_I8}, {_I8}, uint8[::1], int64, int64)"]),
    (unpool_targets_kernel.py_func, [f"void({_I8}, {_I8}, uint8[::1], {_I8}, int64, int64)"]),
]
