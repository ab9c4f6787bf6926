"""Scans on the device along one dim, as block-level scans: the inclusive prefix sum (``cumsum``) and the running
maximum / minimum's index (``cummax`` / ``cummin``: a scan carrying (value, index) pairs).

Layout: the operand is C-contiguous, seen as ``(outer, n, inner)`` with the scanned dim in the middle; a
*line* is one ``(o, i)`` pair, its elements ``base + k * inner`` for ``k < n`` with
``base = o * n * inner + i``. One block scans one line at a time (blocks stride over the lines): the line is
read in chunks of ``SCAN_THREADS`` elements, one per thread, each chunk scanned in shared memory
(Hillis-Steele: ``log2(SCAN_THREADS)`` steps, a block barrier between reads and writes of each step), plus the
carried total of the chunks before it. Sums are taken in float64 whatever the dtype (the result is rounded
once, on the write); the order of the additions differs from numpy's sequential cumsum by rounding only.

The running extreme combines (value, index) pairs, the earlier segment's with the later one's: the later takes
over when its value is NaN, or when the earlier's is not NaN and the later's is >= (max) / <= (min) it (torch's
rule: a later equal value, and each new NaN, take over). NaN is the top of that order and ties go to the later
pair, so the combine is associative and the block scan gives the sequential scan's indices exactly.
"""

import math

from numba import cuda, float64, int64

SCAN_THREADS = 32  # one warp: the simulator pays for every thread, and a line is rarely long
MAX_BLOCKS = 1024


@cuda.jit(cache=True)
def cumsum_kernel(x, out, n, inner, lines):
    buf = cuda.shared.array(SCAN_THREADS, float64)
    tid = cuda.threadIdx.x
    for line in range(cuda.blockIdx.x, lines, cuda.gridDim.x):
        o = line // inner
        base = o * n * inner + (line - o * inner)
        carry = 0.0
        for start in range(0, n, SCAN_THREADS):
            k = start + tid
            buf[tid] = x[base + k * inner] if k < n else 0.0
            cuda.syncthreads()
            step = 1
            while step < SCAN_THREADS:
                add = buf[tid - step] if tid >= step else 0.0
                cuda.syncthreads()
                buf[tid] += add
                cuda.syncthreads()
                step *= 2
            if k < n:
                out[base + k * inner] = carry + buf[tid]
            carry += buf[SCAN_THREADS - 1]
            cuda.syncthreads()  # (every thread read the chunk's total before the next chunk overwrites it)


def cumsum(x, out, outer, n, inner):
    """``out = cumsum(x)`` along the middle dim of ``x`` seen as ``(outer, n, inner)``; flat C-contiguous
    device arrays of one float dtype, ``outer * n * inner`` elements each."""
    lines = outer * inner
    if lines and n:
        cumsum_kernel[min(lines, MAX_BLOCKS), SCAN_THREADS](x, out, n, inner, lines)


@cuda.jit(device=True)
def _later_takes_over(later, earlier, is_max):
    if math.isnan(later):
        return True
    if math.isnan(earlier):
        return False
    return later >= earlier if is_max else later <= earlier


@cuda.jit(cache=True)
def cum_extreme_kernel(x, idx, n, inner, lines, is_max):
    val = cuda.shared.array(SCAN_THREADS, float64)
    pos = cuda.shared.array(SCAN_THREADS, int64)  # -1: no element (past the line's end)
    tid = cuda.threadIdx.x
    nthr = cuda.blockDim.x  # (a power of two, at most SCAN_THREADS: short lines get fewer threads)
    for line in range(cuda.blockIdx.x, lines, cuda.gridDim.x):
        o = line // inner
        base = o * n * inner + (line - o * inner)
        carry_v = 0.0
        carry_i = -1
        for start in range(0, n, nthr):
            k = start + tid
            val[tid] = x[base + k * inner] if k < n else 0.0
            pos[tid] = k if k < n else -1
            cuda.syncthreads()
            step = 1
            while step < nthr:
                ev = val[tid - step] if tid >= step else 0.0
                ei = pos[tid - step] if tid >= step else -1
                cuda.syncthreads()
                if ei >= 0 and (pos[tid] < 0 or not _later_takes_over(val[tid], ev, is_max)):
                    val[tid] = ev
                    pos[tid] = ei
                cuda.syncthreads()
                step *= 2
            if k < n:
                i = pos[tid]
                if carry_i >= 0 and not _later_takes_over(val[tid], carry_v, is_max):
                    i = carry_i
                idx[base + k * inner] = i
            last = nthr - 1
            if carry_i < 0 or _later_takes_over(val[last], carry_v, is_max):
                carry_v = val[last]
                carry_i = pos[last]
            cuda.syncthreads()  # (every thread read the chunk's result before the next chunk overwrites it)


def cum_extreme(x, idx, outer, n, inner, is_max):
    """``idx`` = the index (along the middle dim of ``x`` seen as ``(outer, n, inner)``) of the running maximum
    (``is_max``) or minimum of ``x``, torch's ties and NaN rule (the module docstring); ``x`` a flat
    C-contiguous float device array, ``idx`` a flat int64 one of the same size."""
    lines = outer * inner
    if lines and n:
        threads = 1
        while threads < n and threads < SCAN_THREADS:
            threads *= 2
        cum_extreme_kernel[min(lines, MAX_BLOCKS), threads](x, idx, n, inner, lines, bool(is_max))


PTX_KERNELS = [
    (cumsum_kernel, [f"void({t}[::1], {t}[::1], int64, int64, int64)" for t in ("float32", "float64")]),
    (cum_extreme_kernel, [f"void({t}[::1], int64[::1], int64, int64, int64, boolean)" for t in ("float32", "float64")]),
]
