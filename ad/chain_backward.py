"""The backward of a chain of big elementwise rows in one blocked pass (the backward half of issue 11's fusion).

A big elementwise row (``tape.BIG_ROW`` elements or more) is swept from Python (``big_rows._vectorized_row``):
one pass over the whole arrays per row, reading its cotangent and values and writing its operand's cotangent.
Eight such rows in a chain (``sin(exp(x * c + 1))``...) make eight passes over memory, with a cotangent
array written and read back between each two. Here a *chain* is swept together instead, block by block: a
block of each cotangent stays in cache from one row to the next (``BLOCK`` elements, two scratch buffers
per thread), the intermediate cotangents are never written to the arena, and only the chain's bottom
operand receives its cotangent there. Blocks are split across threads as the single rows are
(``ad/parallel.py``); each row's block runs the same chunk kernels (``kernels/cpu.py``:
``unary_backward_chunk``, ``binary_backward_chunk``) as a single row, so values are those of the row-by-row
sweep (an intermediate that other rows also read adds their cotangents, already in the arena, to its block).
Each thread's share is one compiled call (``kernels/chain_sweep.py``: a dispatch per row and block from Python
held the GIL, and the threads queued for it: W3's backward 27 -> 22 ms); a chain whose arrays are not all of
the arena's dtype (a mixed-dtype op) runs the same loop from Python.

A chain is rows ``h, h-1, ..., b`` of one tape where each row is a big elementwise row with a fused partial
(``CHEAP_PARTIAL``), every operand of the same shape and contiguous, exactly one operand requiring grad,
and that operand (for rows above ``b``) the result of the row just below, a tensor with no hooks, no
``retain_grad``, nothing else registered at its row, which no requested ``inputs`` restrict (the caller
passes no ``_Plan``). Anything else ends the chain; a chain of one row is left to ``_vectorized_row``.
"""

import numpy as np

from kernels import opcodes as K
from kernels.cpu import CHEAP_PARTIAL, binary_backward_chunk, read_only, unary_backward_chunk

from . import parallel

BLOCK = 32768  # elements per block: two scratch blocks and a block of each operand stay in a core's L2


def _elementwise(code):
    return K.is_unary(code)


def _link(t, row):
    """The grad operand index of row ``row`` (result ``t``) if it can be in a chain, else None (structural
    checks only: the operands' flat arrays are made by ``_flat`` once the chain is known to be longer than one
    row, which a lone big elementwise row between two dense layers never is)."""
    op = t._op
    if op is None or not CHEAP_PARTIAL[op.code] or t._nrows != 1 or t._row != row:
        return None
    code = op.code
    binary = K.BINARY_FIRST <= code <= K.BINARY_LAST
    if not (binary or _elementwise(code)):
        return None
    inputs = t._inputs
    if len(inputs) != (2 if binary else 1):
        return None
    shape = t._data.shape
    for i in inputs:
        if i is None or i._data.shape != shape or not i._data.flags.c_contiguous:
            return None
    needs = [k for k, i in enumerate(inputs) if i._rg]
    if len(needs) != 1 or (binary and inputs[0] is inputs[1]):
        return None
    return needs[0]


def _flat(t):
    """Read-only flat views of ``t``'s operands (each contiguous: ``_link`` checked)."""
    return [read_only(i._data.reshape(-1)) for i in t._inputs]


def chain_rows(s, t, h):
    """The chain of rows from ``h`` (result ``t``) down, as ``[(row, tensor, grad operand, flat operands)]``,
    or None when it would be a single row."""
    tape = s.tape
    op = t._op
    if op is None or not CHEAP_PARTIAL[op.code]:
        return None  # (matmul and the other big rows without a fused partial: before the flags object below)
    if not t._data.flags.c_contiguous:
        return None
    first = _link(t, h)
    if first is None:
        return None
    links = [(h, t, first)]
    row, cur, k = h, t, first
    python_rows, hook_rows = tape.python_rows, tape.hook_rows
    while True:
        below = cur._inputs[k]
        r = row - 1
        if below._tape is not tape or below._hooks or below._retains_grad or r not in python_rows:
            break
        refs = hook_rows.get(r)
        if refs is None or len(refs) != 1 or refs[0]() is not below or not below._data.flags.c_contiguous:
            break
        link = _link(below, r)
        if link is None:
            break
        links.append((r, below, link))
        row, cur, k = r, below, link
    if len(links) == 1:
        return None
    return [(r, u, k, _flat(u)) for r, u, k in links]


def sweep_chain(s, chain, freed, big_row_head):
    """Sweep the rows of ``chain`` (from ``chain_rows``) in one blocked pass; ``big_row_head`` is the engine's
    per-row check (freed graph, values modified in place), which also marks each row visited."""
    rows = []
    target = None
    for row, t, k, flat in chain:
        code, out_off, targets = big_row_head(s, t, row, freed)
        a0, a1 = (float(v) for v in np.frombuffer(s.tape.rows, np.float64, count=2, offset=row * 80 + 64))
        rows.append((code, out_off, k, flat, read_only(t._data.reshape(-1)), a0, a1))
        target = targets[0]
    cot, live = s.cot, s.live
    n = chain[0][1]._data.size
    head_off = rows[0][1]
    # the intermediates that other rows (above the chain, swept already) gave a cotangent: added to their block
    extra = [bool(live[rows[j + 1][1]]) for j in range(len(rows) - 1)] + [False]
    t_off, t_row, _ = target
    t_acc = bool(live[t_off])

    arrays = [a for _, _, _, flat, out, _, _ in rows for a in (*flat, out)]
    if all(a.dtype == cot.dtype and a.flags.c_contiguous for a in arrays):  # (else mixed dtypes: below)
        _sweep_compiled(rows, extra, cot, head_off, t_off, t_acc, n)
        live[t_off] = 1
        if t_row < s.lowest:
            s.lowest = t_row
        return

    def run(lo, hi):
        scratch = (np.empty(min(BLOCK, hi - lo)), np.empty(min(BLOCK, hi - lo)))
        for blo in range(lo, hi, BLOCK):
            bhi = min(blo + BLOCK, hi)
            m = bhi - blo
            g = cot[head_off + blo : head_off + bhi]
            last = len(rows) - 1
            for j, (code, _, k, flat, out, a0, a1) in enumerate(rows):
                if j == last:
                    dst, acc = cot[t_off + blo : t_off + bhi], t_acc
                else:
                    dst, acc = scratch[j & 1][:m], False
                if len(flat) == 1:
                    unary_backward_chunk(code, flat[0][blo:bhi], out[blo:bhi], g, dst, a0, a1, acc)
                else:
                    x, y = flat[0][blo:bhi], flat[1][blo:bhi]
                    binary_backward_chunk(code, x, y, out[blo:bhi], g, dst, dst, k == 0, k == 1, acc, acc)
                if extra[j]:
                    off = rows[j + 1][1]
                    dst += cot[off + blo : off + bhi]
                g = dst

    parallel.run(n, run)
    live[t_off] = 1
    if t_row < s.lowest:
        s.lowest = t_row


def _sweep_compiled(rows, extra, cot, head_off, t_off, t_acc, n):
    """``sweep_chain``'s blocked loop as one compiled call per thread (``kernels/chain_sweep.py``)."""
    from kernels.chain_sweep import chain_backward_chunk

    count = len(rows)
    meta = np.zeros((count, 3), np.int64)
    attrs = np.zeros((count, 2), np.float64)
    addrs = np.zeros((count, 3), np.int64)
    extra_off = np.full(count, -1, np.int64)
    for j, (code, _, k, flat, out, a0, a1) in enumerate(rows):
        meta[j] = code, k, len(flat) == 2
        attrs[j] = a0, a1
        addrs[j] = flat[0].ctypes.data, flat[1].ctypes.data if len(flat) == 2 else 0, out.ctypes.data
        if extra[j]:
            extra_off[j] = rows[j + 1][1]

    def run(lo, hi):
        scratch = np.empty((2, min(BLOCK, hi - lo)), cot.dtype)
        chain_backward_chunk(meta, attrs, addrs, extra_off, cot, head_off, t_off, t_acc, n, scratch, lo, hi)

    parallel.run(n, run)  # (``rows`` holds the arrays whose addresses the kernel reads until it returns)
