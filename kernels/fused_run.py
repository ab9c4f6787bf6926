"""One thread's share of a fused run of big elementwise rows (``ad/chain_forward.py``), in one compiled call.

``ad/chain_forward.py`` plans a run of big elementwise rows over the same number of elements as *steps*, each
reading one or two operand blocks and writing one result block, where an operand or result is an arena region
(``ARENA``), a big import read in place (``EXTERN``: the kernel's ``ext0`` or ``ext1``) or a per-thread
scratch block (``SCRATCH``: a row of ``scratch``) for a value nothing reads after the run. Here the steps run
block by block over elements ``lo:hi`` (every step over one block before the next block: the operands stay in
cache), each step a plain loop that vectorizes: ``vmath``'s exp, tanh, sin and cos, and the arithmetic ops;
the other opcodes through ``pointwise``'s per-element values (as ``replay.forward_sweep`` computes them, so
the values equal the row-by-row replay's bit for bit).

Arrays: ``prog`` int64 (S, 7): per step ``code, kind0, off0, kind1, off1, dest_kind, dest_off`` (kind1 -1
for a unary step; an EXTERN's offset is 0 or 1: ``ext0`` or ``ext1``; a SCRATCH's is the scratch row);
``pattrs`` float64 (S, 2): the rows' attributes; ``scratch`` (k, block). With ``fold``, the sum of the last
step's results over ``lo:hi`` is returned (the whole-tensor sum the run ends with), in a fixed order (eight
interleaved partial sums per block), else 0.0.
"""

import numpy as np
from numba import njit

from . import opcodes as K
from .cpu import KERNEL, trig_forward
from .replay import binary_value, unary_value
from .vmath import exp as vexp
from .vmath import tanh as vtanh

ARENA, EXTERN, SCRATCH = 0, 1, 2


@njit(inline="always", **KERNEL)
def _block_of(kind, off, vals, ext0, ext1, scratch, blo, m):
    if kind == ARENA:
        return vals[off + blo : off + blo + m]
    if kind == EXTERN:
        return ext0[blo : blo + m] if off == 0 else ext1[blo : blo + m]
    return scratch[off, :m]


@njit(**KERNEL)
def fused_run_chunk(prog, pattrs, vals, ext0, ext1, scratch, lo, hi, fold):
    block = scratch.shape[1]
    acc = np.zeros(8)
    for blo in range(lo, hi, block):
        m = min(block, hi - blo)
        out = vals[:0]
        for s in range(prog.shape[0]):
            code = prog[s, 0]
            x = _block_of(prog[s, 1], prog[s, 2], vals, ext0, ext1, scratch, blo, m)
            out = _block_of(prog[s, 5], prog[s, 6], vals, ext0, ext1, scratch, blo, m)
            if prog[s, 3] >= 0:
                y = _block_of(prog[s, 3], prog[s, 4], vals, ext0, ext1, scratch, blo, m)
                _binary(code, x, y, out, m)
            else:
                _unary(code, x, out, m, pattrs[s, 0], pattrs[s, 1])
        if fold:
            m8 = m - m % 8
            for j in range(0, m8, 8):
                for k in range(8):
                    acc[k] += out[j + k]
            for j in range(m8, m):
                acc[0] += out[j]
    total = 0.0
    for k in range(8):
        total += acc[k]
    return total


@njit(inline="always", **KERNEL)
def _binary(code, x, y, out, m):
    if code == K.ADD:
        for i in range(m):
            out[i] = x[i] + y[i]
    elif code == K.SUB:
        for i in range(m):
            out[i] = x[i] - y[i]
    elif code == K.MUL:
        for i in range(m):
            out[i] = x[i] * y[i]
    elif code == K.DIV:
        for i in range(m):
            out[i] = x[i] / y[i]
    else:
        for i in range(m):
            out[i] = binary_value(code, x[i], y[i])


@njit(inline="always", **KERNEL)
def _unary(code, x, out, m, a0, a1):
    if code == K.SIN or code == K.COS:
        trig_forward(code, x, out)
    elif code == K.TANH:
        for i in range(m):
            out[i] = vtanh(x[i])
    elif code == K.EXP:
        for i in range(m):
            out[i] = vexp(x[i])
    elif code == K.AFFINE and a1 == 0.0:
        for i in range(m):
            out[i] = x[i] * a0
    elif code == K.AFFINE and a0 == 1.0:
        for i in range(m):
            out[i] = x[i] + a1
    elif code == K.COPY:
        for i in range(m):
            out[i] = x[i]
    else:
        for i in range(m):
            out[i] = unary_value(code, x[i], a0, a1)
