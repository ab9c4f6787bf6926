"""Forward evaluation of a tape's structural rows, shared by the two forward walks over recorded rows.

Two kernels recompute rows forwards, in recording order: ``replay.forward_sweep`` (``ad.compile``: the values
of a recorded step from new inputs) and ``second_order.tangent_forward_sweep`` (the tangents of every value,
the JVP of each row, before a compiled forward-over-reverse sweep). For the linear and bilinear rows both
apply the same code to different arenas: a linear row's JVP is the row's own map applied to the tangents,
and a bilinear row's (matmul, linear) is the sum of the map with one operand's tangent in place of that
operand. The helpers here take each operand as an ``(array, offset)`` pair (the value arena, the tangent
arena, or an extern slot of the replay) and write into ``dst`` at offset ``o``; row fields are as in
``ad/tape.py`` (``a``: the row's aux column, ``n``: its output size, ``a0``: its first attribute).
"""

import numpy as np
from numba import njit

from . import opcodes as K
from .cpu import KERNEL, matmul_layout, strided_offset, unsigned


@njit(**KERNEL)
def linear_row(code, aux, a, n, a0, src, x, dst, o):
    """``dst[o:o + n]`` = the map of a gather (``GATHER_STRIDED``, ``GATHER_MAP``) or ``SUM_ALL`` row applied
    to ``src`` read from ``x`` (for ``SUM_ALL``, ``a`` is the size of x)."""
    uo = unsigned(o)
    if code == K.GATHER_STRIDED:  # (indices of signed terms cast whole: see ``cpu.unsigned``)
        ndim = aux[a]
        for i in range(n):  # (signed i: strided_offset's arithmetic)
            dst[unsigned(o + i)] = src[unsigned(x + strided_offset(i, aux, a, ndim))]
    elif code == K.GATHER_MAP:
        for i in range(unsigned(n)):
            dst[uo + i] = src[unsigned(x + aux[unsigned(a + 1) + i])]
    elif code == K.SUM_ALL:
        total = 0.0
        ux = unsigned(x)
        for i in range(unsigned(a)):
            total += src[ux + i]
        dst[o] = a0 * total


@njit(**KERNEL)
def matmul_into(aux, a, xa, x, ya, y, dst, o, accumulate):
    """A ``MATMUL`` row (aux: ``B, M, K, N`` and the batch strides of x and y): ``dst`` at ``o`` = (or, with
    ``accumulate``, +=) the batched product of ``xa`` read from ``x`` and ``ya`` read from ``y``."""
    B, M, K_, N, xbs, ybs = matmul_layout(aux, a)
    for b in range(B):
        xb = xa[x + b * xbs : x + b * xbs + M * K_].reshape((M, K_))
        yb = ya[y + b * ybs : y + b * ybs + K_ * N].reshape((K_, N))
        ob = dst[o + b * M * N : o + (b + 1) * M * N].reshape((M, N))
        if accumulate:
            ob += np.dot(xb, yb)
        else:
            ob[:, :] = np.dot(xb, yb)


@njit(**KERNEL)
def linear_into(M, K_, N, xa, x, wa, w, dst, o, accumulate):
    """A ``LINEAR`` row's product without bias: ``dst`` at ``o`` = (or +=) x (M, K) times w (N, K) transposed."""
    xm = xa[x : x + M * K_].reshape((M, K_))
    wm = wa[w : w + N * K_].reshape((N, K_))
    om = dst[o : o + M * N].reshape((M, N))
    if accumulate:
        om += np.dot(xm, wm.T)
    else:
        om[:, :] = np.dot(xm, wm.T)


@njit(**KERNEL)
def add_bias(dst, o, M, N, ba, b):
    """``LINEAR_BIAS``'s bias: each of the M rows of the (M, N) block at ``o`` += ``ba[b:b + N]``."""
    ub = unsigned(b)
    for i in range(M):
        row = unsigned(o + i * N)
        for j in range(unsigned(N)):
            dst[row + j] += ba[ub + j]
