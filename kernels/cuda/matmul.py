"""Batched matmul and linear on the GPU: cuBLAS through CuPy when CuPy imports and a real GPU is present (CuPy
arrays are zero-copy views of numba's device arrays through ``__cuda_array_interface__``); otherwise a tiled
shared-memory ``@cuda.jit`` kernel (what the simulator runs).

Layout of the tiled kernel's ``meta``: ``[B, M, K, N, sxb, sxm, sxk, syb, syk, syn, nsum]``: ``x`` element
``(b, m, k)`` is at ``b * sxb + m * sxm + k * sxk`` (a transpose swaps ``sxm`` / ``sxk``, a broadcast batch has
``sxb = 0``), ``y`` alike; ``out`` is C-contiguous ``(B / nsum, M, N)``: its batch ``o`` sums batches
``o * nsum .. o * nsum + nsum - 1`` (``nsum = B`` for the gradient of an operand broadcast over the batch).
"""

import functools

from numba import cuda, float64

from .. import opcodes as K
from . import launch as L

TILE = 8 if L.SIMULATOR else 16  # TILE x TILE threads per block, each computes one element of out


def matmul_kernel(x, y, out, meta, alpha, accumulate):
    xs = cuda.shared.array((TILE, TILE), float64)
    ys = cuda.shared.array((TILE, TILE), float64)
    M, K_, N = meta[1], meta[2], meta[3]
    nsum = meta[10]
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    col = cuda.blockIdx.x * TILE + tx
    row = cuda.blockIdx.y * TILE + ty
    ob = cuda.blockIdx.z
    acc = 0.0
    for t in range(nsum):
        b = ob * nsum + t
        xb = b * meta[4]
        yb = b * meta[7]
        for k0 in range(0, K_, TILE):
            kx = k0 + tx
            ky = k0 + ty
            xs[ty, tx] = x[xb + row * meta[5] + kx * meta[6]] if row < M and kx < K_ else 0.0
            ys[ty, tx] = y[yb + ky * meta[8] + col * meta[9]] if ky < K_ and col < N else 0.0
            cuda.syncthreads()
            for kk in range(TILE):
                acc += xs[ty, kk] * ys[kk, tx]
            cuda.syncthreads()
    if row < M and col < N:
        o = (ob * M + row) * N + col
        if accumulate:
            out[o] += alpha * acc
        else:
            out[o] = alpha * acc


PTX_KERNELS = [
    (
        matmul_kernel,
        [f"void({t}[::1], {t}[::1], {t}[::1], int64[::1], float64, boolean)" for t in ("float32", "float64")],
    )
]

_matmul = cuda.jit(cache=True)(matmul_kernel)


@functools.cache
def cupy_module():
    """CuPy when it imports and a real GPU is there (not the simulator), else None."""
    if L.SIMULATOR:
        return None
    try:
        import cupy
    except Exception:  # absent, or built for another CUDA: the tiled kernel serves
        return None
    return cupy


def _batched(a, transpose, what):
    a = L.device_array(a)
    if a.ndim == 2:
        rows, cols, batch = a.shape[0], a.shape[1], 1
    elif a.ndim == 3:
        batch, rows, cols = a.shape
    else:
        raise ValueError(f"{what} must be 2-D or 3-D (batch, rows, cols), got shape {tuple(a.shape)}")
    if a.size and not a.is_c_contiguous():
        raise ValueError(f"{what} must be C-contiguous (pass transposes as flags)")
    return a, batch, (cols, rows) if transpose else (rows, cols)


def matmul(x, y, out, transpose_x=False, transpose_y=False, accumulate=False, alpha=1.0, use_cublas=None):
    """``out (+)= alpha * op(x) @ op(y)``, batched; ``op`` transposes the last two dims where asked.

    Args: ``x``: C-contiguous device array (M, K) or (Bx, M, K), stored (…, K, M) with ``transpose_x``; ``y``:
    (K, N) or (By, K, N), stored (…, N, K) with ``transpose_y``; ``out``: C-contiguous (M, N) or (Bo, M, N).
    With ``B = max(Bx, By)``: Bx and By are 1 or B (1 broadcasts), and Bo is B, or 1 to sum the B products
    (the gradient of a broadcast operand). One float dtype. ``accumulate`` adds into ``out``. ``use_cublas``:
    None chooses (cuBLAS through CuPy when present on a GPU), False forces the tiled kernel.
    Raises ValueError for shapes that do not fit.
    """
    x, bx, (M, Kx) = _batched(x, transpose_x, "x")
    y, by, (Ky, N) = _batched(y, transpose_y, "y")
    out = L.device_array(out)
    B = max(bx, by)
    bo = out.shape[0] if out.ndim == 3 else 1
    if Kx != Ky or bx not in (1, B) or by not in (1, B) or bo not in (1, B) or out.size != bo * M * N:
        raise ValueError(
            f"matmul shapes do not fit: x {tuple(x.shape)}{' (transposed)' if transpose_x else ''}, "
            f"y {tuple(y.shape)}{' (transposed)' if transpose_y else ''}, out {tuple(out.shape)}"
        )
    if x.dtype != y.dtype or x.dtype != out.dtype or x.dtype.kind != "f":
        raise TypeError(f"matmul takes float arrays of one dtype, got {x.dtype}, {y.dtype}, {out.dtype}")
    if out.size == 0:
        return
    cupy = cupy_module() if use_cublas is not False else None
    if cupy is not None:
        _matmul_cupy(cupy, x, y, out, (bx, by, bo, M, Kx, N), transpose_x, transpose_y, accumulate, alpha)
        return
    sx = (M * Kx if bx > 1 else 0, *((1, M) if transpose_x else (Kx, 1)))
    sy = (Kx * N if by > 1 else 0, *((1, Kx) if transpose_y else (N, 1)))
    meta = L.to_meta([B, M, Kx, N, *sx, *sy, B // bo])
    grid = ((N + TILE - 1) // TILE, (M + TILE - 1) // TILE, bo)
    _matmul[grid, (TILE, TILE)](L.flat(x), L.flat(y), L.flat(out), meta, float(alpha), bool(accumulate))


def _matmul_cupy(cupy, x, y, out, sizes, transpose_x, transpose_y, accumulate, alpha):
    bx, by, bo, M, K_, N = sizes
    xv = cupy.asarray(x)
    yv = cupy.asarray(y)
    ov = cupy.asarray(out).reshape(bo, M, N)
    if xv.ndim == 2:
        xv = xv[None]
    if yv.ndim == 2:
        yv = yv[None]
    if transpose_x:
        xv = xv.swapaxes(-1, -2)
    if transpose_y:
        yv = yv.swapaxes(-1, -2)
    B = max(bx, by)
    if B == 1 and bo == 1 and hasattr(cupy, "cublas") and hasattr(cupy.cublas, "gemm"):
        # one GEMM straight into out (beta = 1 accumulates): no temporary
        cupy.cublas.gemm(
            "T" if transpose_x else "N",
            "T" if transpose_y else "N",
            cupy.asarray(x).reshape(x.shape[-2:]),
            cupy.asarray(y).reshape(y.shape[-2:]),
            out=ov[0],
            alpha=alpha,
            beta=1.0 if accumulate else 0.0,
        )
        return
    res = cupy.matmul(xv, yv)
    if bo == 1 and B > 1:
        res = res.sum(axis=0, keepdims=True)
    if alpha != 1.0:
        res *= alpha
    if accumulate:
        ov += res
    else:
        ov[...] = res


def matmul_backward(x, y, g, gx=None, gy=None, accumulate=True, use_cublas=None):
    """Cotangents of ``out = x @ y`` (shapes as ``matmul`` without transposes): ``gx (+)= g @ y^T``,
    ``gy (+)= x^T @ g``; an operand broadcast over the batch gets the sum over it. None skips one."""
    if gx is not None:
        matmul(g, y, gx, transpose_y=True, accumulate=accumulate, use_cublas=use_cublas)
    if gy is not None:
        matmul(x, g, gy, transpose_x=True, accumulate=accumulate, use_cublas=use_cublas)


def linear(x, w, out, b=None, use_cublas=None):
    """``out = x @ w.T + b`` (torch's linear).

    Args: ``x``: C-contiguous (M, K) device array (leading dims flattened by the caller); ``w``: (N, K);
    ``b``: (N,) or None; ``out``: C-contiguous (M, N). One float dtype.
    """
    matmul(x, w, out, transpose_y=True, use_cublas=use_cublas)
    if b is not None:
        from .elementwise import binary_forward

        binary_forward(K.ADD, out, b, out)


def linear_backward(x, w, g, gx=None, gw=None, gb=None, accumulate=True, use_cublas=None):
    """Cotangents of ``out = x @ w.T + b``: ``gx (+)= g @ w``, ``gw (+)= g^T @ x``, ``gb (+)= sum_rows(g)``
    (shapes as ``linear``, ``g`` (M, N)); None skips one."""
    if gx is not None:
        matmul(g, w, gx, accumulate=accumulate, use_cublas=use_cublas)
    if gw is not None:
        matmul(g, x, gw, transpose_x=True, accumulate=accumulate, use_cublas=use_cublas)
    if gb is not None:
        from .reduce import reduce

        reduce("sum", g, gb, 0, accumulate=accumulate)
