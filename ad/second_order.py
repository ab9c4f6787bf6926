"""Forward over reverse in one compiled sweep (issue 12): backward inside a dual level, without recording.

``grad`` (or ``backward``) called inside one active dual level, without ``create_graph``, on a graph whose
values carry tangents: the gradients must carry tangents too (the tangent of the gradient along ``v`` is the
Hessian-vector product ``H v``). The differentiable sweep (``graph_sweep``) gets them by running every
reverse rule as ``ad`` ops on dual tensors, a few small ops per node. ``tangent_sweep`` computes the same with
``kernels.second_order.tangent_reverse_sweep``: one kernel call per stretch of small rows, beside four arenas
of the tape's layout:

- ``tape.values`` (the values) and ``tvals`` (their tangents, gathered here from ``Tensor._tangents`` of the
  graph's nodes and of the tape's imported tensors; zero for a tensor without one);
- ``s.cot`` (cotangents, as ``engine.kernel_sweep``) and ``tcot`` (their tangents);

``tvals``, ``s.cot`` and ``tcot`` are views of one pooled buffer (``engine._TapeSweep.allocate``), with the sweep's
``live`` flags at its end.

A Hessian-vector product called in a loop records the same rows at the same offsets on a fresh tape each time:
``_Layout`` keeps, per such layout (``_layout_key``: the rows and aux, the imports that take cotangents, the big
regions and rows, where the roots and the inputs sit), what a sweep works out before its first row: the plan as
rows, the kernel's copy of the rows, and the last sweep's buffer with its views and the byte ranges to clear
(``TangentSweep.release`` leaves it there instead of in the pool). The walk over the graph still runs each time:
it checks what the rows do not show (hooks, custom Functions, tapes, in-place changes) and gathers the tangents.

Big rows (``tape.BIG_ROW``: matmul with a large operand, large elementwise rows) are swept here in Python,
with numpy's matmul and ``second_order.elementwise_tangent_chunk``; their big operands' values and tangents are
read from the tensors (they are not copied into the arenas).

It returns ``None`` (the caller then runs the differentiable sweep, from scratch) whenever the graph needs
what only that sweep does: several tapes, custom Functions, hooks or ``retain_grad`` on the graph's tensors,
an operand modified in place, multi-row nodes, or a row whose opcode has no compiled second-order rule
(``SECOND_ORDER``). The gradients it returns are fresh tensors (copies: the buffer goes back to the pool at
once, for the next call) whose tangents are the tangent cotangents.
"""

import weakref

import numpy as np

from kernels import opcodes as K
from kernels.cpu import FREED, SAVES, zero_byte_ranges
from kernels.second_order import SECOND_ORDER, UNSUPPORTED, elementwise_tangent_chunk, tangent_reverse_sweep

from . import engine
from .forward import _fw, set_tangent
from .tape import _FIELD, BIG_ROW, held
from .tensor import Tensor, _new


class TangentSweep(engine._TapeSweep):
    """A sweep's state with the orientation of its mixed second partials (``transposed``: see
    ``kernels.second_order.tangent_reverse_sweep``) and, beside the cotangents ``cot`` and the ``live`` flags,
    the tangent arenas ``tcot`` and ``tvals``: all four are views of the sweep's one pooled buffer
    (``engine._TapeSweep.allocate``), zero outside the big regions. A sweep of a kept ``_Layout`` takes that
    buffer, its views and ``_pair``'s (``pairs``) from the layout's ``spares`` when the last sweep left them there
    (cleared by the byte ranges kept with them), and leaves them there again at ``release``."""

    __slots__ = ("transposed", "tcot", "tvals", "layout", "spare", "pairs")

    ARENAS = 3

    def __init__(self, tape, plan=None, layout=None):
        self.layout = layout  # a ``_Layout`` whose spare buffer this sweep may take and leave for the next one
        self.spare = None
        self.pairs = {}  # (offset, size) -> ``_pair``'s view of the buffer
        super().__init__(tape, plan)

    def allocate(self, used, live_off, live_n):
        layout = self.layout
        if layout is not None and layout.spares:
            try:
                spare = layout.spares.pop()  # (atomic: another thread's sweep of the layout takes none, or another)
            except IndexError:
                spare = None
            if spare is not None:
                self.spare = spare
                buf, self.cot, self.tcot, self.tvals, self.live, raw, ranges, self.pairs = spare
                self.buf = buf
                if type(ranges) is list:  # (as engine._TapeSweep.allocate clears a pooled buffer)
                    for lo, hi in ranges:
                        raw[lo:hi] = 0
                else:
                    zero_byte_ranges(raw, ranges)
                return buf
        buf = super().allocate(used, live_off, live_n)
        self.tcot, self.tvals = buf[used : 2 * used], buf[2 * used : 3 * used]
        return buf

    def release(self):
        layout = self.layout
        spare = self.spare
        kept = layout is not None and layout.spares is not None
        if spare is None and kept and not layout.spares and self.buf.nbytes <= _SPARE_BYTES:
            # kept for the layout's next sweep, with its views and the byte ranges to clear (the pool's take, the
            # views and the ranges' lookup cost about as much as the kernel that sweeps a small graph)
            buf = self.buf
            used = self.cot.shape[0]
            ranges = engine._zero_ranges(used, 3, buf.itemsize, self.big_off, self.big_n, *_live_regions(self))
            spare = (buf, self.cot, self.tcot, self.tvals, self.live, buf.view(np.uint8), ranges, self.pairs)
        if spare is not None:
            layout.spares.append(spare)
            self.buf = self.cot = self.live = self.tcot = self.tvals = self.spare = self.pairs = None
            return
        self.tcot = self.tvals = self.pairs = None  # (views of the buffer: the pool reuses one nothing views)
        super().release()


_SPARE_BYTES = 4 << 20  # a layout keeps its sweep's buffer up to this size (a bigger one goes back to the pool)
_LAYOUT_ROWS = 4096  # graphs of more rows are not kept (their key and rows copy cost memory; the sweep dominates)


def _live_regions(s):
    """The ``live`` flag regions left as they are (``engine.big_region_arrays``' last two arrays) of sweep ``s``."""
    if not s.big:
        return engine._NO_REGIONS, engine._NO_REGIONS
    return engine.big_region_arrays(s.tape.big_regions, True)[3:]


class _Unsupported(Exception):
    """The graph needs the differentiable sweep."""


def tangent_sweep(roots, seeds, targets, retain_graph, run_targets=False):
    """Compiled forward-over-reverse sweep; arguments and result as ``differentiable_sweep.graph_sweep`` (``seeds`` are
    Tensors), or None when the graph needs ``graph_sweep`` (see the module docstring)."""
    levels = _fw.levels
    if len(levels) != 1 or _fw.hidden:
        return None
    level = levels[0]
    if _fw.batch.get(level) is not None:  # batched tangents (forward.batch_size): the rules carry the batch axis
        return None
    tape, nodes = _graph_tape(roots)
    if tape is None or tape.dirty:
        return None
    try:
        return _sweep(tape, nodes, level, roots, seeds, targets, retain_graph, run_targets)
    except _Unsupported:
        return None


def _graph_tape(roots):
    """The one tape every node of the graph lives on and the nodes (as ``engine.graph_nodes`` gives them: ``{id:
    (tensor, operands)}``, as ``engine._Plan`` takes them), or ``(None, None)`` (several tapes, or a node the kernel
    cannot sweep with tangents: custom Functions, hooks, ``retain_grad``, multi-row nodes, operands modified in
    place, checked as the walk reaches each node: it stops at the first refusal). (``engine.graph_nodes`` with
    these checks inlined: a call per node cost a fifth of the walk.)"""
    tape = None
    nodes = {}
    stack = [t for t in roots if t._op is not None]
    while stack:
        t = stack.pop()
        key = id(t)
        if key in nodes:
            continue
        t_tape = t._tape
        if t_tape is None or t._nrows != 1 or t._hooks or t._retains_grad or t._op.code == K.PYTHON:
            return None, None
        if tape is None:
            tape = t_tape
        elif t_tape is not tape:
            return None, None
        inputs = t._inputs
        for inp in inputs:
            if inp is not None and inp._prev is not None:
                return None, None  # an operand modified in place since (the walk would need its recorded version)
        nodes[key] = (t, inputs)
        for inp in inputs:
            if inp is not None and inp._rg and inp._op is not None and id(inp) not in nodes:
                stack.append(inp)
    if tape is None or not tape.hook_rows.keys() <= tape.python_rows:
        return None, None  # hooks, custom Functions or gradient-ready hooks somewhere on the tape
    return tape, nodes


def _tangent_data(t, level):
    tans = t._tangents
    if tans is None:
        return None
    tan = tans.get(level)
    return None if tan is None else tan._data


def _gather_tangents(tape, level, nodes, tvals):
    """Fill the (zeroed) tangent arena: each node's and each imported tensor's tangent at its offset (big
    regions are left unwritten: only the Python big rows read those, from the tensors)."""
    for t, _ in nodes.values():
        tans = t._tangents  # (``_tangent_data``, inlined: once per node)
        tan = None if tans is None else tans.get(level)
        if tan is not None:
            tan = tan._data
            n = tan.size
            if n < BIG_ROW:
                off = t._off
                tvals[off : off + n] = tan.reshape(-1)
    refs = tape.import_refs
    for key, packed in tape.import_at.items():  # (``tape.imports``, read packed: no entry tuple per import)
        t = refs[key]
        if type(t) is weakref.ref:
            t = t()  # (None: a recorded tensor of another tape that died; no row of a live graph reads it)
        if t is None or t._tangents is None:
            continue
        tan = t._tangents.get(level)
        if tan is not None and tan._data.size < BIG_ROW:
            off = packed & _FIELD
            tvals[off : off + tan._data.size] = tan._data.reshape(-1)


class _Layout:
    """What a sweep of one graph layout works out before its first row, kept for the next sweep of the same layout
    (a Hessian-vector product called in a loop records the same rows at the same offsets on a fresh tape each
    time): the plan as rows (``blocked``: rows of nodes off the paths to the inputs, ``runs``: rows of nodes that
    run, None without a plan), and the kernel's copies of the rows, their float attributes and aux (``arrays``,
    laid out as ``Tape.arrays``' views, so that the kernel meets the types it was compiled for) with the masked
    rows of the plan (``masked``, made by ``engine.planned_rows`` at the first sweep that needs them)."""

    __slots__ = ("blocked", "runs", "arrays", "masked", "spares")


_LAYOUTS = {}  # _layout_key -> _Layout


def _layout_key(tape, roots, targets, run_targets):
    """What the plan and the kernel's arrays depend on: the rows and aux (opcodes, offsets, operand rows: the
    graph's structure, as the kernel routes cotangents by them), the imports that take cotangents, the rows swept
    from Python, and where the roots and the requested tensors sit (a requested node by its row, a requested
    leaf by which imports are it); None where a root or requested node lives on another tape."""
    if tape.nrows > _LAYOUT_ROWS:
        return None
    for t in roots:
        if t._tape is not tape:
            return None
    spots = [run_targets]
    leaves = None
    for t in targets.values():
        if t._op is None:
            leaves = True
        elif t._tape is tape:
            spots.append(t._row)
        else:
            return None
    ext_refs = tape.ext_refs
    if leaves:
        spots.append(tuple(id(held(ref)) in targets for ref in ext_refs))
    nrows = tape.nrows
    return (
        tape.used,
        tape.dtype,
        tuple(t._row for t in roots),
        tuple(spots),
        bytes(memoryview(tape.rows)[: nrows * 80]),
        tape.aux.tobytes(),
        tuple(tape.ext_offs),
        tuple(tape.ext_rows),
        tuple(tape.big_regions),
        frozenset(tape.python_rows),
    )


def _layout_for(tape, nodes, roots, targets, run_targets):
    """The ``_Layout`` of this sweep (kept by ``_layout_key``, or worked out now)."""
    key = _layout_key(tape, roots, targets, run_targets)
    layout = _LAYOUTS.get(key) if key is not None else None
    if layout is not None:
        return layout
    layout = _Layout()
    plan = engine.plan_for(roots, targets, run_targets, nodes)
    if plan is None:
        layout.blocked = layout.runs = None
    else:
        layout.blocked = plan.blocked.get(tape.id, [])
        layout.runs = frozenset(t._row for t, _ in nodes.values() if id(t) in plan.runs)
    words, floats, aux = tape.arrays()
    raw = bytearray(memoryview(tape.rows)[: tape.nrows * 80])  # (a copy: ``Tape.arrays``' views of the tape's own)
    nrows = tape.nrows
    words = np.ndarray((nrows, 8), np.int64, raw, 0, words.strides)
    floats = np.ndarray((nrows, 2), np.float64, raw, 64 if nrows else 0, floats.strides)
    layout.arrays = (words, floats, aux)
    layout.masked = None
    # a ``TangentSweep``'s buffer and views, left by the last sweep (``TangentSweep.release``); None for a layout
    # that is not kept (its sweep's buffer goes back to the pool)
    layout.spares = [] if key is not None else None
    if key is not None:
        if len(_LAYOUTS) >= 16:
            _LAYOUTS.clear()
        _LAYOUTS[key] = layout
    return layout


class _RowPlan:
    """A ``_Layout``'s plan for one sweep (the ``engine._Plan`` fields the tangent sweep reads: ``blocked`` by
    tape id; ``runs`` as rows)."""

    __slots__ = ("blocked", "runs")

    def __init__(self, tape, layout):
        self.blocked = {tape.id: layout.blocked}
        self.runs = layout.runs


def _sweep(tape, nodes, level, roots, seeds, targets, retain_graph, run_targets):
    layout = _layout_for(tape, nodes, roots, targets, run_targets)
    s = TangentSweep(tape, None if layout.runs is None else _RowPlan(tape, layout), layout)
    s.rows_view = layout.masked
    s.transposed = False
    tcot, tvals = s.tcot, s.tvals
    try:
        _gather_tangents(tape, level, nodes, tvals)
        for t, g in zip(roots, seeds):
            off, n = t._off, t._data.size
            tg = _tangent_data(g, level)
            if not s.live[off]:
                tcot[off : off + n] = 0.0
            if tg is not None:
                tcot[off : off + n] += np.broadcast_to(tg, t._data.shape).reshape(-1)
            s.seed(t, g._data)
        _sweep_rows(s, tcot, tvals, lambda t, off: _tangent_data(t, level), layout.arrays)
        layout.masked = s.rows_view
        leaf_grads, target_grads = _results(s, tcot, level, targets)
        if not retain_graph:
            engine.free_swept([s])
    finally:
        s.release()
    return leaf_grads, target_grads


def _sweep_rows(s, tcot, tvals, tangent, arrays=None):
    """The kernel between the big rows, each big row from Python (``_big_row``); ``tangent(t, off)``: the
    tangent (an array or None) of big row operand ``t`` at arena offset ``off``; ``arrays``: the tape's
    ``arrays()``, or a copy of them (``_Layout``)."""
    tape = s.tape
    if getattr(tape, "unwritten", None) is not None:  # (CUDA tapes have none)
        tape.materialize()  # (second partials read values a replay's fused forward may have left out)
    freed = tape.freed_flags()
    arrays = (tape.arrays() if arrays is None else arrays) + (np.zeros(3, np.int64),)  # (see engine._sweep_tape)
    try:
        _stretches(s, tcot, tvals, tangent, tape, freed, arrays)
    finally:
        del arrays


def _stretches(s, tcot, tvals, tangent, tape, freed, arrays):
    start = s.start
    for h in sorted([r for r in tape.python_rows if r <= start], reverse=True):
        _run_kernel(s, tcot, tvals, start, h + 1, freed, arrays)
        if h < s.lowest:
            return
        t = None
        for ref in tape.hook_rows.get(h, ()):  # (the row's own tensor among those registered there)
            r = ref()
            if r is not None and r._row == h:
                t = r
                break
        if t is not None and s.live[t._off]:
            if s.plan is None or h in s.plan.runs:  # (``_RowPlan``: rows)
                _big_row(s, tcot, t, h, freed, tangent)
        elif t is None and s.live[engine._row_out(tape, h)]:
            raise _Unsupported  # a reached big row whose tensor is gone (the kernel sweep raises there)
        start = h - 1
    _run_kernel(s, tcot, tvals, start, 0, freed, arrays)


def _run_kernel(s, tcot, tvals, start, stop, freed, arrays):
    if start < stop:
        return
    tape = s.tape
    rows, attrs, aux, status = arrays
    rows = engine.rows_to_sweep(s, rows, start, stop)
    if rows is None:
        return
    result = tangent_reverse_sweep(
        rows,
        attrs,
        aux,
        tape.values,
        tvals,
        s.cot,
        tcot,
        s.live,
        s.visited,
        freed,
        tape.modified,
        SAVES,
        SECOND_ORDER,
        s.transposed,
        start,
        stop,
        s.lowest,
        status,
        s.big_off,
        s.big_n,
    )
    if result < 0:
        if status[0] == UNSUPPORTED:
            raise _Unsupported
        if status[0] == FREED:
            raise RuntimeError(engine.FREED_MESSAGE)
        raise RuntimeError(engine._modified_message(tape, int(status[1]), int(status[2])))
    s.lowest = result


def _big_row(s, tcot, t, h, freed, tangent):
    """Sweep big row ``h`` (producing ``t``) with tangents: matmul / linear by numpy, elementwise rows by
    ``elementwise_tangent_chunk``, a sum to a scalar by filling."""
    code, out_off, targets = engine.big_row_head(s, t, h, freed)
    _, _, x_off, y_off = engine._ROW_HEAD.unpack_from(s.tape.rows, h * 80)
    n = t._data.size
    g = s.cot[out_off : out_off + n]
    tg = tcot[out_off : out_off + n]
    inputs = t._inputs
    # each big target region: zeroed at its first write (big regions hold garbage until then; the others are
    # zero until live, as ``engine._TapeSweep.clear_unwritten`` assumes)
    for off, _, _ in targets:
        if not s.live[off] and off in s.big:
            size = s.big[off]
            s.cot[off : off + size] = 0.0
            tcot[off : off + size] = 0.0
    if code == K.MATMUL and inputs[0].ndim <= 2 and inputs[1].ndim <= 2 or code == K.LINEAR or code == K.LINEAR_BIAS:
        tx, ty = tangent(inputs[0], x_off), tangent(inputs[1], y_off)
        _matmul_tangent(s, tcot, t, g, tg, targets, code != K.MATMUL, tx, ty)
    elif code == K.SUM_ALL:
        scale = float(np.frombuffer(s.tape.rows, np.float64, count=1, offset=h * 80 + 64)[0])
        for off, _, x in targets:
            s.cot[off : off + x._data.size] += g[0] * scale
            tcot[off : off + x._data.size] += tg[0] * scale
    elif SECOND_ORDER[code] and (K.is_unary(code) or K.BINARY_FIRST <= code <= K.BINARY_LAST):
        if any(i._data.shape != t._data.shape for i in inputs):
            raise _Unsupported
        tflat = [_flat(tangent(i, off), i) for i, off in zip(inputs, (x_off, y_off))]
        _elementwise_tangent(s, tcot, t, g, tg, targets, code, h, tflat)
    else:
        raise _Unsupported
    for off, prow, _ in targets:
        s.live[off] = 1
        if prow < s.lowest:
            s.lowest = prow


def _flat(tan, t):
    return np.zeros(t._data.size, t._data.dtype) if tan is None else np.ascontiguousarray(tan).reshape(-1)


def _elementwise_tangent(s, tcot, t, g, tg, targets, code, h, tflat):
    inputs = t._inputs
    binary = len(inputs) == 2
    flat = [np.ascontiguousarray(i._data).reshape(-1) for i in inputs]
    attrs = np.frombuffer(s.tape.rows, np.float64, count=2, offset=h * 80 + 64)
    out = t._data.reshape(-1)
    scratch = np.zeros(0, out.dtype)
    regions = {}
    for off, _, inp in targets:
        for k, i in enumerate(inputs):
            if i is inp and k not in regions:
                size = inp._data.size
                regions[k] = (s.cot[off : off + size], tcot[off : off + size])
    gx, tgx = regions.get(0, (scratch, scratch))
    gy, tgy = regions.get(1, (scratch, scratch)) if binary else (scratch, scratch)
    if binary and inputs[0] is inputs[1]:
        gy, tgy = gx, tgx
    elementwise_tangent_chunk(
        code,
        binary,
        flat[0],
        flat[1] if binary else flat[0],
        out,
        tflat[0],
        tflat[1] if binary else tflat[0],
        g,
        tg,
        gx,
        tgx,
        gy,
        tgy,
        float(attrs[0]),
        float(attrs[1]),
        0 in regions,
        binary and (1 in regions or (inputs[0] is inputs[1] and 0 in regions)),
        s.transposed,
    )


def _matmul_tangent(s, tcot, t, g_flat, tg_flat, targets, linear, tx, ty):
    """``x @ y`` of 1-D or 2-D operands, or ``x @ y.T`` (linear): the cotangents of ``big_rows._matmul_row`` and
    their tangents by the product rule."""
    x, y = t._inputs[:2]
    if not linear and len(targets) == 1 and x._data.ndim + y._data.ndim == 3:
        # matrix-vector (``A @ v``, ``v @ A``) with one operand needing its cotangent: g and tg through the
        # matrix as the two rows of one product (the matrix is read once), on 1-D arrays
        off, _, inp = targets[0]
        if inp is y and y._data.ndim == 1:
            _vector_tangent(s, off, np.dot(_pair(s, t._off, g_flat.shape[0]), x._data), tx, g_flat, False)
            return
        if inp is x and x._data.ndim == 1:
            _vector_tangent(s, off, np.dot(_pair(s, t._off, g_flat.shape[0]), y._data.T), ty, g_flat, True)
            return
    xd = x._data.reshape(-1, x.shape[-1])
    yd = y._data if linear or y.ndim == 2 else y._data.reshape(-1, 1)
    txd = None if tx is None else tx.reshape(xd.shape)
    tyd = None if ty is None else ty.reshape(yd.shape)
    g = g_flat.reshape(xd.shape[0], -1)
    tg = tg_flat.reshape(xd.shape[0], -1)
    b = t._inputs[2] if len(t._inputs) > 2 else None
    done = []
    for off, _, inp in targets:
        if any(inp is d for d in done):
            continue  # x @ x: both parts added on its first pass
        done.append(inp)
        if inp is b:  # the bias of linear: column sums
            s.cot[off : off + g.shape[1]] += g.sum(0)
            tcot[off : off + g.shape[1]] += tg.sum(0)
        # g and tg go through the same product as one matrix product: the big operand is read once
        if inp is x:
            region = s.cot[off : off + xd.size].reshape(xd.shape)
            tregion = tcot[off : off + xd.size].reshape(xd.shape)
            both = np.concatenate((g, tg)) @ (yd if linear else yd.T)
            region += both[: g.shape[0]]
            tregion += both[g.shape[0] :]
            if tyd is not None:
                tregion += g @ (tyd if linear else tyd.T)
        if inp is y:
            region = s.cot[off : off + yd.size].reshape(yd.shape)
            tregion = tcot[off : off + yd.size].reshape(yd.shape)
            if linear:
                both = np.concatenate((g, tg), 1).T @ xd
                region += both[: g.shape[1]]
                tregion += both[g.shape[1] :]
            else:
                both = xd.T @ np.concatenate((g, tg), 1)
                region += both[:, : g.shape[1]]
                tregion += both[:, g.shape[1] :]
            if txd is not None:
                tregion += g.T @ txd if linear else txd.T @ g


def _pair(s, off, n):
    """The cotangent at ``off`` (``n`` elements) and its tangent as the rows of one ``(2, n)`` view of the sweep's
    buffer (``tcot`` follows ``cot`` there): a matrix product reads or adds both at once. (Kept with the buffer:
    a kept layout's next sweep finds its views made.)"""
    pairs = s.pairs
    key = (off, n)
    view = pairs.get(key)
    if view is None:
        buf = s.buf
        size = buf.itemsize
        view = pairs[key] = np.ndarray((2, n), buf.dtype, buf, off * size, (s.cot.shape[0] * size, size))
    return view


def _vector_tangent(s, off, both, tmatrix, g, transpose):
    """Add a matrix-vector product's vector cotangent ``both[0]`` and its tangent ``both[1]`` (plus ``g`` through
    the matrix's tangent ``tmatrix``, if any: ``g @ tA``, or ``tA @ g`` with ``transpose``) at ``off``."""
    n = both.shape[1]
    pair = _pair(s, off, n)
    pair += both
    if tmatrix is not None:
        pair[1] += np.dot(tmatrix, g) if transpose else np.dot(g, tmatrix)


def _results(s, tcot, level, targets):
    """The leaves' and requested tensors' gradients, each a fresh tensor with its tangent at ``level``."""
    leaf_grads = {}
    cot = s.cot
    tape = s.tape
    ext_rows, ext_offs, ext_refs = tape.ext_rows, tape.ext_offs, tape.ext_refs  # (tape.externs, unpacked)
    live = s.live
    for k in range(s.nexterns - 1, -1, -1):
        if ext_rows[k] < s.lowest:
            break
        off = ext_offs[k]
        if not live[off]:
            continue
        t = held(ext_refs[k])
        if t is None or t._op is not None or id(t) in leaf_grads:
            raise _Unsupported  # (a node of another tape, or a leaf imported twice: the general sweep sums)
        leaf_grads[id(t)] = (t, _dual(cot, tcot, off, t, level))
    target_grads = {}
    for key, t in targets.items():
        if t._op is None or t._tape is not s.tape or not s.live[t._off]:
            continue
        target_grads[key] = (t, _dual(cot, tcot, t._off, t, level))
    return leaf_grads, target_grads


def _dual(cot, tcot, off, t, level):
    """The gradient at ``off`` with its tangent, copied out of the sweep's buffer (which goes back to the pool
    at once: the next call's sweep takes it, instead of fresh memory)."""
    data = t._data
    n = data.size
    dt = data.dtype
    g = _new(Tensor)  # (wrap_array, inlined: the arrays below are fresh copies)
    tan = _new(Tensor)
    if data.ndim == 1:
        g._data = cot[off : off + n].astype(dt)
        tan._data = tcot[off : off + n].astype(dt)
    else:
        g._data = cot[off : off + n].astype(dt).reshape(data.shape)
        tan._data = tcot[off : off + n].astype(dt).reshape(data.shape)
    set_tangent(g, level, tan)
    return g
