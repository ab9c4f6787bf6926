"""The forward of a run of big elementwise rows in one blocked pass across threads (issue 11's forward fusion;
the twin of ``chain_backward``).

A replayed step (``ad/compile_replay.py``) runs big elementwise rows (``PARALLEL_MIN`` elements or more) one
at a time: each row reads its operands' arrays and writes its whole result (32 MB for 4M float64) into the
arena, and the next row reads it back. A *run* of such rows over the same number of elements is computed here
block by block instead (``BLOCK`` elements; blocks split across threads by ``ad/parallel.py``): every row of
the run over one block before the next block, so an intermediate stays in cache between the rows. Only the
results something reads later are written to the arena (*kept*):

- the values the backward reads (``SAVES``: sin reads its operand, tanh and exp their result, x * c reads c
  only; all values of a row whose partial is not ``CHEAP_PARTIAL``, swept by a Python rule);
- anything a row outside the run reads (by arena range), the function's outputs, a node another node's ``ctx``
  holds, a tensor with hooks or ``retain_grad``.

The others live in per-thread scratch blocks. A whole-tensor sum (``SUM_ALL``) right after the run, of its last
result, is folded in: each block's sum is added up (the order differs from the row-by-row kernel's, within
rounding), and that result need not be written either.

Values: each row's block goes through the function the row-by-row replay uses for that opcode (numpy's ufuncs
for + - * / and the transcendental functions that numpy vectorizes, ``trig_forward`` for sin and cos,
``pointwise``'s per-element value for the rest), so every kept value equals the unfused replay's bit for bit.

The values left out can be needed after all: the differentiable sweep (``create_graph=True``, anomaly mode),
the batched and second-order sweeps read nodes' values through Python rules. Their entries call
``Tape.materialize``, which reruns the run's original row-by-row segments (kept in ``FusedRun.originals``),
writing everything; if an operand the run read from outside was modified in place since, that cannot be done
and it raises (no silent wrong value).

Data structures: ``FusedRun`` (one per fused run of a template): ``steps`` ``[(call, sources, dest)]`` with
``call(operand blocks..., out=block)``, each source and destination an ``(ARENA, offset)``, ``(EXTERN, slot)``
(an index into the replay's extern slots: a big import read where it lives) or ``(SCRATCH, k)``; ``sum_row``
``(output offset, scale)`` or None; ``inputs``: the arena offsets of what the run reads from outside it.
"""

import functools
import math
import threading

import numpy as np

from kernels import opcodes as K
from kernels.cpu import CHEAP_PARTIAL, READS_OTHER, READS_OUT, READS_X, READS_Y, SAVES, needed_reads_py, trig_forward

from . import parallel

BLOCK = 16384  # elements per block: a block of each operand, result and scratch stays in a core's L2
ARENA, EXTERN, SCRATCH = 0, 1, 2

_BINARY_UFUNCS = {K.ADD: np.add, K.SUB: np.subtract, K.MUL: np.multiply, K.DIV: np.divide}


class FusedRun:
    __slots__ = (
        "first", "end", "n", "steps", "sum_row", "n_scratch", "inputs", "originals", "skips", "prog", "ext_slots"
    )


def fuse(tpl, segments, words, codes, sizes, reads, ufuncs):
    """``segments`` (``_Template.finish``'s) with each stretch of two or more consecutive big elementwise
    segments ("p" and "u") over the same size replaced by ``("f", FusedRun)`` (with the ``SUM_ALL`` row that
    follows it, if any)."""
    out = []
    i = 0
    while i < len(segments):
        seg = segments[i]
        j = i
        if seg[0] in "pu":
            n = seg[3]
            j = i + 1
            while j < len(segments) and segments[j][0] in "pu" and segments[j][3] == n:
                j += 1
        first = seg[1]
        end = segments[j - 1][2] if segments[j - 1][0] == "p" else segments[j - 1][1] + 1
        several = j > i + 1 or (seg[0] == "p" and end - first > 1)
        run = _plan(tpl, segments[i:j], first, end, words, codes, sizes, reads, ufuncs) if several else None
        if run is None:
            out.append(seg)
            i += 1
            continue
        out.append(("f", run))
        i = j
        if run.sum_row is not None:  # the sum row, first of the next kernel stretch, is now the run's
            nxt = segments[i]
            if nxt[2] > end + 1:
                out.append(("k", end + 1, nxt[2], nxt[3]))
            i += 1
    return out


def _plan(tpl, segs, first, end, words, codes, sizes, reads, ufuncs):
    """The ``FusedRun`` of rows ``first..end-1`` (all elementwise over ``n`` elements), or None when a row reads
    something the blocked pass cannot (an operand inside a run result but not at its start)."""
    n = sizes[first]
    outs = {int(words[r, 1]): r for r in range(first, end)}
    ext_at = {off: k for k, (off, _, _) in enumerate(tpl.externs_in)}
    # the SUM_ALL row right after the run, of the run's last result, is folded in
    sum_row = None
    last_out = int(words[end - 1, 1])
    if end < tpl.nrows and codes[end] == K.SUM_ALL and int(words[end, 2]) == last_out and not tpl.flags[end]:
        sum_row = end
    keep = _kept(tpl, first, end, sum_row, words, codes, n)
    steps, inputs = [], []
    free, last_read, slot_of = [], {}, {}
    for r in range(first, end):
        for off in _operands(words, codes, r):
            if off in outs:
                last_read[off] = r
    n_scratch = 0
    for r in range(first, end):
        sources = []
        for off in _operands(words, codes, r):
            if off in outs:
                sources.append((ARENA, off) if off in keep else (SCRATCH, slot_of[off]))
            elif any(o < off < o + n for o in outs):
                return None
            else:
                inputs.append(off)
                k = ext_at.get(off)
                sources.append((ARENA, off) if k is None else (EXTERN, k))
        for off, r_last in last_read.items():  # scratch blocks whose last reader is this row: reusable
            if r_last == r and off in slot_of and slot_of[off] not in free:
                free.append(slot_of[off])
        o = int(words[r, 1])
        if o in keep:
            dest = (ARENA, o)
        else:
            if not free:
                free.append(n_scratch)
                n_scratch += 1
            slot_of[o] = free.pop()
            dest = (SCRATCH, slot_of[o])
        steps.append((_call(codes[r], tpl.attrs[r], ufuncs), tuple(sources), dest))
    run = FusedRun()
    run.prog, run.ext_slots = _program(tpl, first, end, codes, steps, ufuncs)
    run.first, run.end, run.n = first, end, n
    run.steps = steps
    run.n_scratch = n_scratch
    run.inputs = sorted(set(inputs))
    run.sum_row = None if sum_row is None else (int(words[sum_row, 1]), float(tpl.attrs[sum_row, 0]))
    run.originals = list(segs)  # (the sum is never recomputed: it is an output, already seen)
    run.skips = len(keep) < len(outs)
    return run


def _program(tpl, first, end, codes, steps, ufuncs):
    """``(prog, pattrs), ext_slots`` for ``kernels/fused_run.py`` (``ext_slots``: the extern slot indices its
    ``ext0`` and ``ext1`` stand for), or ``(None, None)``: a row whose values come from a numpy ufunc (the kernel
    would not reproduce them bit for bit), or more than two big imports read in place."""
    if any(codes[r] in ufuncs for r in range(first, end)):
        return None, None
    ext_slots = sorted({o for _, sources, _ in steps for k, o in sources if k == EXTERN})
    if len(ext_slots) > 2:
        return None, None
    prog = np.full((len(steps), 7), -1, np.int64)
    for s, (r, (_, sources, dest)) in enumerate(zip(range(first, end), steps)):
        prog[s, 0] = codes[r]
        for j, (k, o) in enumerate(sources):
            prog[s, 1 + 2 * j] = k
            prog[s, 2 + 2 * j] = ext_slots.index(o) if k == EXTERN else o
        prog[s, 5:7] = dest
    return (prog, np.ascontiguousarray(tpl.attrs[first:end], np.float64)), ext_slots


def _operands(words, codes, r):
    if K.BINARY_FIRST <= codes[r] <= K.BINARY_LAST:
        return (int(words[r, 2]), int(words[r, 3]))
    return (int(words[r, 2]),)


def _kept(tpl, first, end, sum_row, words, codes, n):
    """The result offsets of rows ``first..end-1`` that must be written to the arena (see the module docstring)."""
    outs = [int(words[r, 1]) for r in range(first, end)]
    keep = set()
    from .compile_template import _ctx_nodes  # (it imports this module)

    node_at = {nd.off: nd for nd in tpl.nodes}
    named = set(_out_nodes(tpl.out))
    for nd in tpl.nodes:
        named.update(_ctx_nodes(nd.ctx))
    for k in named:
        keep.add(tpl.nodes[k].off)
    for o in outs:
        nd = node_at.get(o)
        if nd is None or nd.hooks or nd.retains_grad or nd.nrows != 1:
            keep.add(o)
    for r in range(first, end):  # what the backward reads
        code, op_bits = codes[r], int(words[r, 0])
        need = needed_reads_py(int(SAVES[code]), op_bits)
        if not CHEAP_PARTIAL[code] or need & READS_OTHER:
            need = READS_X | READS_Y | READS_OUT
        if need & READS_OUT:
            keep.add(int(words[r, 1]))
        ops = _operands(words, codes, r)
        if need & READS_X:
            keep.add(ops[0])
        if need & READS_Y and len(ops) > 1:
            keep.add(ops[1])
    # what rows outside the run read (by range: a row may read into a region), the folded sum row excepted
    others = np.ones(tpl.nrows, bool)
    others[first:end] = False
    if sum_row is not None:
        others[sum_row] = False
    read_at = np.concatenate([words[others, 2], words[others, 3]])
    bias = [int(tpl.aux[int(words[r, 5]) + 3]) for r in np.flatnonzero(others) if codes[r] == K.LINEAR_BIAS]
    read_at = np.concatenate([read_at, np.array(bias, np.int64)])
    for o in outs:
        if np.any((read_at >= o) & (read_at < o + n)):
            keep.add(o)
    return keep & set(outs)


def _out_nodes(spec):
    kind = spec[0]
    if kind == "n":
        return [spec[1]]
    if kind in ("s", "nt", "d"):
        return [k for s in spec[2] for k in _out_nodes(s)]
    return []


def _call(code, attrs, ufuncs):
    """``call(operand blocks..., out=block)`` computing row values as the row-by-row replay does."""
    from kernels.replay import binary_block, unary_block

    a0, a1 = float(attrs[0]), float(attrs[1])
    if code in _BINARY_UFUNCS:
        return _BINARY_UFUNCS[code]
    if K.BINARY_FIRST <= code <= K.BINARY_LAST:
        return lambda x, y, out: binary_block(code, x, y, out)
    if code in ufuncs:
        return ufuncs[code]
    if code == K.SIN or code == K.COS:
        return lambda x, out: trig_forward(code, x, out)
    if code == K.AFFINE and a1 == 0.0 and math.copysign(1.0, a1) < 0.0:  # (pointwise.scale_only)
        return lambda x, out: np.multiply(x, a0, out=out)
    if code == K.AFFINE and a0 == 1.0:
        return lambda x, out: np.add(x, a1, out=out)
    if code == K.COPY:
        return lambda x, out: np.copyto(out, x)
    return lambda x, out: unary_block(code, x, out, a0, a1)


_local = threading.local()


def _scratch(dtype, count):
    """This thread's ``count`` scratch blocks (kept between calls: fresh ones would cost page faults)."""
    got = getattr(_local, "blocks", None)
    if got is None or got[0].dtype != dtype or len(got) < count:
        got = _local.blocks = [np.empty(BLOCK, dtype) for _ in range(max(count, 1))]
    return got


def _scratch_rows(dtype, count):
    """This thread's ``count`` scratch blocks as rows of one array, for the compiled run."""
    got = getattr(_local, "rows", None)
    if got is None or got.dtype != dtype or got.shape[0] < count:
        got = _local.rows = np.empty((max(count, 1), BLOCK), dtype)
    return got


def run(fr, values, slots):
    """Compute the fused run ``fr`` into ``values`` (``slots``: the replay's extern slots, ``(array, offset)``)."""
    if fr.prog is not None:
        _run_compiled(fr, values, slots)
        return
    exts = [flat for flat, _ in slots]
    steps = fr.steps
    sums = {}

    def chunk(lo, hi):
        scratch = _scratch(values.dtype, fr.n_scratch)
        total = 0.0
        for blo in range(lo, hi, BLOCK):
            bhi = min(blo + BLOCK, hi)
            m = bhi - blo
            out = None
            for call, sources, (dk, d) in steps:
                args = [
                    values[o + blo : o + bhi] if k == ARENA else exts[o][blo:bhi] if k == EXTERN else scratch[o][:m]
                    for k, o in sources
                ]
                out = values[d + blo : d + bhi] if dk == ARENA else scratch[d][:m]
                call(*args, out=out)
            if fr.sum_row is not None:
                total += float(np.add.reduce(out, dtype=np.float64))
        sums[lo] = total

    parallel.run(fr.n, chunk)
    if fr.sum_row is not None:
        o, scale = fr.sum_row
        values[o] = scale * sum(sums[lo] for lo in sorted(sums))


def _run_compiled(fr, values, slots):
    from kernels.fused_run import fused_run_chunk

    prog, pattrs = fr.prog
    exts = [slots[k][0] for k in fr.ext_slots] + [values[:0]] * (2 - len(fr.ext_slots))
    fold = fr.sum_row is not None
    sums = {}

    def chunk(lo, hi):
        scratch = _scratch_rows(values.dtype, fr.n_scratch)
        sums[lo] = fused_run_chunk(prog, pattrs, values, exts[0], exts[1], scratch, lo, hi, fold)

    parallel.run(fr.n, chunk)
    if fold:
        o, scale = fr.sum_row
        values[o] = scale * sum(sums[lo] for lo in sorted(sums))


def materializer(tape_ref, runs, rerun):
    """``Tape.unwritten`` for a replay whose fused runs left values out: ``rerun(values, segments)`` runs
    segments as the replay does; an operand modified in place since the forward makes it raise instead. (It
    holds the tape and its arena only weakly: a dying tape gives its arena back to the pool.)"""
    return functools.partial(_materialize, tape_ref, runs, rerun)


def _materialize(tape_ref, runs, rerun):
    tape = tape_ref()
    modified = tape.modified
    for fr in runs:
        if any(off < modified.shape[0] and modified[off] for off in fr.inputs):
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an inplace operation: "
                "a compiled step's intermediate values (ad.compile fuses big elementwise runs and keeps only what "
                "the first-order backward reads) cannot be recomputed for this sweep after an in-place change of "
                "its inputs"
            )
    for fr in runs:
        rerun(tape.values, fr.originals)
