"""The backward engine: seeds cotangents and sweeps tapes (compiled) or the Python graph (differentiable).

Two sweeps compute the same first derivatives:

- ``kernel_sweep``: for ``create_graph=False``. Per tape reached, in decreasing tape id: allocate a
  cotangent arena with the tape's layout (zero outside big tensors' regions: see ``_TapeSweep``), add the
  seeds, and call ``kernels.cpu.reverse_sweep`` once (once per stretch between rows that need Python: hooks,
  ``retain_grad`` on non-leaf tensors, custom Functions, big rows: ``ad/big_rows.py``). Cotangents of
  imported tensors (``Tape.externs``) are then handed on: to a leaf's result, or as a seed into the older
  tape that owns the tensor. Nothing is written to any ``.grad`` until every tape was swept without error.
- ``graph_sweep`` (``ad/differentiable_sweep.py``): for ``create_graph=True``, in forward-mode levels, and in
  anomaly mode (which checks each node's result: ``ad/autograd/anomaly_mode.py``). Walks the Python graph
  (``Tensor._inputs``, ``graph_nodes`` here) in reverse recording order and applies each op's ``vjp`` (written
  with ``ad`` ops), so the result is itself differentiable. This module keeps what both sweeps share: the
  graph walk, ``_Plan`` (which nodes run for ``inputs=``), hooks, ``retain_grad``, freeing.

Both return ``{id(tensor): (tensor, cotangent)}`` for the leaves and requested tensors; ``ad/autograd``
turns that into ``.grad`` accumulation (``backward``) or a tuple (``grad``).

Traversal follows torch's engine: with ``inputs`` (``grad``, ``backward(inputs=...)``) only the nodes on a path
to them run (``_Plan``: rows of other nodes are masked for the kernel, their hooks and custom Functions are not
called, and they are not freed), so a later call can still differentiate the other paths. Python code run by a
sweep (hooks, custom backwards) may record new graphs and call backward again (reentrant backward): a tape
with Python rows stops taking new rows when its sweep starts, and each sweep keeps its own cotangent arena.
"""

import heapq
import weakref

import numpy as np

from kernels import opcodes as K
from kernels.cpu import (
    FREED,
    SAVES,
    reverse_sweep,
    zero_byte_ranges,
)

from .big_rows import (  # noqa: F401 - engine.X names other modules use
    _ROW_HEAD,
    FREED_MESSAGE,
    _modified_message,
    _row_out,
    _vectorized_row,
    big_row_head,
)
from .chain_backward import chain_rows, sweep_chain
from .tape import POOL, Tape, dead_import_error, retire
from .tensor import Tensor, _pre_write_node, wrap_array

_UINT8 = np.dtype(np.uint8)
_SAVES_LIST = SAVES.tolist()  # (``SAVES`` as Python ints: indexing a list costs less than making a numpy scalar)
_NO_REGIONS = np.zeros(0, np.int64)


class _TapeSweep:
    """Per-tape state of one backward call (``ad/cuda/backward.DeviceSweep`` for a device tape)."""

    __slots__ = (
        "tape",
        "cot",
        "live",
        "visited",
        "start",
        "lowest",
        "functions",
        "big",
        "big_off",
        "big_n",
        "nexterns",
        "plan",
        "rows_view",
        "hooked",
        "buf",
    )

    on_device = False
    ARENAS = 1  # float arenas of the tape's layout in the pooled buffer: ``cot`` (``TangentSweep``: three)

    def __init__(self, tape, plan=None):
        self.tape = tape
        # a sweep may call Python (hooks, custom backwards) that records new ops or runs a nested backward
        # (reentrant backward): stop recording on this tape, so that its layout stays the one sized here
        if tape.takes_rows and tape.hook_rows:
            retire(tape)
        self.nexterns = len(tape.ext_rows)  # externs added later belong to graphs recorded during the sweep
        self.plan = plan  # _Plan of a sweep restricted to the paths to ``inputs`` (None: every reached node)
        self.rows_view = None  # the rows handed to the kernel, with the rows that must not run masked
        self.hooked = set()  # ids of tensors whose hooks ran in this sweep
        used = tape.used + 1
        # The cotangent arena, recycled from earlier sweeps when nothing views it, is zero except in the
        # regions of big tensors (Tape.big_regions): a region whose ``live`` flag is 0 holds zeros or garbage,
        # so its first writer stores (the fused rows, matmul, seeds) or clears it first (``clear_unwritten``,
        # and the kernel, through ``big_off``/``big_n``).
        if tape.big_regions:
            self.big, self.big_off, self.big_n, live_off, live_n = big_region_arrays(tape.big_regions, True)
        else:
            self.big = {}
            self.big_off = self.big_n = live_off = live_n = _NO_REGIONS
        self.allocate(used, live_off, live_n)
        self.visited = np.zeros(tape.nrows + 1, np.uint8)
        self.start = -1
        self.lowest = tape.nrows
        self.functions = []  # custom Function records whose backward ran (their ctx is freed after)

    def allocate(self, used, live_off, live_n):
        """The cotangent arena ``cot`` and the ``live`` flags: views of one pooled buffer (``buf``, returned),
        ``ARENAS`` arenas of ``used`` elements side by side (a subclass views the others) and the uint8 flags
        at its end, zero outside the big regions, so that a sweep takes and gives back one buffer
        (``release``). The flags are read at tensors' first offsets only: inside a big region
        (``live_off``/``live_n``) they may keep old values."""
        dtype = self.tape.dtype
        k = self.ARENAS
        nflags = -(-used // dtype.itemsize)  # the uint8 flags, in the buffer's last elements
        size = k * used + nflags
        buf = POOL.take(dtype, size)
        fresh = buf is None
        if fresh:
            buf = np.zeros(size, dtype)  # fresh pages read as zero anyway
        self.buf = buf
        self.cot = buf[:used]
        raw = buf.view(_UINT8)
        flags_at = k * used * dtype.itemsize
        self.live = raw[flags_at : flags_at + used]
        if not fresh:
            # byte ranges of the whole buffer (the arenas' and the flags', adjacent ones merged): a small graph's
            # arenas are mostly its big regions, so each range costs a numpy call, not memory traffic
            ranges = _zero_ranges(used, k, dtype.itemsize, self.big_off, self.big_n, live_off, live_n)
            if type(ranges) is list:
                for lo, hi in ranges:
                    raw[lo:hi] = 0
            else:  # (several ranges, around big regions: one kernel call, cheaper than a numpy call per range)
                zero_byte_ranges(raw, ranges)
        return buf

    def release(self):
        """Give the buffer back to the pool (reused once nothing views it: a leaf's gradient may, until it dies)."""
        buf = self.buf
        self.buf = self.cot = self.live = None
        POOL.give(buf)

    def seed(self, t, g):
        off = t._off
        n = t._data.size
        region = self.cot[off : off + n]
        if self.live[off]:
            region += g.reshape(-1)
        else:
            region[...] = g.reshape(-1)
            self.live[off] = 1
        last = t._row + t._nrows - 1
        if last > self.start:
            self.start = last
        if t._row < self.lowest:
            self.lowest = t._row

    def clear_unwritten(self, targets):
        """Zero the big regions among ``targets`` (``(offset, row, tensor)``) that hold no cotangent yet,
        before code that adds into them."""
        if self.big:
            for off, _, _ in targets:
                if not self.live[off] and off in self.big:
                    self.cot[off : off + self.big[off]] = 0

    def grad_of(self, t):
        if not self.live[t._off]:
            return None
        n = t._data.size
        return self.cot[t._off : t._off + n].reshape(t._data.shape)


_ZERO_RANGES = {}  # (arena size, arenas, id of the big offsets) -> (those offsets, the ranges)


def _zero_ranges(used, k, itemsize, big_off, big_n, live_off, live_n):
    """The ``(lo, hi)`` byte ranges to clear in a recycled buffer: of the ``k`` arenas of ``used`` elements side
    by side (everything outside the big regions) and of the flags after them, adjacent ranges merged (an arena's
    tail and the next one's head, the last arena's tail and the flags' head): a list of pairs, or for more than two
    an ``(R, 2)`` array for ``kernels.cpu.zero_byte_ranges``. Kept per layout (``big_region_arrays`` returns the
    same arrays for the same regions)."""
    key = (used, k, itemsize, id(big_off))
    hit = _ZERO_RANGES.get(key)
    if hit is None or hit[0] is not big_off:
        ranges = []
        for base in range(0, k * used, used):
            lo = base
            for off, size in zip(big_off.tolist(), big_n.tolist()):
                ranges.append((lo * itemsize, (base + off) * itemsize))
                lo = base + off + size
            ranges.append((lo * itemsize, (base + used) * itemsize))
        flags_at = k * used * itemsize
        lo = 0
        for off, size in zip(live_off.tolist(), live_n.tolist()):
            ranges.append((flags_at + lo, flags_at + off))
            lo = off + size
        ranges.append((flags_at + lo, flags_at + used))
        merged = []
        for lo, hi in ranges:
            if merged and merged[-1][1] == lo:
                merged[-1] = (merged[-1][0], hi)
            elif lo < hi:
                merged.append((lo, hi))
        if len(_ZERO_RANGES) >= 16:
            _ZERO_RANGES.clear()
        hit = _ZERO_RANGES[key] = (big_off, merged if len(merged) <= 2 else np.array(merged, np.int64))
    return hit[1]


_BIG_ARRAYS = {}  # a tape's big regions, as a tuple -> the results below


def big_region_arrays(regions, with_live=False):
    """``({offset: size}, sorted offsets, their sizes)`` of a tape's ``big_regions``, kept by content: the
    next step's tape records the same graph with the same layout (a training loop, a Hessian-vector product
    called repeatedly), so its sweeps find them ready. ``with_live``: also the regions of the ``live`` flags
    left as they are (each region but its first element, the only flag read)."""
    key = tuple(regions)
    hit = _BIG_ARRAYS.get(key)
    if hit is None:
        big = dict(regions)  # offset -> size
        off = np.array(sorted(big), np.int64)
        sizes = np.array([big[o] for o in off.tolist()], np.int64)
        if len(_BIG_ARRAYS) >= 16:
            _BIG_ARRAYS.clear()
        hit = _BIG_ARRAYS[key] = ((big, off, sizes), (off + 1, sizes - 1))
    return hit[0] + hit[1] if with_live else hit[0]


class _Plan:
    """Which nodes a sweep restricted to ``inputs`` (``grad``, ``backward(inputs=...)``) runs, as torch's
    engine decides: a tensor *leads* to the inputs if it is one of them or an operand of it does; a node *runs*
    (its backward, custom Function backward or big row) if one of its operands leads to the inputs. Hooks and
    ``retain_grad`` fire only on tensors that lead. Nodes that do not run are not freed either.

    ``leads``/``runs``: ids of tensors; ``blocked``: ``{tape id: [rows of recorded nodes that do not run]}``;
    ``captured``: ``{id: cotangent}`` of requested non-leaf tensors, taken before their hooks ran (torch
    returns the gradient as it reaches the tensor)."""

    __slots__ = ("leads", "runs", "blocked", "captured")

    def __init__(self, roots, targets, run_targets=False, nodes=None):
        # ``nodes``: the graph's ``{id: (tensor, operands as recorded)}`` when the caller walked it already
        if nodes is None:
            nodes = graph_nodes(roots)
        leads = {k for k, t in targets.items() if t._op is None}
        runs = set()
        blocked = {}
        for t, inputs in sorted(nodes.values(), key=_node_order):  # operands before their consumers
            key = id(t)
            leading = False
            for i in inputs:  # (a loop, not any(generator): this runs per node of every restricted sweep)
                if i is not None and id(i) in leads:
                    leading = True
                    break
            if leading or (run_targets and _requested(t, targets)):
                runs.add(key)
                leads.add(key)
            else:
                if _requested(t, targets):  # (a Function's outputs share its node: hooks of them all fire)
                    leads.add(key)
                if t._tape is not None:
                    blocked.setdefault(t._tape.id, []).extend(range(t._row, t._row + t._nrows))
        self.leads = leads
        self.runs = runs
        self.blocked = blocked
        self.captured = {}


def plan_for(roots, targets, run_targets=False, nodes=None):
    """The ``_Plan`` of a sweep restricted to ``targets``, or None where it would restrict nothing (see
    ``_restricts_nothing``). ``nodes``: the graph's nodes, as ``_Plan`` takes them, where the caller walked it
    already."""
    if not targets:
        return None
    if not run_targets and _restricts_nothing(roots, targets):
        return None
    return _Plan(roots, targets, run_targets, nodes)


def _restricts_nothing(roots, targets):
    """Whether every output is on one tape whose imported tensors that require grad are all requested leaves,
    so that every node of the graph leads to the inputs and runs (a Hessian-vector product's ``grad(f(x), x)``,
    a training step's ``grad(loss, params)``). That is checked on the tape's import list, without the walk over
    the graph."""
    tape = None
    for t in roots:
        if t._op is None or (tape is not None and t._tape is not tape):
            return False
        tape = t._tape
    if not isinstance(tape, Tape):
        return False
    for t in targets.values():
        if t._op is not None:
            return False
    for ref in tape.ext_refs:  # (tape.externs' tensors, without the triples)
        t = ref() if type(ref) is weakref.ref else ref
        if t is None or t._op is not None or targets.get(id(t)) is not t:
            return False
    return True


def _requested(t, targets):
    """Whether ``t``'s node is requested: ``t`` is, or (a custom Function's outputs share one node) another
    output of the same call is."""
    if id(t) in targets:
        return True
    if t._op.code == K.PYTHON:
        if any(o is not None and id(o) in targets for o in t._ctx.outputs):
            return True
        nodes = [o for o in t._ctx.outputs if o is not None]
    else:
        nodes = [t]
    # a write under no_grad gave a requested tensor an identity node over its old one (views._rehome), one per
    # write; its node is still the one before them all, as torch's grad_fn is unchanged by such writes
    return any(_pre_write_node(r) is n for r in targets.values() if r._op is not None for n in nodes)


def free_swept(sweeps):
    """Free what the sweeps visited (``retain_graph=False``): their rows' saved values, imports and the
    custom Functions' contexts; each tape retires, so the next forward starts a fresh tape and sweeps cover
    only that graph's arena."""
    for s in sweeps:
        freed = s.tape.freed_flags()
        m = s.visited.shape[0] - 1
        freed[:m] |= s.visited[:m]
        tape = s.tape
        if isinstance(tape, Tape):  # (Tape.imports' clear, without making the view; a replayed tape is a Tape)
            tape.import_at.clear()
            tape.import_refs.clear()
        else:
            tape.imports.clear()  # (a device tape's is a dict; a replayed tape's a view)
        for rec in s.functions:
            free_function(rec)
        retire(s.tape)


def free_function(rec):
    """A custom Function node's saved state is freed (its sweep did not retain the graph); a node that stands
    for a whole graph (``double_backward.SweepBackward``) frees that graph's rows too, as torch's engine frees
    the nodes of the first-order graph that a double backward runs through."""
    rec.ctx._freed = True
    free_graph = rec.ctx.__dict__.get("free_graph")
    if free_graph is not None:
        free_graph()


def kernel_sweep(roots, seeds, targets, retain_graph, run_targets=False, swept=None):
    """Compiled reverse sweep. ``roots``/``seeds``: output tensors and their cotangent arrays.

    ``targets``: ``{id: tensor}`` of tensors whose cotangent the caller wants (``grad`` inputs,
    ``backward(inputs=...)``); when given, only the nodes on a path to them run (see ``_Plan``). Returns
    ``(leaf_grads, target_grads)``: a ``LeafGrads`` and a dict of ``id -> (tensor, array)``. ``run_targets``: the
    requested tensors' own nodes run too (``backward(inputs=...)``: torch's engine marks them needed; ``grad`` only
    captures).
    ``swept``: a list that receives the per-tape sweep states (their ``visited`` rows).
    """
    sweeps = {}
    heap = []
    leaf_grads = LeafGrads()
    plan = plan_for(roots, targets, run_targets)

    def state_of(tape):
        s = sweeps.get(tape.id)
        if s is None:
            if refused_tapes and tape in refused_tapes:
                raise refused_tapes.error()
            s = tape.sweep_state(plan) if not isinstance(tape, Tape) else _TapeSweep(tape, plan)
            sweeps[tape.id] = s
            heapq.heappush(heap, -tape.id)
        return s

    for t, g in zip(roots, seeds):
        if t._op is None:
            _add_leaf(leaf_grads, t, g)
        else:
            state_of(t._tape).seed(t, g)

    while heap:
        s = sweeps[-heapq.heappop(heap)]
        if s.on_device:  # a CUDA tape: swept on its device, cotangents handed across (ad/cuda/backward.py)
            s.run(leaf_grads, state_of)
            continue
        _sweep_tape(s)
        hand_over(s, leaf_grads, state_of)

    target_grads = {}
    for key, t in targets.items():
        if t._op is None:
            continue
        s = sweeps.get(t._tape.id)
        g = plan.captured.get(key) if plan is not None else None
        if g is None:
            g = s.grad_of(t) if s is not None else None
        if g is not None:
            target_grads[key] = (t, g)
    if not retain_graph:
        free_swept(sweeps.values())
    if swept is not None:
        swept.extend(sweeps.values())
    for s in sweeps.values():
        if s.on_device:
            s.release(retain_graph)
            continue
        s.release()  # back to the pool; reused only once no leaf .grad views it any more
    return leaf_grads, target_grads


def hand_over(s, leaf_grads, state_of):
    """Hand the cotangents of the tensors that swept tape ``s`` imports on, newest first, down to where the sweep
    stopped: a leaf's into ``leaf_grads``, a recorded tensor's as a seed into the sweep state of its own, older
    tape (``state_of(tape)``). ``kernel_sweep`` calls it after each tape, ``sweep_leaves`` after its one."""
    tape = s.tape
    hand = getattr(tape, "hand_leaf_grads", None)  # (ad.compile's replayed tapes: ad/compile_replay.py)
    if hand is not None and hand(s, leaf_grads):
        return
    leaf_tensors = leaf_grads.tensors
    leaf_arrays = leaf_grads.arrays
    ext_rows = tape.ext_rows  # (tape.externs, read as its three lists)
    ext_offs = tape.ext_offs
    ext_refs = tape.ext_refs
    k = s.nexterns - 1
    lowest = s.lowest
    live = memoryview(s.live)  # (indexing a memoryview: a Python int, without making a numpy scalar)
    cot = s.cot
    while k >= 0:
        if ext_rows[k] < lowest:
            break
        off = ext_offs[k]
        t = ext_refs[k]
        k -= 1
        if not live[off]:
            continue
        if type(t) is weakref.ref:  # a recorded tensor of an older tape (Tape.import_tensor)
            t = t()
            if t is None:
                raise dead_import_error()
        data = t._data
        g = cot[off : off + data.size]
        if t._op is None:
            key = id(t)
            if key not in leaf_tensors and g.dtype is data.dtype:
                # the common case, inlined (an entry that is not owned: see LeafGrads)
                leaf_tensors[key] = t
                leaf_arrays[key] = g if data.ndim == 1 else g.reshape(data.shape)
            else:
                _add_leaf(leaf_grads, t, g.reshape(data.shape))
        else:
            home = state_of(t._tape)
            home.seed(t, g.astype(t._data.dtype, copy=False))


def sweep_leaves(root, seed, retain_graph):
    """``kernel_sweep`` from one output ``root`` (cotangent array ``seed``) on a CPU ``Tape`` whose imported tensors
    that require grad are all requested leaves (``_restricts_nothing``, which the caller checked): no plan, no
    other tape reached, so none of ``kernel_sweep``'s bookkeeping of several tapes. Returns its ``leaf_grads``.
    (A compiled Hessian-vector product's second ``grad``: ad/compile_program.py.)"""
    s = _TapeSweep(root._tape)
    s.seed(root, seed)
    _sweep_tape(s)
    leaf_grads = LeafGrads()
    hand_over(s, leaf_grads, _no_other_tape)
    if not retain_graph:
        free_swept((s,))
    s.release()  # back to the pool; reused only once no leaf .grad views it any more
    return leaf_grads


def _no_other_tape(tape):
    raise RuntimeError("internal error: sweep_leaves reached a tensor of another tape")


class LeafGrads:
    """The leaves' cotangents of a compiled sweep: ``{id(leaf): (leaf, cotangent array, owned)}`` as a dict
    would hold them (``owned``: the array is this backward's own sum of several contributions, which may be
    added into), kept as two dicts (``tensors``, ``arrays``, filled together, in the same order) and the set of
    owned ids. Why: a tuple per leaf is an object the garbage collector counts, and a many-leaf graph's
    backward made one per parameter (W6: 2,000 per step, a fifth of the step's tracked allocations; every 700
    start a collection). Reads build the tuple of an entry (``get``, ``[]``, ``values``, ``items``); the hot
    readers and writers use ``pairs`` and the two dicts directly."""

    __slots__ = ("tensors", "arrays", "owned", "bulk")

    def __init__(self):
        self.tensors = {}
        self.arrays = {}
        self.owned = set()
        # ``(leaves, arrays)``: the two lists ``fill`` put into the empty dicts (a replayed many-leaf step's
        # hand-over), for the caller's C-level passes over them; None once anything else may have changed them
        self.bulk = None

    def fill(self, leaves, arrays):
        """Fill the empty dicts with distinct ``leaves`` and their cotangents ``arrays`` (numpy arrays, not
        owned), in order."""
        ids = list(map(id, leaves))
        self.tensors.update(zip(ids, leaves))
        self.arrays.update(zip(ids, arrays))
        self.bulk = (leaves, arrays)

    def _entry(self, key):
        return (self.tensors[key], self.arrays[key], key in self.owned)

    def get(self, key, default=None):
        if key in self.tensors:  # (_entry, inlined: ``grad`` reads each input's entry this way)
            return (self.tensors[key], self.arrays[key], key in self.owned)
        return default

    def __getitem__(self, key):
        return self._entry(key)

    def __setitem__(self, key, entry):
        self.bulk = None
        self.tensors[key] = entry[0]
        self.arrays[key] = entry[1]
        if len(entry) > 2 and entry[2]:
            self.owned.add(key)
        else:
            self.owned.discard(key)

    def update(self, pairs):
        for key, entry in pairs:
            self[key] = entry

    def __contains__(self, key):
        return key in self.tensors

    def __len__(self):
        return len(self.tensors)

    def __iter__(self):
        return iter(self.tensors)

    def keys(self):
        return self.tensors.keys()

    def values(self):
        return [self._entry(key) for key in self.tensors]

    def items(self):
        return [(key, self._entry(key)) for key in self.tensors]

    def pairs(self):
        """``(leaf, cotangent)`` of each entry, in order (no tuple kept)."""
        return zip(self.tensors.values(), self.arrays.values())


def leaf_pairs(leaf_grads):
    """``(leaf, cotangent)`` of each entry of a sweep's leaf gradients (a ``LeafGrads`` or a dict of tuples)."""
    if type(leaf_grads) is LeafGrads:
        return leaf_grads.pairs()
    return ((entry[0], entry[1]) for entry in leaf_grads.values())


def _add_leaf(leaf_grads, t, g):
    """Sum a leaf's cotangents. The first one is kept as a view of this backward's cotangent arena (fresh
    memory that nothing else writes), so the common single-contribution leaf costs no copy."""
    key = id(t)
    prev = leaf_grads.get(key)
    dt = t._data.dtype
    if prev is None:
        if g.dtype != dt:
            g = g.astype(dt)
        leaf_grads[key] = (t, g.reshape(t._data.shape), False)
    elif prev[2]:
        prev[1][...] += g.reshape(t._data.shape)
    else:
        total = np.array(prev[1], dtype=dt, copy=True)  # an array even for 0-d leaves
        total += g.reshape(t._data.shape)
        leaf_grads[key] = (t, total, True)


def _sweep_tape(s):
    """Run the compiled sweep over one tape, stopping at rows whose tensors have hooks."""
    tape = s.tape
    program = getattr(tape, "backward_program", None)  # (a replayed dense step's: ad/compile_backward.py)
    if program is not None and program.run(s):
        return
    hook_rows = sorted([r for r in tape.hook_rows if r <= s.start], reverse=True) if tape.hook_rows else ()
    freed = tape.freed_flags()
    start = s.start
    # the kernel's views of the rows, once per sweep: a tape with hook rows was retired (_TapeSweep), so the
    # Python code between the kernel calls records nothing on it
    arrays = tape.arrays() + (np.zeros(3, np.int64),)
    try:
        _sweep_stretches(s, tape, hook_rows, freed, start, arrays)
    finally:
        del arrays  # release the buffer exports


def _sweep_stretches(s, tape, hook_rows, freed, start, arrays):
    chain_low = tape.nrows + 1  # the lowest row of the last chain swept in one pass (ad/chain_backward.py)
    for h in hook_rows:
        if h >= chain_low:
            continue
        _run_kernel(s, start, h + 1, freed, arrays)
        if h < s.lowest:
            return  # nothing at or below this row is reached
        handlers = [r() for r in tape.hook_rows.get(h, ())]
        consumed = False
        plan = s.plan
        for t in handlers:  # tensors' hooks first: a Function's backward sees the hooked gradients
            if isinstance(t, Tensor) and t._op is None:  # a leaf with gradient-ready hooks (Tape.import_tensor)
                on_leaf_ready(s, t, h)
                continue
            if isinstance(t, Tensor) and s.live[t._off]:
                if plan is not None and id(t) not in plan.leads:
                    if t._row == h and h in tape.python_rows:
                        consumed = True  # a big row off the paths to the inputs: not run
                    continue
                if t._hooks or t._retains_grad:  # (else _arrive does nothing)
                    _arrive(s, t)
                if t._row == h and h in tape.python_rows and not consumed:  # (once, when aliases share the row)
                    chain = chain_rows(s, t, h) if plan is None else None
                    if chain is not None:
                        sweep_chain(s, chain, freed, big_row_head)
                        chain_low = chain[-1][0]
                    elif plan is None or id(t) in plan.runs:
                        _vectorized_row(s, t, h, freed)
                    consumed = True
        for rec in handlers:
            # (a call registers every output's row and runs once, at the first reached: see function._record)
            if rec is not None and not isinstance(rec, Tensor) and not any(r is rec for r in s.functions):
                reached = any(o is not None and o._tape is tape and s.live[o._off] for o in rec.outputs)
                if reached and (plan is None or any(o is not None and id(o) in plan.runs for o in rec.outputs)):
                    for o in rec.outputs:  # (the call sits at its last output's row: earlier outputs' hooks)
                        if o is None or o._tape is not tape:
                            continue
                        if s.live[o._off]:
                            _arrive(s, o)
                        elif o._hooks:
                            g = hooks_on_undefined(o)
                            if g is not None:
                                s.cot[o._off : o._off + o._data.size] = g._data.reshape(-1)
                                s.live[o._off] = 1
                    rec.kernel_backward(s)
                elif reached and any(o is not None and id(o) in plan.leads for o in rec.outputs):
                    # a requested node reached but not run (grad(inputs=[an output])): torch's engine still calls
                    # its tensor pre-hooks, those of its outputs without a gradient with None
                    for o in rec.outputs:
                        if o is not None and o._tape is tape and o._hooks and not s.live[o._off]:
                            if id(o) not in s.hooked:
                                s.hooked.add(id(o))
                                hooks_on_undefined(o)
        if not consumed and h in tape.python_rows and s.live[_row_out(tape, h)]:
            # a reached big row whose tensor is gone: the kernel must not sweep it (it may read values that
            # were never copied into the arena); every handle on a node registers itself (see _strip, _rebase)
            raise RuntimeError(f"internal error: big row {h} of tape {tape.id} was reached but its tensor is gone")
        start = min(h, chain_low) - 1 if consumed else h
    _run_kernel(s, start, 0, freed, arrays)


# distributed (issue 14): ``ad.autograd.sweep_hooks.leaf_ready(sweep, leaf, row)``, which runs a leaf's
# gradient-ready hooks mid-sweep once its cotangent is complete (set there: the engine does not import autograd)
on_leaf_ready = None


def _arrive(s, t):
    """Run ``t``'s hooks and ``retain_grad`` on its cotangent (once per sweep). A requested tensor's gradient
    is captured before its hooks when its node runs, after them when it does not (torch's engine calls the
    tensor pre-hooks of a node it does not execute before capturing)."""
    if not (t._hooks or t._retains_grad) or id(t) in s.hooked:
        return
    s.hooked.add(id(t))
    plan = s.plan
    if plan is not None and id(t) in plan.runs:
        plan.captured.setdefault(id(t), s.grad_of(t).copy())
    _apply_tensor_hooks(s, t)


# allow_mutation_on_saved_tensors (ad/autograd/saved_mutation.py): tape id -> the modified flags the kernel reads
# for that tape instead of ``tape.modified`` (cleared where an arena region keeps its saved value for good); and
# the tapes recorded in a context already left, which refuse to be swept (a weak set with ``error()``; None until
# a context was used): checked where a sweep takes a tape (``kernel_sweep``'s ``state_of``, ``graph_sweep``)
kernel_flags = {}
refused_tapes = None


def _run_kernel(s, start, stop, freed, arrays):
    """The kernel over rows ``start`` down to ``stop``; ``arrays``: ``tape.arrays()`` and a status array."""
    if start < stop:
        return
    tape = s.tape
    rows, attrs, aux, status = arrays
    rows = rows_to_sweep(s, rows, start, stop)
    if rows is None:
        return
    result = reverse_sweep(
        rows,
        attrs,
        aux,
        tape.values,
        s.cot,
        s.live,
        s.visited,
        freed,
        tape.modified if not kernel_flags else kernel_flags.get(tape.id, tape.modified),
        SAVES,
        start,
        stop,
        s.lowest,
        status,
        s.big_off,
        s.big_n,
    )
    if result < 0:
        if status[0] == FREED:
            raise RuntimeError(FREED_MESSAGE)
        raise RuntimeError(_modified_message(tape, int(status[1]), int(status[2])))
    s.lowest = result


def planned_rows(s, rows):
    """The rows the kernel sweeps for ``s``: with a ``_Plan``, rows of nodes off the paths to the inputs get
    the arena's spare last slot as output offset, which never holds a cotangent, so the kernel skips them (and
    does not mark them visited)."""
    if s.plan is not None:
        blocked = s.plan.blocked.get(s.tape.id)
        if blocked:
            if s.rows_view is None or s.rows_view.shape[0] != rows.shape[0]:
                s.rows_view = s.tape.masked_rows(rows, blocked, s.tape.used)
            rows = s.rows_view
    return rows


def rows_to_sweep(s, rows, start, stop):
    """``planned_rows`` for a kernel call over rows ``start`` down to ``stop``, or None where that call would run
    no row: it starts below ``s.lowest``, or every row from ``start`` down to ``s.lowest`` is masked by the plan
    (the kernel skips them and returns ``s.lowest`` unchanged). Rows masked only outside ``start..stop`` need no
    masked copy (a Hessian-vector product's ``grad(f(xd), xd)`` masks only ``make_dual``'s row, the last)."""
    if start < stop or start < s.lowest:
        return None
    blocked = s.plan.blocked.get(s.tape.id) if s.plan is not None else None
    if not blocked:
        return rows
    if len(blocked) > 16:  # (bounded Python work; a long list is rare: masked rows as before)
        return planned_rows(s, rows)
    lo = stop if stop > s.lowest else s.lowest
    inside = reached = 0
    for r in blocked:
        if stop <= r <= start:
            inside += 1
            if r >= lo:
                reached += 1
    if inside == 0:
        return rows
    return None if reached == start - lo + 1 else planned_rows(s, rows)


def _apply_tensor_hooks(s, t):
    n = t._data.size
    region = s.cot[t._off : t._off + n]
    g = wrap_array(region.reshape(t._data.shape).copy())
    g = run_hooks(t, g)
    region[...] = g._data.reshape(-1)
    if t._retains_grad:
        _retain(t, g)


def run_hooks(t, g):
    """Apply ``t``'s hooks to cotangent tensor ``g``; a hook's non-None return replaces it. ``g`` is None for
    an output of a running multi-output node that got no gradient (torch calls its hooks with None)."""
    if t._hooks:
        expected = t.shape if g is None else g.shape
        for hook in list(t._hooks.values()):
            out = hook(g)
            if out is not None:
                if not isinstance(out, Tensor):
                    raise TypeError(f"hook returned an object of type {type(out).__name__}; expected a Tensor or None")
                if out.shape != expected:
                    raise RuntimeError(
                        f"hook 'hook' has changed the size of value: expected {list(expected)}, got {list(out.shape)}"
                    )
                g = out
    return g


def hooks_on_undefined(t):
    """The hooks of an output that got no gradient, called with None; a tensor one returns becomes its gradient."""
    return run_hooks(t, None)


def _retain(t, g):
    d = t.__dict__
    if d.get("_retain_via_prev"):
        return  # retained at its node before a write under no_grad (views._rehome), which stores into ``t``
    t = d.get("_retain_into", t)
    if g._dev is not None:  # a CUDA cotangent: copied and added on its device
        t._grad = g if g._rg else g.detach().clone() if t._grad is None else (t._grad + g).detach()
    elif t._grad is None:
        t._grad = wrap_array(g._data.copy()) if not g._rg else g
    else:
        t._grad = t._grad + g if g._rg else wrap_array(t._grad._data + g._data)


# ---------------------------------------------------------------------------------------------------------
# walking the Python graph (both sweeps, and ad/differentiable_sweep.py)


def _order_key(t):
    return (t._tape.id, t._row + t._nrows - 1)


def _inputs_of(t):
    """``t``'s operands as they were when ``t`` was recorded: an operand changed in place since has become a
    newer node (recorded after ``t``); its ``_prev`` chain leads back to the version ``t`` used."""
    inputs = t._inputs
    for i in inputs:
        if i is not None and i._prev is not None:
            break
    else:
        return inputs  # the common case: no operand was modified in place
    key = _order_key(t)
    resolved = []
    for i in inputs:
        while i is not None and i._prev is not None and (i._tape is None or _order_key(i) > key):
            i = i._prev
        resolved.append(i)
    return tuple(resolved)


def graph_nodes(roots, admit=None):
    """``{id: (tensor, its operands as recorded)}`` of the recorded tensors reachable from ``roots`` through
    operands that require grad (the Python graph a differentiable sweep or a ``_Reach`` walks).

    ``admit(t)``, if given, is asked of each node as the walk reaches it; a false answer stops the walk, which
    returns None (a caller that refuses some graphs stops at the first refusal instead of walking them whole)."""
    nodes = {}
    stack = [t for t in roots if t._op is not None]
    while stack:
        t = stack.pop()
        if id(t) in nodes:
            continue
        if admit is not None and not admit(t):
            return None
        inputs = t._inputs
        for i in inputs:  # (_inputs_of's test, inlined: an operand changed in place since needs it)
            if i is not None and i._prev is not None:
                inputs = _inputs_of(t)
                break
        nodes[id(t)] = (t, inputs)
        for inp in inputs:
            if inp is not None and inp._rg and inp._op is not None and id(inp) not in nodes:
                stack.append(inp)
    return nodes


def _node_order(node):
    t = node[0]
    return (t._tape.id, t._row + t._nrows - 1)  # (_order_key, inlined: a sort key runs per node)
