"""Scans on the device: the inclusive prefix sum (``cumsum``) along one dim, as a block-level scan.

Layout: the operand is C-contiguous, seen as ``(outer, n, inner)`` with the scanned dim in the middle; a
*line* is one ``(o, i)`` pair, its elements ``base + k * inner`` for ``k < n`` with
``base = o * n * inner + i``. One block scans one line at a time (blocks stride over the lines): the line is
read in chunks of ``SCAN_THREADS`` elements, one per thread, each chunk scanned in shared memory
(Hillis-Steele: ``log2(SCAN_THREADS)`` steps, a block barrier between reads and writes of each step), plus the
carried total of the chunks before it. Sums are taken in float64 whatever the dtype (the result is rounded
once, on the write); the order of the additions differs from numpy's sequential cumsum by rounding only.
"""

from numba import cuda, float64

SCAN_THREADS = 32  # one warp: the simulator pays for every thread, and a line is rarely long
MAX_BLOCKS = 1024


@cuda.jit
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


PTX_KERNELS = [
    (cumsum_kernel, [f"void({t}[::1], {t}[::1], int64, int64, int64)" for t in ("float32", "float64")]),
]
