"""One thread's share of a fused run of big elementwise rows (``ad/chain_forward.py``), in one compiled call.

``ad/chain_forward.py`` plans a run of big elementwise rows over the same number of elements as *steps*, each
reading one or two operand blocks and writing one result block, where an operand or result is an arena region
(``ARENA``), a big import read in place (``EXTERN``: the kernel's ``ext0`` or ``ext1``) or a per-thread
scratch block (``SCRATCH``: a row of ``scratch``) for a value nothing reads after the run. Here the steps run
block by block over elements ``lo:hi`` (every step over one block before the next block: the operands stay in
cache), each step ``replay.unary_block`` / ``binary_block`` (the loops of ``replay.forward_sweep``'s rows, so
the values equal the row-by-row replay's bit for bit).

Arrays: ``prog`` int64 (S, 7): per step ``code, kind0, off0, kind1, off1, dest_kind, dest_off`` (kind1 -1
for a unary step; an EXTERN's offset is 0 or 1: ``ext0`` or ``ext1``; a SCRATCH's is the scratch row);
``pattrs`` float64 (S, 2): the rows' attributes; ``scratch`` (k, block). With ``fold``, the sum of the last
step's results over ``lo:hi`` is returned (the whole-tensor sum the run ends with), in a fixed order (eight
interleaved partial sums per block), else 0.0.
"""

import numpy as np
from numba import njit

from .cpu import KERNEL
from .replay import binary_block, unary_block

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
                binary_block(code, x, y, out)
            else:
                unary_block(code, x, out, pattrs[s, 0], pattrs[s, 1])
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
