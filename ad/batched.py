"""Batched compiled reverse sweep: B vector-Jacobian products of one graph in one pass.

``grad(..., is_grads_batched=True)`` (and through it ``functional.jacobian`` / ``hessian``) lands here when no
graph is to be recorded. It is ``engine.kernel_sweep`` with a cotangent arena that carries the batch:

- ``_BatchedTapeSweep.cot`` is ``(C, B)``: the one-VJP arena's slots, each holding B cotangents side by side
  (see ``kernels/batched.py`` for why this layout), compacted: ``cmap[off]`` is the row where the region at
  value offset ``off`` starts, and regions that never receive a cotangent (constant weights, biases, masks)
  get none (``_layout``, cached per graph shape), so the arena is B times the differentiable part of the tape.
  It is zero-filled, so every writer adds. ``block(off, n)`` is the ``(n, B)`` view of a region's cotangents.
  ``live``, ``visited``, ``lowest`` and the plan (``engine._Plan``: only the paths to the inputs run) are shared by the
  batch: a slot is live when some cotangent of the batch reached it.
- The compiled rows run in ``kernels.batched.reverse_sweep_batched``. So do big products of modest work (a
  2-D matmul or a linear with a constant weight: ``_in_kernel``), their big operands read where they lie
  (``_big_operands``), with OpenBLAS on the calling thread. Other big rows (``tape.BIG_ROW``: larger matmul
  and linear, same-shape elementwise, sum) run batched in numpy here: one GEMM with B times the columns, one
  partial per element for B cotangents.
- Python code sees per-example cotangents, as under torch's vmap'd backward, where a hook or a custom
  Function's backward sees tensors of the unbatched shape: tensor hooks, custom Function backwards and the
  rarer big rows (rules in numpy) run once per example, on ``_column`` views (an ``engine._TapeSweep``
  whose arena is column ``b`` of the batched one), with the engine's own code. That loop is per node only;
  everything between runs batched.

Results: ``{id: (tensor, array of shape (B,) + tensor.shape)}`` for leaves and requested tensors, as
``engine.kernel_sweep`` returns for one VJP.
"""

import bisect
import heapq
import struct

import numpy as np

from kernels import opcodes as K
from kernels.batched import recycled_bases, reverse_sweep_batched
from kernels.cpu import (
    CHEAP_PARTIAL,
    READS_OUT,
    READS_X,
    READS_Y,
    SAVES,
    binary_backward_chunk,
    needed_reads_py,
    read_only,
    unary_backward_chunk,
)
from kernels.pointwise import SELECTING_CODES

from . import engine
from .tape import BIG_ROW, POOL, dead_import_error, held, retire, zeroed_arena
from .tensor import Tensor

_UINT8 = np.dtype(np.uint8)


class _BatchedTapeSweep:
    """Per-tape state of one batched backward call (the batched twin of ``engine._TapeSweep``)."""

    __slots__ = (
        "tape",
        "nb",
        "cot",
        "cmap",
        "starts",
        "bases",
        "ends",
        "live",
        "visited",
        "start",
        "lowest",
        "functions",
        "plan",
        "rows_view",
        "nexterns",
        "columns",
        "arrays",
        "zeros",
        "python_rows",
        "products",
        "addrs",
    )

    def __init__(self, tape, nb, plan, pinned=None):
        self.tape = tape
        self.python_rows, self.products = _split_hook_rows(tape, nb) if tape.hook_rows else ((), ())
        if self.python_rows:
            retire(tape)  # Python code run by the sweep may record: keep this tape's layout as sized here
        self.nb = nb
        self.nexterns = len(tape.ext_rows)  # (tape.externs, read as its lists)
        self.plan = plan
        self.rows_view = None
        used = tape.used + 1
        # the kernel's views of the rows, taken once: the tape records no more rows while this sweep runs (a
        # tape whose sweep runs Python, which might record, was retired above)
        self.arrays = tape.arrays()
        self.cmap, self.starts, self.bases, self.ends, size, self.zeros, fixed = _layout(
            tape, self.arrays, None if self.python_rows else pinned
        )
        # recycled memory (no page faults); the kernel clears the shared blocks past ``fixed`` as it reaches them
        self.cot = zeroed_arena(tape.dtype, size * nb, fixed * nb).reshape(size, nb)
        self.cot[size - 1] = 0.0
        self.live = np.zeros(used, _UINT8)
        self.visited = np.zeros(tape.nrows + 1, np.uint8)
        self.start = -1
        self.lowest = tape.nrows
        self.functions = []
        self.columns = None  # per-example engine._TapeSweep views, made at the first node that needs Python
        self.addrs = _NO_ADDRESSES

    def seed(self, t, g):
        """Add ``g`` (``(n, B)``, or an ``IdentitySeed``) to ``t``'s slots."""
        off = t._off
        n = t._data.size
        block = self.block(off, n)
        if type(g) is IdentitySeed:  # ones at [i, start + i] (the C-ordered block's flat index i * (B + 1) + start)
            block.reshape(-1)[g.start :: self.nb + 1][:n] += 1.0
        else:
            block[...] += g
        self.live[off] = 1
        self.start = max(self.start, t._row + t._nrows - 1)
        self.lowest = min(self.lowest, t._row)

    def grad_of(self, t):
        if not self.live[t._off]:
            return None
        return _unslot(self.block(t._off, t._data.size), t)

    def block(self, off, n):
        """The ``(n, B)`` cotangents of the ``n`` slots from value offset ``off``."""
        c = self.row_of(off)
        return self.cot[c : c + n]

    def row_of(self, off):
        """The arena row of value offset ``off``, which may lie inside a region (a chunk of a big row)."""
        k = bisect.bisect_right(self.starts, off) - 1  # (np.searchsorted's dispatch costs more on a few starts)
        row = -1 if k < 0 else int(self.bases[k]) + off - int(self.starts[k])
        if row < 0 or row >= self.ends[k]:  # a constant's region (no slots): never alias the next region's
            raise RuntimeError(f"internal error: offset {off} of tape {self.tape.id} has no cotangent slots")
        return row

    def column_views(self):
        """One ``engine._TapeSweep`` per example, whose arena is column ``b`` of ``cot`` (the engine's
        Python-row code runs on them unchanged); ``live`` and ``visited`` are shared."""
        if self.columns is None:
            self.columns = [_column(self, b) for b in range(self.nb)]
        for c in self.columns:
            c.lowest = self.lowest
        return self.columns

    def gather_lowest(self):
        if self.columns is not None:
            self.lowest = min([self.lowest] + [c.lowest for c in self.columns])


class IdentitySeed:
    """The seeds of ``functional.jacobian`` for one root: rows ``start`` to ``start + n`` of the B x B identity
    (B: the elements of all the roots together, n: this root's), as ``(B, n)`` (``autograd._identity_rows``).
    ``_BatchedTapeSweep.seed`` writes its ones into the arena's slots directly, where an array of them would be
    made, checked and added (a 64 x 64 identity: 3 us a call)."""

    __slots__ = ("start",)

    def __init__(self, start):
        self.start = start

    def rows(self, nb, n, dtype):
        """The ``(B, n)`` array (for a root whose cotangent is not in an arena: a leaf)."""
        block = np.zeros((n, nb), dtype)
        block.reshape(-1)[self.start :: nb + 1][:n] = 1.0
        return block.T


def _column(s, b):
    c = engine._TapeSweep.__new__(engine._TapeSweep)
    c.tape = s.tape
    c.cot = _ColumnArena(s, b)
    c.live = s.live
    c.visited = s.visited
    c.start = s.start
    c.lowest = s.lowest
    c.functions = []
    c.big = {}
    c.big_off = c.big_n = engine._NO_REGIONS
    c.nexterns = s.nexterns
    c.rows_view = None
    c.hooked = set()
    if s.plan is None:
        c.plan = None
    else:  # the plan's sets are shared; each example captures its own gradients
        c.plan = engine._Plan.__new__(engine._Plan)
        c.plan.leads, c.plan.runs, c.plan.blocked = s.plan.leads, s.plan.runs, s.plan.blocked
        c.plan.captured = {}
    return c


class _ColumnArena:
    """Column ``b`` of a batched arena, indexed by value offsets as the one-VJP arena is (``cot[lo:hi]``): what
    the engine's Python-row code (hooks, custom Functions, big rows) reads and writes."""

    __slots__ = ("s", "b")

    def __init__(self, s, b):
        self.s = s
        self.b = b

    def _rows(self, key):
        lo = self.s.row_of(key.start)
        return slice(lo, lo + key.stop - key.start)

    def __getitem__(self, key):
        return self.s.cot[self._rows(key), self.b]

    def __setitem__(self, key, value):
        self.s.cot[self._rows(key), self.b] = value


# A product row whose operand or result is big (``tape.BIG_ROW``) is a Python row of the tape, but with B
# cotangents below this many multiply-adds (M * N * K * B) the compiled sweep runs it (``_in_kernel``): one
# GEMM there costs what it costs in numpy, while a Python row stops the kernel (a second kernel call, the row's
# Python, a retired tape) and keeps the arena at full size (no recycled blocks, ``_layout``). Measured on the
# 64-128-128-64 MLP's Jacobian, 1 BLAS thread, both paths interleaved in one process: 10% less per call.
KERNEL_PRODUCT_WORK = 1 << 23
_ROW_INTS = struct.Struct("<6q")  # a tape row's opcode, out, x, y, n and aux words (tape.ROW)


def _split_hook_rows(tape, nb):
    """``(python_rows, products)``: the rows at which the batched sweep of ``tape`` stops for Python, newest
    first, and the big products the kernel sweeps in their stead (``_in_kernel``), as ``(row, tensor)``."""
    python_rows = []
    products = []
    for h, refs in tape.hook_rows.items():
        t = _in_kernel(tape, h, refs, nb)
        if t is None:
            python_rows.append(h)
        else:
            products.append((h, t))
    python_rows.sort(reverse=True)
    return python_rows, products


def _in_kernel(tape, h, refs, nb):
    """The output of hook row ``h`` (handlers ``refs``) if the row is a small product's big row that the kernel
    can sweep: a 2-D matmul, or a linear whose weight needs no gradient (the kernel's rule for the weight is a
    scalar loop), that nothing else stops at (no hooks on its output); else None."""
    if h not in tape.python_rows or len(refs) != 1:
        return None
    t = refs[0]()
    if not isinstance(t, Tensor) or t._tape is not tape or t._row != h or t._hooks or t._retains_grad:
        return None
    op_bits, _, x_off, y_off, n, _ = _ROW_INTS.unpack_from(tape.rows, h * 80)
    code = op_bits & K.CODE_MASK
    if code == K.MATMUL:
        x, y = t._inputs
        product = x.ndim <= 2 and y.ndim <= 2
    elif code == K.LINEAR or code == K.LINEAR_BIAS:
        x, y = t._inputs[:2]
        product = not op_bits & K.YRG
    else:
        return None
    return t if product and n * x.shape[-1] * nb <= KERNEL_PRODUCT_WORK else None


_NO_ADDRESSES = np.zeros((0, 2), np.int64)  # (kernels.batched: no operand read outside the arena)


def _big_operands(s):
    """Give the big products the kernel will sweep (rows up to ``s.start``) their operands' values: a big
    tensor imported into the tape has a region but not its values there (``Tape.import_new``). The kernel reads
    a C-contiguous one of the tape's dtype where it lies, by address (``s.addrs``; the product's tensor, held
    by ``s.products``, keeps it alive), and any other copied into its region: the MLP Jacobian's 128 x 128
    weight cost a 128 KB copy a call (3 us). An operand changed in place since the forward carries the
    ``modified`` flag, and the kernel raises torch's error before reading it."""
    tape = s.tape
    addrs = None
    for h, t in s.products:
        if h > s.start:
            continue
        _, _, x_off, y_off = _ROW_INTS.unpack_from(tape.rows, h * 80)[:4]
        for k, (inp, off) in enumerate(zip(t._inputs[:2], (x_off, y_off))):
            data = inp._data
            if inp._tape is tape or data.size < BIG_ROW:
                continue
            if data.flags.c_contiguous and data.dtype == tape.dtype:
                if addrs is None:
                    addrs = np.zeros((tape.nrows, 2), np.int64)
                addrs[h, k] = data.ctypes.data
            else:
                tape.values[off : off + data.size] = data.reshape(-1)
    if addrs is not None:
        s.addrs = addrs


# Codes whose compiled batched rule (``kernels/batched.py``) writes an operand's cotangent only where the row's
# XRG / YRG bit is set: an operand of these rows without its bit (a constant weight, a mask) needs no slots.
# Rows of other codes (strided / mapped gathers, groups, Python rows) may write to their operands regardless.
_FLAGGED = np.zeros(K.CODE_MASK + 1, np.bool_)
_FLAGGED[list(K.UNARY_CODES)] = True
_FLAGGED[K.BINARY_FIRST : K.BINARY_LAST + 1] = True
_FLAGGED[[K.WHERE, K.SUM_ALL, K.MATMUL, K.LINEAR, K.LINEAR_BIAS, K.LOG_SOFTMAX, K.CROSS_ENTROPY]] = True

# Codes whose row reads its output's cotangent only while the kernel sweeps that row: the regions they produce
# may share arena blocks (``kernels.batched.recycled_bases``)
_RECYCLABLE = np.zeros(K.CODE_MASK + 1, np.uint8)
_RECYCLABLE[list(K.UNARY_CODES)] = 1
_RECYCLABLE[K.BINARY_FIRST : K.BINARY_LAST + 1] = 1
_RECYCLABLE[
    [
        K.WHERE,
        K.GATHER_STRIDED,
        K.SCATTER_STRIDED,
        K.GATHER_MAP,
        K.SCATTER_MAP,
        K.SUM_ALL,
        K.MATMUL,
        K.LINEAR,
        K.LINEAR_BIAS,
        K.LOG_SOFTMAX,
        K.CROSS_ENTROPY,
        K.PROD,
        K.AMAX,
        K.AMIN,
    ]
] = 1
_NO_ZEROS = (np.zeros(0, np.int64),) * 3

_LAYOUTS = {}  # graph shape (rows, aux, imports, big regions) -> _layout's result: a jacobian records the same
_MAX_LAYOUTS = 16  # graph each call


def _layout(tape, arrays=None, pinned=None):
    """The compacted cotangent arena of ``tape``: ``(cmap, starts, bases, ends, rows, zeros, fixed)``.

    Regions are delimited by every offset the rows name (outputs, operands, masks), the big regions and the
    imported tensors; a region runs to the next such offset. Only regions that can receive a cotangent get
    arena rows: row outputs, imported tensors, operands whose XRG / YRG bit is set (or a bias that requires
    grad), and every operand of a row whose rule does not look at those bits (``_FLAGGED``). Constants (weight
    matrices, biases, masks that do not require grad) get none, so the arena to clear is B times the part of
    the tape on the paths to the inputs. ``cmap[off]`` (0 where no region starts) is the arena row of the
    region starting at ``off``; ``ends[k]`` the arena row past region ``k``'s (``bases[k]`` when it has none).
    The result is cached by the graph's shape (rows, aux, imports, big regions), the same at each call of a
    function that records the same graph (``functional.jacobian``); the arrays are only read. ``arrays``:
    ``tape.arrays()`` where the caller has them.

    ``pinned``: None, or the value offsets of the tensors seeded before the sweep or read after it (roots,
    requested tensors). With it, the regions of row outputs share blocks of arena rows where their cotangents
    are never needed at once (``kernels.batched.recycled_bases``), so the arena is B times the cotangents alive
    at any one row, not B times the tape: ``zeros`` lists the blocks the kernel clears for each new owner, in
    cache just before it writes them, and only the first ``fixed`` rows (and the last) start cleared. Only
    for a tape swept in one kernel call (no Python rows: their code may read any cotangent) that no other tape
    seeds (its newest reached).
    """
    words, _, aux = tape.arrays() if arrays is None else arrays
    key = (
        bytes(words),
        aux.tobytes(),
        tuple(tape.ext_offs),
        tuple(tape.big_regions),
        tape.used,
        pinned,
    )
    hit = _LAYOUTS.get(key)
    if hit is not None:
        return hit
    used = tape.used
    code = words[:, 0] & K.CODE_MASK
    xs, ys = words[:, 2], words[:, 3]
    imports = list(tape.ext_offs)
    biases, rg_biases = [], []
    for r in np.flatnonzero(code == K.LINEAR_BIAS).tolist():  # the bias: a third operand, its offset in aux
        a = int(words[r, 5])
        (rg_biases if aux[a + 5] else biases).append(int(aux[a + 3]))
    named = np.array(imports + biases + rg_biases, np.int64)
    named = named[named >= 0]
    big = np.array([off for off, _ in tape.big_regions], np.int64)
    masks = words[code == K.WHERE, 5]
    starts = np.unique(np.concatenate([words[:, 1], xs[xs >= 0], ys[ys >= 0], masks, big, named, [used]]))
    sizes = np.diff(starts)
    starts = starts[:-1]
    unflagged = ~_FLAGGED[code]
    receivers = np.concatenate(
        [
            words[:, 1],
            xs[((words[:, 0] & K.XRG) != 0) | unflagged],
            ys[((words[:, 0] & K.YRG) != 0) | unflagged],
            np.array(imports + rg_biases, np.int64),
        ]
    )
    sizes[~np.isin(starts, receivers)] = 0
    bases = np.zeros(starts.shape[0], np.int64)
    if pinned is None:
        np.cumsum(sizes[:-1], out=bases[1:])
        rows, zeros = int(sizes.sum()) + 1, _NO_ZEROS
        fixed = rows
    else:
        pin = np.isin(starts, np.array(pinned, np.int64)).view(np.uint8)
        top, fixed, *zeros = recycled_bases(words, aux, starts, sizes, pin, _RECYCLABLE, bases, tape.nrows)
        rows, fixed, zeros = int(top) + 1, int(fixed), tuple(zeros)
    cmap = np.zeros(used + 1, np.int64)
    cmap[starts] = bases
    del words, aux
    result = (cmap, starts, bases, bases + sizes, rows, zeros, fixed)
    if len(_LAYOUTS) >= _MAX_LAYOUTS:
        _LAYOUTS.pop(next(iter(_LAYOUTS)))
    _LAYOUTS[key] = result
    return result


def _unslot(block, t):
    """``(n, B)`` slots of ``t`` -> a fresh ``(B,) + t.shape`` array."""
    return np.ascontiguousarray(block.T).reshape((block.shape[1],) + t._data.shape)


def batched_kernel_sweep(roots, seeds, targets, retain_graph, nb):
    """``engine.kernel_sweep`` for ``nb`` cotangents at once; ``seeds``: arrays of shape ``(nb,) + root.shape``
    (an F-ordered ``(nb, n)`` seed is added to its ``(n, nb)`` slots without a strided transpose)."""
    sweeps = {}
    try:
        return _sweep_all(roots, seeds, targets, retain_graph, nb, sweeps)
    finally:
        for s in sweeps.values():  # (the row views export the tape's buffers: an array.array that exports its
            s.arrays = None  # buffer cannot grow, and a traceback may keep these sweeps alive)


def _sweep_all(roots, seeds, targets, retain_graph, nb, sweeps):
    for t in targets.values():
        if t._retains_grad:
            _refuse_retain_grad(t)
    for t in roots:
        if t._retains_grad:
            _refuse_retain_grad(t)
    heap = []
    leaf_grads = {}
    plan = engine.plan_for(roots, targets)
    # the roots' tape, when they share one: no other tape seeds it, so its arena may recycle blocks (_layout)
    newest = {t._tape for t in roots if t._op is not None}
    newest = newest.pop() if len(newest) == 1 else None
    pinned = {t._off for t in roots if t._op is not None and t._tape is newest}
    pinned.update(t._off for t in targets.values() if t._op is not None and t._tape is newest)
    pinned = tuple(sorted(pinned))

    def state_of(tape):
        s = sweeps.get(tape.id)
        if s is None:
            s = _BatchedTapeSweep(tape, nb, plan, pinned if tape is newest else None)
            sweeps[tape.id] = s
            heapq.heappush(heap, -tape.id)
        return s

    for t, g in zip(roots, seeds):
        if type(g) is IdentitySeed:
            if t._op is not None:
                state_of(t._tape).seed(t, g)  # (written into the arena, never made)
                continue
            g = g.rows(nb, t._data.size, t._data.dtype)
        g = np.asarray(g, dtype=t._data.dtype).reshape(nb, -1)
        if t._op is None:
            _add_leaf(leaf_grads, t, g.reshape((nb,) + t._data.shape))
        else:
            state_of(t._tape).seed(t, g.T.astype(t._tape.dtype, copy=False))

    while heap:
        s = sweeps[-heapq.heappop(heap)]
        _sweep_tape(s)
        tape = s.tape
        ext_rows, ext_offs, ext_refs = tape.ext_rows, tape.ext_offs, tape.ext_refs  # (tape.externs, unpacked)
        for k in range(s.nexterns - 1, -1, -1):  # imported tensors, newest first, down to where the sweep stopped
            if ext_rows[k] < s.lowest:
                break
            off = ext_offs[k]
            if not s.live[off]:
                continue
            t = held(ext_refs[k])
            if t is None:
                raise dead_import_error()
            block = s.block(off, t._data.size)
            if t._op is None:
                _add_leaf(leaf_grads, t, _unslot(block, t).astype(t._data.dtype, copy=False))
            else:
                state_of(t._tape).seed(t, block)

    target_grads = {}
    for key, t in targets.items():
        if t._op is None:
            continue
        s = sweeps.get(t._tape.id)
        if s is None:
            continue
        g = _captured(s, key, t)
        if g is None:
            g = s.grad_of(t)
        if g is not None:
            target_grads[key] = (t, g)
    if not retain_graph:
        engine.free_swept(sweeps.values())
    for s in sweeps.values():  # back to the pool; reused once no result views them (results are copies)
        POOL.give(s.cot.base if s.cot.base is not None else s.cot)
    return leaf_grads, target_grads


class RetainGradInBatch(RuntimeError):
    """A batched sweep reached a ``retain_grad`` tensor (raised before any ``.grad`` is written)."""


def _refuse_retain_grad(t):
    if t._retains_grad:
        raise RetainGradInBatch(
            "retain_grad() tensors are not supported with is_grads_batched=True: .grad would have to hold a "
            "batch of gradients; call grad() once per cotangent instead"
        )


def _captured(s, key, t):
    """A requested tensor's gradients as captured before its hooks ran (per example), or None."""
    if s.columns is None or key not in s.columns[0].plan.captured:
        return None
    return np.stack([c.plan.captured[key] for c in s.columns])


def _add_leaf(leaf_grads, t, g):
    prev = leaf_grads.get(id(t))
    leaf_grads[id(t)] = (t, g if prev is None else prev[1] + g)


def _sweep_tape(s):
    """``engine._sweep_tape`` for a batch: compiled stretches between the rows that need Python."""
    tape = s.tape
    if getattr(tape, "unwritten", None) is not None:  # (CUDA tapes have none)
        tape.materialize()  # (its Python rows may read values a replay's fused forward left out)
    hook_rows = [r for r in s.python_rows if r <= s.start]
    if s.products:
        _big_operands(s)
    freed = tape.freed_flags()
    start = s.start
    for h in hook_rows:
        _run_kernel(s, start, h + 1, freed)
        if h < s.lowest:
            return
        handlers = [r() for r in tape.hook_rows.get(h, ())]
        consumed = False
        plan = s.plan
        tensors = [t for t in handlers if isinstance(t, Tensor) and s.live[t._off]]
        for t in tensors:
            _refuse_retain_grad(t)  # (raised before any .grad is written: grad writes none, retain_grad would)
        for t in tensors:  # hooks first (per example): a big row or a Function's backward sees hooked gradients
            if plan is not None and id(t) not in plan.leads:
                continue
            if t._hooks:
                for c in s.column_views():
                    engine._arrive(c, t)
        for t in tensors:
            if t._row == h and h in tape.python_rows and not consumed:
                if plan is None or id(t) in plan.leads:
                    if plan is None or id(t) in plan.runs:
                        _big_row(s, t, h, freed)
                consumed = True
        records = [r for r in handlers if r is not None and not isinstance(r, Tensor)]
        for rec in records:
            if any(r is rec for r in s.functions):
                continue
            reached = any(o is not None and o._tape is tape and s.live[o._off] for o in rec.outputs)
            if not reached or (plan is not None and not any(o is not None and id(o) in plan.runs for o in rec.outputs)):
                continue
            # a custom Function's backward is written for one cotangent (torch would need its vmap rule): run it
            # once per example; which outputs had a cotangent is decided before the first example's hooks
            outs = [o for o in rec.outputs if o is not None and o._tape is tape]
            was_live = [int(s.live[o._off]) for o in outs]
            for c in s.column_views():
                for o, flag in zip(outs, was_live):
                    s.live[o._off] = flag
                for o, flag in zip(outs, was_live):
                    if flag:
                        engine._arrive(c, o)
                    elif o._hooks:
                        g = engine.hooks_on_undefined(o)
                        if g is not None:
                            c.cot[o._off : o._off + o._data.size] = g._data.reshape(-1)
                            s.live[o._off] = 1
                rec.kernel_backward(c)
            s.functions.append(rec)
        s.gather_lowest()
        if not consumed and h in tape.python_rows and s.live[engine._row_out(tape, h)]:
            raise RuntimeError(f"internal error: big row {h} of tape {tape.id} was reached but its tensor is gone")
        start = h - 1 if consumed else h
    _run_kernel(s, start, 0, freed)


def _run_kernel(s, start, stop, freed):
    if start < stop:
        return
    tape = s.tape
    rows, attrs, aux = s.arrays
    if s.plan is not None:
        blocked = s.plan.blocked.get(tape.id)
        if blocked:  # rows off the paths to the inputs: masked as engine._run_kernel does
            if s.rows_view is None or s.rows_view.shape[0] != rows.shape[0]:
                s.rows_view = tape.masked_rows(rows, blocked, tape.used)
            rows = s.rows_view
    status = np.zeros(3, np.int64)
    # (the kernel's GEMMs run on the calling thread: kernels.batched._gemm_add cuts them into blocks OpenBLAS
    # does not thread; threaded, on a loaded machine a call waits milliseconds for a descheduled worker:
    # measured on 2 cores, the MLP Jacobian's median was 7.5 ms with its 128x128 product threaded at load 1)
    result = _call_kernel(s, rows, attrs, aux, start, stop, freed, status)
    del rows, attrs, aux
    if result < 0:
        if status[0] == engine.FREED:
            raise RuntimeError(engine.FREED_MESSAGE)
        raise RuntimeError(engine._modified_message(tape, int(status[1]), int(status[2])))
    s.lowest = result


def _call_kernel(s, rows, attrs, aux, start, stop, freed, status):
    tape = s.tape
    return reverse_sweep_batched(
        rows,
        attrs,
        aux,
        tape.values,
        s.cot,
        s.cmap,
        s.live,
        s.visited,
        freed,
        tape.modified,
        SAVES,
        start,
        stop,
        s.lowest,
        status,
        *s.zeros,
        s.addrs,
    )


def _big_row(s, t, h, freed):
    """Row ``h`` (producing big tensor ``t``), batched where numpy can take the batch (matmul, linear,
    same-shape elementwise with a compiled partial, sum), else once per example with the engine's code."""
    tape = s.tape
    row = np.frombuffer(tape.rows, np.int64, count=8, offset=h * 80)
    op_bits = int(row[0])
    code = op_bits & K.CODE_MASK
    inputs = t._inputs
    matmul = (code == K.MATMUL and inputs[0].ndim <= 2 and inputs[1].ndim <= 2) or code in (K.LINEAR, K.LINEAR_BIAS)
    elementwise = CHEAP_PARTIAL[code] and all(i._data.shape == t._data.shape for i in inputs)
    if not (matmul or elementwise or code == K.SUM_ALL):
        for c in s.column_views():
            engine._vectorized_row(c, t, h, freed)
        s.gather_lowest()
        return
    _check_row(tape, h, row, freed)
    s.visited[h] = 1
    targets = [
        (int(off), int(prow), inp)
        for bit, off, prow, inp in zip((K.XRG, K.YRG), (row[2], row[3]), (row[6], row[7]), inputs)
        if op_bits & bit
    ]
    if code == K.LINEAR_BIAS and tape.aux[int(row[5]) + 5]:
        a = int(row[5])
        targets.append((tape.aux[a + 3], tape.aux[a + 4], inputs[2]))
    n = t._data.size
    g = s.block(t._off, n)  # (n, B)
    nb = s.nb

    def add_to(inp, value):
        for off, _, target in targets:
            if target is inp:
                s.block(off, inp._data.size)[...] += value.reshape(inp._data.size, nb)
                return

    if matmul:
        _matmul_rows(t, code, g, nb, add_to)
    elif code == K.SUM_ALL:
        scale = float(np.frombuffer(tape.rows, np.float64, count=1, offset=h * 80 + 64)[0])
        for off, _, inp in targets:
            s.block(off, inp._data.size)[...] += scale * g[0]
    else:
        _elementwise_partials(t, code, g, h, add_to, tape)
    for off, prow, _ in targets:
        s.live[off] = 1
        s.lowest = min(s.lowest, prow)


def _check_row(tape, h, row, freed):
    op_bits, out_off, x_off, y_off = int(row[0]), int(row[1]), int(row[2]), int(row[3])
    reads = needed_reads_py(int(SAVES[op_bits & K.CODE_MASK]), op_bits)
    if reads:
        if freed[h]:
            raise RuntimeError(engine.FREED_MESSAGE)
        mod = tape.modified
        if (
            (reads & READS_OUT and mod[out_off])
            or (reads & READS_X and x_off >= 0 and mod[x_off])
            or (reads & READS_Y and y_off >= 0 and mod[y_off])
        ):
            raise RuntimeError(engine._modified_message(tape, h, out_off))


def _matmul_rows(t, code, g, nb, add_to):
    """``x @ y`` (1-D or 2-D operands) or ``x @ y.T (+ b)`` with B cotangents ``g`` ``(M*N, B)``."""
    x, y = t._inputs[:2]
    linear = code != K.MATMUL
    xd = x._data.reshape(-1, x.shape[-1])
    yd = y._data if linear or y.ndim == 2 else y._data.reshape(-1, 1)
    M = xd.shape[0]
    g3 = g.reshape(M, -1, nb)  # (M, N, B)
    N = g3.shape[1]
    if x._rg:
        # gx[m] = y @ g[m] (matmul) or y.T @ g[m] (linear): one batched GEMM over the rows of x
        add_to(x, np.matmul(yd.T if linear else yd, g3))
    if y._rg and y is not x:
        if linear:  # gy[n, k] = sum_m g[m, n] x[m, k]
            add_to(y, (g3.transpose(1, 2, 0).reshape(N * nb, M) @ xd).reshape(N, nb, -1).transpose(0, 2, 1))
        else:  # gy = x.T @ g: one GEMM with B times the columns
            add_to(y, xd.T @ g.reshape(M, N * nb))
    elif y is x and x._rg:
        add_to(x, xd.T @ g.reshape(M, N * nb))
    if len(t._inputs) > 2 and t._inputs[2]._rg:
        add_to(t._inputs[2], g3.sum(0))


def _elementwise_partials(t, code, g, h, add_to, tape):
    """Same-shape elementwise row: the local partials once (the kernels' formulas, applied to ones), then
    B cotangents times them."""
    attrs = np.frombuffer(tape.rows, np.float64, count=2, offset=h * 80 + 64)
    n = t._data.size
    out = read_only(t._data.reshape(-1))
    flat = [read_only(np.ascontiguousarray(i._data).reshape(-1)) for i in t._inputs]
    ones = np.ones(n, out.dtype)
    times = _select_times if code in SELECTING_CODES else _times
    if len(flat) == 1:
        d = np.empty(n, out.dtype)
        unary_backward_chunk(code, flat[0], out, ones, d, float(attrs[0]), float(attrs[1]), False)
        if t._inputs[0]._rg:
            add_to(t._inputs[0], times(g, d[:, None]))
        return
    dx = np.empty(n, out.dtype)
    dy = np.empty(n, out.dtype)
    binary_backward_chunk(code, flat[0], flat[1], out, ones, dx, dy, True, True, False, False)
    x, y = t._inputs
    if x._rg:
        add_to(x, times(g, dx[:, None]))
    if y._rg:
        add_to(y, times(g, dy[:, None]))


def _times(g, d):
    return g * d


def _select_times(g, d):
    """``g * d``, 0 where ``d`` is: a selecting op's rule (``kernels/pointwise.times``) on arrays."""
    with np.errstate(invalid="ignore"):  # (inf * 0 where d is 0: computed, then not selected)
        return np.where(d != 0.0, g * d, 0.0).astype(g.dtype, copy=False)


# ---------------------------------------------------------------------------------------------------------
# the differentiable sweep with a batch of cotangents (``create_graph=True``, or inside forward-mode levels)
#
# The reverse rules are linear in their cotangent ``g``, so the rule's derivative along ``g`` is the rule
# itself: seeding the sweep with zeros that carry the B cotangents as batched tangents at a private dual level
# (``ad/forward.py``) makes every rule's output carry its B results as that level's tangent, computed by the
# batched forward rules (``ad/ops/batch_rules.py``) in one pass. The gradients' tangents are the batched
# gradients, recorded as one graph when ``create_graph``. Code that may read a cotangent's value rather than
# apply ad ops to it (custom Function backwards, tensor hooks, retain_grad) would lose the batch, so a graph
# with any of those runs once per cotangent instead (``batched_graph_grad`` returns None).


def _rules_carry_batch(outputs):
    """Whether every node behind ``outputs`` computes its cotangents with ad ops (see above)."""
    seen = set()
    stack = list(outputs)
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        if t._hooks or t._retains_grad:
            return False
        if t._op is None:
            continue
        if t._op.code == K.PYTHON:
            # a custom Function, or one of ad's Python-swept primitives (linear algebra, cumsum, ...): their
            # jvp (which carries the batch through their backward) may compute with saved values as constants,
            # right for the batch's values but not differentiable again (create_graph)
            return False
        stack.extend(i for i in engine._inputs_of(t) if i is not None and i._rg)
    return True


def batched_graph_grad(grad, outputs, inputs, seeds, nb, retain_graph, create_graph, allow_unused):
    """The B VJPs of ``seeds`` (each ``(B, *output.shape)``) by one differentiable sweep (``grad`` is
    ``ad.autograd.grad``); a tuple with ``(B, *input.shape)`` or None per input, or None where the graph
    needs one sweep per cotangent (see above)."""
    from .autograd import forward_ad as fwAD
    from .creation import zeros_like

    if not _rules_carry_batch(outputs):
        return None
    with fwAD.dual_level():
        duals = [
            fwAD.make_dual(zeros_like(out), g, is_batched=True)
            for out, g in zip(outputs, seeds)
        ]
        res = grad(
            outputs, inputs, duals, retain_graph=retain_graph, create_graph=create_graph, allow_unused=allow_unused
        )
        batched = [None if r is None else fwAD.unpack_dual(r).tangent for r in res]
    for r, b in zip(res, batched):
        if r is not None and b is None:  # a rule dropped the batch: never return its zeros as gradients
            raise RuntimeError(
                "is_grads_batched=True: the batch of cotangents was lost in the differentiable sweep (a reverse "
                "rule computed outside ad ops); call grad() once per cotangent instead"
            )
    return tuple(batched)
