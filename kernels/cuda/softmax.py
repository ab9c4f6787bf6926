"""log_softmax and cross-entropy on the GPU: one block per line (a line is the ``size`` elements
``i * size * inner + j * inner + k``, ``j = 0..size-1``, of an ``(outer, size, inner)`` layout), shared-memory
reductions for its max and its sums, as ``kernels/cpu.py``'s loops (a line whose max is not finite is shifted by
0, the CPU's convention)."""

import math

from numba import cuda, float64

from ..pointwise import log  # numpy's log at 0 (-inf), also in the simulator
from . import launch as L
from .device import maximum_value

BLOCK = L.BLOCK


@cuda.jit(device=True)
def _block_reduce(shared, v, is_max):
    """The sum (or NaN-propagating max) of ``v`` over the block's threads, returned to every thread."""
    tid = cuda.threadIdx.x
    shared[tid] = v
    cuda.syncthreads()
    s = cuda.blockDim.x // 2
    while s > 0:
        if tid < s:
            if is_max:
                shared[tid] = maximum_value(shared[tid], shared[tid + s])
            else:
                shared[tid] = shared[tid] + shared[tid + s]
        cuda.syncthreads()
        s //= 2
    r = shared[0]
    cuda.syncthreads()  # every thread has read shared[0] before the next reduction writes it
    return r


@cuda.jit(device=True)
def _line_max(x, base, size, inner, shared):
    m = -math.inf
    for j in range(cuda.threadIdx.x, size, cuda.blockDim.x):
        m = maximum_value(m, x[base + j * inner])
    m = _block_reduce(shared, m, True)
    if not math.isfinite(m):
        m = 0.0
    return m


@cuda.jit(device=True)
def _line_sum_exp(x, base, size, inner, m, shared):
    s = 0.0
    for j in range(cuda.threadIdx.x, size, cuda.blockDim.x):
        s += math.exp(x[base + j * inner] - m)
    return _block_reduce(shared, s, False)


def log_softmax_forward_kernel(x, out, outer, size, inner):
    shared = cuda.shared.array(BLOCK, float64)
    for line in range(cuda.blockIdx.x, outer * inner, cuda.gridDim.x):
        i = line // inner
        base = i * size * inner + (line - i * inner)
        m = _line_max(x, base, size, inner, shared)
        lse = log(_line_sum_exp(x, base, size, inner, m, shared))
        for j in range(cuda.threadIdx.x, size, cuda.blockDim.x):
            e = base + j * inner
            out[e] = (x[e] - m) - lse


def log_softmax_backward_kernel(out, g, gx, outer, size, inner, accumulate):
    shared = cuda.shared.array(BLOCK, float64)
    for line in range(cuda.blockIdx.x, outer * inner, cuda.gridDim.x):
        i = line // inner
        base = i * size * inner + (line - i * inner)
        s = 0.0
        for j in range(cuda.threadIdx.x, size, cuda.blockDim.x):
            s += g[base + j * inner]
        total = _block_reduce(shared, s, False)
        for j in range(cuda.threadIdx.x, size, cuda.blockDim.x):
            e = base + j * inner
            d = g[e] - math.exp(out[e]) * total
            if accumulate:
                gx[e] += d
            else:
                gx[e] = d


def cross_entropy_rows_kernel(x, target, loss, C):
    """``loss[i] = logsumexp(x[i]) - x[i, target[i]]`` for each row of ``x`` (M, C)."""
    shared = cuda.shared.array(BLOCK, float64)
    for i in range(cuda.blockIdx.x, loss.shape[0], cuda.gridDim.x):
        base = i * C
        m = _line_max(x, base, C, 1, shared)
        s = _line_sum_exp(x, base, C, 1, m, shared)
        if cuda.threadIdx.x == 0:
            loss[i] = log(s) - (x[base + target[i]] - m)


def cross_entropy_backward_kernel(x, target, g, gx, C, accumulate):
    """``gx[i] (+)= g[0] / M * (softmax(x[i]) - onehot(target[i]))``."""
    shared = cuda.shared.array(BLOCK, float64)
    M = target.shape[0]
    for i in range(cuda.blockIdx.x, M, cuda.gridDim.x):
        base = i * C
        m = _line_max(x, base, C, 1, shared)
        s = _line_sum_exp(x, base, C, 1, m, shared)
        scale = g[0] / M
        for j in range(cuda.threadIdx.x, C, cuda.blockDim.x):
            d = scale * (math.exp(x[base + j] - m) / s)
            if j == target[i]:
                d -= scale
            if accumulate:
                gx[base + j] += d
            else:
                gx[base + j] = d


_FLOATS = ("float32", "float64")
PTX_KERNELS = [
    (log_softmax_forward_kernel, [f"void({t}[::1], {t}[::1], int64, int64, int64)" for t in _FLOATS]),
    (
        log_softmax_backward_kernel,
        [f"void({t}[::1], {t}[::1], {t}[::1], int64, int64, int64, boolean)" for t in _FLOATS],
    ),
    (cross_entropy_rows_kernel, [f"void({t}[::1], int64[::1], {t}[::1], int64)" for t in _FLOATS]),
    (
        cross_entropy_backward_kernel,
        [f"void({t}[::1], int64[::1], {t}[::1], {t}[::1], int64, boolean)" for t in _FLOATS],
    ),
]

_log_softmax_forward = cuda.jit(cache=True)(log_softmax_forward_kernel)
_log_softmax_backward = cuda.jit(cache=True)(log_softmax_backward_kernel)
_cross_entropy_rows = cuda.jit(cache=True)(cross_entropy_rows_kernel)
_cross_entropy_backward = cuda.jit(cache=True)(cross_entropy_backward_kernel)


def _line_grid(lines, size):
    threads = L.pow2_at_least(size, 16 if L.SIMULATOR else BLOCK)
    return max(1, min(lines, 4 if L.SIMULATOR else L.MAX_BLOCKS)), threads


def _layout(shape, dim):
    ndim = len(shape)
    if not -max(ndim, 1) <= dim < max(ndim, 1):
        raise ValueError(f"dim {dim} out of range for an array of {ndim} dims")
    if ndim == 0:
        return 1, 1, 1
    d = dim % ndim
    outer = 1
    for s in shape[:d]:
        outer *= s
    inner = 1
    for s in shape[d + 1 :]:
        inner *= s
    return outer, shape[d], inner


def _floats(*arrays):
    dt = arrays[0].dtype
    if dt.kind != "f" or any(a.dtype != dt for a in arrays):
        raise TypeError(
            f"expected float32 or float64 arrays of one dtype, got {', '.join(str(a.dtype) for a in arrays)}"
        )


def log_softmax_forward(x, out, dim):
    """``out = x - logsumexp(x, dim)``.

    Args: ``x``, ``out``: C-contiguous float device arrays of one shape and dtype; ``dim``: an int (negative
    counts from the end).
    """
    x, out = L.device_array(x), L.device_array(out)
    _floats(x, out)
    if tuple(x.shape) != tuple(out.shape):
        raise ValueError(f"x has shape {tuple(x.shape)} and out {tuple(out.shape)}")
    outer, size, inner = _layout(tuple(x.shape), dim)
    if x.size:
        _log_softmax_forward[_line_grid(outer * inner, size)](L.flat(x), L.flat(out), outer, size, inner)


def log_softmax_backward(out, g, gx, dim, accumulate=True):
    """``gx (+)= g - exp(out) * sum(g, dim)`` (``out`` the forward's result, ``g`` its cotangent).

    Args: ``out``, ``g``, ``gx``: C-contiguous float device arrays of one shape and dtype; ``dim`` as forward.
    """
    out, g, gx = L.device_array(out), L.device_array(g), L.device_array(gx)
    _floats(out, g, gx)
    if not tuple(out.shape) == tuple(g.shape) == tuple(gx.shape):
        raise ValueError(f"out, g, gx differ in shape: {tuple(out.shape)}, {tuple(g.shape)}, {tuple(gx.shape)}")
    outer, size, inner = _layout(tuple(out.shape), dim)
    if out.size:
        grid = _line_grid(outer * inner, size)
        _log_softmax_backward[grid](L.flat(out), L.flat(g), L.flat(gx), outer, size, inner, bool(accumulate))


def _targets(x, target):
    x, target = L.device_array(x), L.device_array(target)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"cross_entropy takes logits (M, C) with M > 0, got shape {tuple(x.shape)}")
    if target.ndim != 1 or target.shape[0] != x.shape[0] or target.dtype.kind != "i" or target.dtype.itemsize != 8:
        raise ValueError(f"target must be int64 of shape ({x.shape[0]},), got {target.dtype} {tuple(target.shape)}")
    return x, target


def cross_entropy_forward(x, target, out):
    """``out[0] = mean_i(logsumexp(x[i]) - x[i, target[i]])`` (torch's cross_entropy with class targets and mean
    reduction); the targets must lie in ``[0, C)`` (checked by the caller, as ``cpu.class_targets_ok``).

    Args: ``x``: C-contiguous (M, C) float device array, M > 0; ``target``: int64 (M,); ``out``: 1 element of
    ``x``'s dtype.
    """
    from .reduce import reduce

    x, target = _targets(x, target)
    out = L.device_array(out)
    _floats(x, out)
    L.check_size("out", out, 1)
    M, C = x.shape
    loss = cuda.device_array(M, dtype=x.dtype)
    _cross_entropy_rows[_line_grid(M, C)](L.flat(x), target, loss, C)
    reduce("mean", loss, L.flat(out))


def cross_entropy_backward(x, target, g, gx, accumulate=True):
    """``gx (+)= g[0] / M * (softmax(x) - onehot(target))``, the softmax recomputed from the logits ``x``.

    Args: ``x``, ``gx``: C-contiguous (M, C); ``target``: int64 (M,); ``g``: 1 element (the loss's cotangent).
    """
    x, target = _targets(x, target)
    g, gx = L.device_array(g), L.device_array(gx)
    _floats(x, g, gx)
    L.check_size("g", g, 1)
    L.check_size("gx", gx, x.size)
    M, C = x.shape
    _cross_entropy_backward[_line_grid(M, C)](L.flat(x), target, L.flat(g), L.flat(gx), C, bool(accumulate))
