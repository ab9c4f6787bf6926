"""The fused replay of a training step: a replayed call (``ad/compile_replay.py``) whose result is a scalar loss
runs its forward rows and the loss's reverse sweep in one compiled call (``kernels/fused_step.py``), and the
next plain ``backward()`` on that loss hands the gradients it left to the leaves without sweeping.

It is a pure speed-up: the replay still writes every row's value into the arena and returns the same tensors,
so anything else (``retain_graph``'s second backward, ``gradient=`` other than ones, ``inputs=``, ``grad``,
``create_graph``, hooks or ``retain_grad`` registered after the call, an in-place write since, a graph freed by
another backward, a leaf that is not a leaf) takes the generic sweep, which computes the same gradients from
those values.

Data structures:

- ``FusedPlan`` (``_Template.fused``; ``plan`` makes it once per template, None where the template does not
  qualify): ``part_off`` (per row, where the forward saves the row's partials, -1: none), ``part_size``, the
  loss's arena offset, a scratch buffer for the partials (taken and put back per call, so two threads
  replaying the same template each get their own), and ``last``: whether the last fused call's gradients
  were used (a step whose loss is not differentiated, an evaluation loop, stops fusing after one call and
  retries every ``RETRY_EVERY`` replays).
- ``FusedGrads`` (``Tape.fused`` of a replayed tape, until a backward takes or passes it): the cotangent arena,
  ``live`` and ``visited`` flags the kernel left, as ``engine.kernel_sweep``'s would be after sweeping.
"""

import operator
import weakref

import numpy as np

from kernels import opcodes as K
from kernels.cpu import SAVES

from . import engine
from .tape import POOL, Tape, empty_arena

_MODIFIED = Tape.modified  # (the slot itself, under _ReplayTape's guarded property)
RETRY_EVERY = 16  # replays between two fused attempts after a fused call's gradients went unused
_UINT8 = np.dtype(np.uint8)


class FusedPlan:
    __slots__ = ("part_off", "part_size", "root_off", "scratch", "zero_rows", "status", "last")


class FusedGrads:
    __slots__ = ("cot", "live", "visited", "root_off", "used")


def plan(tpl):
    """The fused plan of a finished template, or None: the result is not one scalar node that requires grad,
    or a row needs Python or threads (big rows, hooks, extern slots, fused runs of big rows)."""
    from kernels import replay

    if tpl.hook_rows or tpl.python_rows or tpl.big_regions or tpl.externs_in or tpl.eager_nodes:
        return None
    if tpl.segments != [("k", 0, tpl.nrows, ())] or np.any(tpl.flags & replay.FLAG_FUSED):
        return None
    root = _loss_node(tpl)
    if root is None:
        return None
    rows = tpl.rows
    unary = np.array([replay.is_elementwise(c) and not replay.is_binary(c) for c in range(256)])
    saving = unary[rows[:, 0] & K.CODE_MASK] & ((rows[:, 0] & K.XRG) != 0) & ((tpl.flags & replay.FLAG_SKIP) == 0)
    sizes = np.where(saving, rows[:, 4], 0)
    ends = np.cumsum(sizes)
    fz = FusedPlan()
    fz.part_off = np.where(saving, ends - sizes, -1).astype(np.int64)
    fz.part_size = int(ends[-1]) if len(ends) else 0
    fz.root_off = root.off
    fz.scratch = None
    fz.zero_rows = np.zeros(tpl.nrows + 1, np.uint8)
    fz.status = np.zeros(3, np.int64)
    fz.last = None
    return fz


def _loss_node(tpl):
    spec = tpl.out
    if spec[0] == "s" and len(spec[2]) == 1:  # (a phase before a backward inside fn: ad/compile_program.py)
        spec = spec[2][0]
    if spec[0] != "n":
        return None
    nd = tpl.nodes[spec[1]]
    if nd.n != 1 or not nd.rg:
        return None
    return nd


def run(tpl, fz, tape, aux):
    """The template's rows forwards and the loss's sweep, into ``tape``'s arena; ``tape.fused`` set."""
    from kernels.fused_step import forward_backward

    used = tape.used
    part = fz.scratch
    fz.scratch = None
    if part is None:
        part = np.empty(max(fz.part_size, 1), tape.dtype)
    fg = FusedGrads()
    fg.cot = empty_arena(tape.dtype, used + 1)
    fg.live = empty_arena(_UINT8, used + 1)
    fg.visited = np.empty(tpl.nrows + 1, np.uint8)
    fg.root_off = fz.root_off
    fg.used = [False]
    status = forward_backward(
        tpl.rows,
        tpl.attrs,
        aux,
        tape.values,
        tpl.flags,
        part,
        fz.part_off,
        fz.root_off,
        fg.cot,
        fg.live,
        fg.visited,
        fz.zero_rows,
        _MODIFIED.__get__(tape),  # (the flags as they are: the guard of a replay made just now has nothing to flag)
        SAVES,
        fz.status,
        used,
    )
    fz.scratch = part
    fz.last = fg.used
    if status == 0:
        tape.fused = fg


def wanted(tpl, fz):
    """Whether this replay fuses: the last fused call's gradients were used (or none was made yet)."""
    last = fz.last
    return last is None or last[0] or tpl.replays % RETRY_EVERY == 0


class _Swept:
    """What ``engine.free_swept`` reads of a sweep."""

    __slots__ = ("tape", "visited", "functions")

    def __init__(self, tape, visited):
        self.tape = tape
        self.visited = visited
        self.functions = ()


def take(root, seed, retain_graph):
    """``engine.kernel_sweep``'s ``leaf_grads`` for ``backward()`` of ``root`` with cotangent ``seed`` (a
    tensor), from the gradients a fused replay left, or None where they do not apply (the caller sweeps)."""
    tape = root._tape
    if not isinstance(tape, Tape):  # (a replayed tape is a Tape subclass: ad/compile_replay.py)
        return None
    fg = tape.fused
    if fg is None:
        return None
    tape.fused = None  # (taken or not: anything after this backward sweeps)
    if (
        root._off != fg.root_off
        or tape.dirty
        or tape.hook_rows
        or tape.python_rows
        or (tape.freed.shape[0] and tape.freed.any())
        or seed._data.item() != 1.0
    ):
        return None
    cot, live = fg.cot, fg.live
    leaf_grads = _leaf_grads(tape, cot, live)
    if leaf_grads is None:
        return None
    fg.used[0] = True
    if not retain_graph:
        engine.free_swept((_Swept(tape, fg.visited),))
    POOL.give(cot)
    POOL.give(live)
    return leaf_grads


_DATA = operator.attrgetter("_data")


def _leaf_grads(tape, cot, live):
    """The externs' gradients from cotangent arena ``cot`` (``live``: which were reached), as ``take`` hands
    them on, or None where an extern reached is not a leaf (the generic sweep carries on into its graph)."""
    spec = tape.leaves  # (the replay's distinct leaves of the arena's dtype: C-level passes, none per leaf)
    if spec is not None:
        leaves, datas, tpl = spec
        if all(map(operator.is_, map(_DATA, leaves), datas)) and live[tpl.extern_index].all():
            # (newest first, as kernel_sweep hands them on; a leaf never becomes a non-leaf)
            leaf_grads = engine.LeafGrads()
            leaf_grads.fill(leaves[::-1], tpl.extern_grads(cot, datas)[::-1])
            return leaf_grads
    ext_offs = tape.ext_offs  # (tape.externs, read as its lists)
    ext_refs = tape.ext_refs
    for off, t in zip(ext_offs, ext_refs):
        if live[off] and (type(t) is weakref.ref or t._op is not None):
            return None  # a tensor of another graph: its tape is swept next (the generic sweep does that)
    leaf_grads = engine.LeafGrads()
    for k in range(len(ext_offs) - 1, -1, -1):  # (newest first, as kernel_sweep hands them on)
        off = ext_offs[k]
        t = ext_refs[k]
        if not live[off]:
            continue
        data = t._data
        g = cot[off : off + data.size].reshape(data.shape)
        if id(t) not in leaf_grads.tensors and g.dtype is data.dtype:
            leaf_grads.tensors[id(t)] = t
            leaf_grads.arrays[id(t)] = g
        else:
            engine._add_leaf(leaf_grads, t, g)
    return leaf_grads
