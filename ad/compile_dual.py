"""Forward over reverse inside a compiled function (a Hessian-vector product ``jax.jit(jax.jvp(jax.grad(f)))``):
a dual level whose ``grad`` the replay runs as one tangent forward pass and one tangent reverse sweep.

The function this supports (``ad/compile.py`` runs any other use of forward mode eagerly, with a warning)::

    def step(x, v):
        with fwd.dual_level():
            xd = fwd.make_dual(x, v)                      # x requires grad: xd is a recorded clone of x
            (g,) = ad.autograd.grad(f(xd), xd)            # one real scalar, no create_graph
            return fwd.unpack_dual(g)                     # (gradient, H v)

While recording, the ops inside the level run eagerly as always: each records its primal row, and its JVP rule
(``forward.apply_dual``) records the tangent's ops as rows of the same tape, since the tangents are functions of
recorded values. The replay needs none of those tangent rows: it computes every tangent from the rows
themselves (``kernels.second_order.tangent_forward_sweep``, ``FORWARD_TANGENT``). So, when the ``grad`` inside
the level ends its phase (``ad/compile_program.py``), ``primal_snapshot`` keeps of the phase's tape only the
primal rows (the rows recorded before the level, and the ancestors of the differentiated output), and checks
that every other row recorded in the level computes a tangent (an ancestor of a tangent that the level's
registry holds); anything else sends the signature eagerly. The rows keep their arena offsets (the tangent
rows' regions stay unused); their numbers are compacted (``TapeSnapshot.row_map``; the operand rows of each row,
and linear's bias row in ``aux``, follow).

The ``grad`` becomes an event of the program whose call is ``call_dual_grad``: on the replayed phase's tape it
places each dual tensor's tangent (its source: an argument, a tensor from outside or a constant made inside
``fn``) at the dual tensor's offset, runs the tangent forward pass from the first dual row to the output's row
(big rows by numpy: ``double_backward._big_forward``) and the tangent reverse sweep (``ad/second_order.py``'s
``TangentSweep`` and ``_sweep_rows``) from a seed of one; the gradients and their tangents are its results
(``("g", e, k)``: gradient k; ``("g", e, n + k)``: its tangent), so ``unpack_dual`` of a gradient resolves to
the two. A replayed gradient carries no tangent (eager's lose theirs when the level exits).

A program of one phase and this event (a compiled Hessian-vector product, ``Program.dual``) runs instead a
``DualProgram`` where one applies (``prepare``, at the template's finish): the same passes with everything the
generic event works out per call (the stops of the tangent pass, the rows the sweep runs from Python, the
targets' and dual tensors' offsets) worked out once, where its Python rows are matrix-vector products whose
matrix comes from outside or is an argument (no tangent) and whose vector node (not a big region) takes the
cotangent (each read where the backward program reads it, ``ad/compile_backward.py``: the replay builds no
tensor for them). The tangent pass runs inside the phase's replay (``_replay``'s ``forward``), so that each
product and its tangent are one BLAS call, ``[v; tv] A^T`` (the matrix read once; OpenBLAS runs that small
GEMM on one thread, the matrix-vector products on two), as the reverse's ``[g; tg] A`` is. The sweep's buffers
stay with the program, cleared by byte ranges at the next call. The kernels and the reverse products are the
generic event's, on the same arenas; the fused forward product rounds as a GEMM (last bits). W4's compiled
step (``benchmarks.higher_compare hvp-fwd --libs ad.compile``) went from 0.127 to 0.067 ms (0.077 without the
fused products), measured interleaved on the shared 2-core machine.

Data structures: ``DualLevel``, the recording's one level (its tape rows at entry, the dual tensors with their
tangents, the ``grad`` event, the unpacked gradients). Refused (eager, with the reason): nested or several
levels, batched tangents, a ``make_dual`` of a tensor that does not require grad or with a tangent that
requires grad, a tangent of anything but a gradient of the event read by ``unpack_dual``, a level without that
``grad`` or left open, a ``grad`` with ``create_graph``, ``grad_outputs``, several outputs or batched, ops in
the level that are neither primal nor tangent rows, rows without compiled tangent rules, custom Functions,
hooks, ``retain_grad`` and multi-row nodes on the primal path.
"""

import bisect
import functools

import numpy as np

from kernels import opcodes as K
from kernels.cpu import FREED, SAVES, zero_byte_ranges
from kernels.second_order import (
    FORWARD_TANGENT,
    SECOND_ORDER,
    UNSUPPORTED,
    tangent_forward_sweep,
    tangent_reverse_sweep,
)

from . import engine, second_order
from . import tape as _tape
from .compile_replay import _EAGER, _replay, _run_segments
from .compile_template import TapeSnapshot, _Unsupported
from .double_backward import _big_forward
from .forward import _fw
from .tape import BIG_ROW
from .tensor import Tensor, _new

REFUSED = "forward-mode AD inside the function: "  # (the start of every reason this module gives)
_BIG_TANGENT_CODES = (K.MATMUL, K.LINEAR, K.LINEAR_BIAS, K.SUM_ALL)  # big rows ``_big_forward`` computes


class Refused(Exception):
    """``call_dual_grad`` cannot run on this call's tensors (checked before it sweeps anything)."""


class DualLevel:
    """The dual level a recording call entered (``ad/compile.py``'s ``_Recorder.dual``)."""

    __slots__ = ("level", "entry_rows", "duals", "event", "unpacked", "exited")

    def __init__(self, level):
        self.level = level
        # tape id -> its rows when the level was entered (a tape started inside the level: 0)
        self.entry_rows = {T.id: T.nrows for T in _tape._state.current.values()}
        self.duals = []  # (dual tensor, its tangent), in make_dual order
        self.event = None  # the GradEvent of the grad inside the level
        self.unpacked = []  # (gradient, the primal unpack_dual made of it)
        self.exited = False


def refusal(rec, kind, outputs, grad_outputs, create_graph, options):
    """Why the backward ``rec`` (a ``_Recorder``) sees inside its dual level cannot be replayed, or None."""
    dual = rec.dual
    if dual is None or _fw.levels != [dual.level]:
        return REFUSED + "a dual level entered outside the function"
    if kind != "grad" or create_graph:
        return REFUSED + "a backward inside a dual level other than grad() without create_graph"
    if dual.event is not None:
        return REFUSED + "two grad() calls inside one dual level"
    if not dual.duals:
        return REFUSED + "a grad() inside a dual level before any make_dual"
    if grad_outputs is not None or len(outputs) != 1 or options[1] or options[2]:
        return REFUSED + "a grad() inside a dual level with grad_outputs, several outputs or batched"
    (out,) = outputs
    if out._data.ndim != 0 or out._op is None or out._tape is None or out._dev is not None:
        return REFUSED + "a grad() inside a dual level of anything but a recorded real scalar"
    return None


def primal_snapshot(S, outputs, dual):
    """``S`` (the phase's ``TapeSnapshot``) without the rows that compute tangents (see the module docstring);
    raises ``_Unsupported``."""
    T = S.tape
    level = dual.level
    entry = dual.entry_rows.get(T.id, 0)
    primal = _nodes_from([t for t in outputs if t._tape is T and t._op is not None], T, {})
    tangent_roots = []
    for ref in _fw.registry.get(level, ()):
        t = ref()
        tans = None if t is None else t._tangents
        tan = None if tans is None else tans.get(level)
        if tan is not None and tan._tape is T and tan._op is not None and id(tan) not in primal:
            tangent_roots.append(tan)
    tangents = _nodes_from(tangent_roots, T, primal)
    kept = set(range(entry))
    for t in primal.values():  # (the sweep's tangent kernels, as eager's compiled one, take none of these)
        if t._nrows != 1 or t._hooks or t._retains_grad or t._op.code == K.PYTHON:
            raise _Unsupported(
                REFUSED + "forward over reverse through a custom Function, a hook, retain_grad or a multi-row op"
            )
        kept.add(t._row)
    tangent_rows = set()
    for t in tangents.values():
        tangent_rows.update(range(t._row, t._row + t._nrows))
    if kept & tangent_rows or len(kept) + len(tangent_rows) != S.nrows:
        raise _Unsupported(
            REFUSED + "an op inside the dual level that is neither on the path to grad()'s output nor part of a tangent"
        )
    dual_rows = []
    for d, _ in dual.duals:
        if d._tape is not T or id(d) not in primal:
            raise _Unsupported(REFUSED + "a dual tensor that grad()'s output does not depend on, or on another tape")
        dual_rows.append(d._row)
    order = sorted(kept)
    row_map = {old: new for new, old in enumerate(order)}
    words = np.frombuffer(S.rows_bytes, np.int64).reshape(-1, 10)[order].copy()
    codes = words[:, 0] & K.CODE_MASK
    (out,) = outputs
    first = row_map[min(dual_rows)]
    for new in range(row_map[out._row] + 1):  # (the sweep may reach rows below the duals': a leaf's gradient)
        code = int(codes[new])
        if order[new] in S.python_rows:
            ok = code in _BIG_TANGENT_CODES or (SECOND_ORDER[code] and _elementwise(code))
        else:
            ok = SECOND_ORDER[code] and (new < first or FORWARD_TANGENT[code])
        if not ok:
            raise _Unsupported(REFUSED + "forward over reverse through an op without a compiled second-order rule")

    def down(old):  # an operand's producing (or importing) row: the first kept row at or after it
        return old if old < 0 else min(bisect.bisect_left(order, old), len(order) - 1)

    for col in (6, 7):
        words[:, col] = [down(int(r)) for r in words[:, col]]
    aux = S.aux.copy()
    for a in words[codes == K.LINEAR_BIAS, 5].tolist():  # (linear's bias: its offset and row are kept in aux)
        aux[a + 4] = down(int(aux[a + 4]))
    read = {id(i) for t in primal.values() for i in t._inputs if i is not None}
    tangent_only = {id(i) for t in tangents.values() for i in t._inputs if i is not None} - read
    imports = [
        (off, down(row), t, version)
        for off, row, t, version in S.imports
        if not (row >= entry and id(t) in tangent_only)
    ]
    import_offs = {off for off, _, _, _ in imports}
    node_offs = {int(o) for o in words[:, 1]}
    P = TapeSnapshot.__new__(TapeSnapshot)
    P.tape, P.id, P.nrows, P.used, P.dtype = T, S.id, len(order), S.used, S.dtype
    P.rows_bytes = words.tobytes()
    P.aux = aux
    P.imports = imports
    P.externs = [(down(row), off, t) for row, off, t in S.externs if off in import_offs]
    P.hook_rows = {row_map[row]: refs for row, refs in S.hook_rows.items() if row in row_map}
    P.python_rows = frozenset(row_map[row] for row in S.python_rows if row in row_map)
    P.big_regions = [(off, n) for off, n in S.big_regions if off in import_offs or off in node_offs]
    P.values = S.values
    P.clean = S.clean
    P.row_map = row_map
    return P


def _elementwise(code):
    return (
        K.UNARY_FIRST <= code <= K.UNARY_LAST
        or K.UNARY2_FIRST <= code <= K.UNARY2_LAST
        or K.BINARY_FIRST <= code <= K.BINARY_LAST
    )


def _nodes_from(roots, T, stop):
    """``{id: tensor}`` of the recorded tensors of tape ``T`` reachable from ``roots`` through operands, not
    entering ``stop``'s."""
    found = {}
    stack = list(roots)
    while stack:
        t = stack.pop()
        if id(t) in found:
            continue
        found[id(t)] = t
        stack.extend(i for i in t._inputs if i is not None and i._tape is T and i._op is not None and id(i) not in stop)
    return found


def call_dual_grad(outputs, inputs, grad_outputs, retain_graph, options):
    """The replay of a ``grad`` inside a dual level (a program's event call, see ``ad/compile_program.py``).
    ``inputs``: the differentiated tensors, then the ``options[3]`` dual tensors, then their tangents. Returns
    the gradients, then their tangents; raises ``Refused`` before anything is swept where this call's tensors
    do not allow it (a tangent from outside that changed shape or dtype)."""
    n = options[3]
    m = len(inputs) - 2 * n
    targets, duals, tangents = inputs[:m], inputs[m : m + n], inputs[m + n :]
    (out,) = outputs
    tape = out._tape
    for d, tan in zip(duals, tangents):
        if tan._data.shape != d._data.shape or tan._data.dtype != d._data.dtype or tan._dev is not None:
            raise Refused
    if tape.unwritten is not None:
        tape.materialize()  # (the tangent rules read values a fused replay's forward may have left out)
    # rows at or below the lowest requested node (a dual tensor's clone) add nothing to its cotangent: the sweep
    # stops above it, as eager's plan does (a leaf among the inputs: down to row 0)
    stop = tape.nrows
    for t in targets:
        if t._op is None or t._tape is not tape:
            stop = 0
        elif t._row < stop:
            stop = t._row + 1
    s = second_order.TangentSweep(tape)
    s.transposed = False
    tvals, tcot = s.tvals, s.tcot
    written = set()  # big regions of tvals holding a tangent (the others hold garbage: read as None)
    stack = (_SWEEP_STACK[0] or _sweep_stack())()
    stack.append(False)  # (as grad: a sweep of grad, not of backward)
    arrays = tape.arrays() + (np.zeros(3, np.int64),)  # (once: the forward pass and the sweep read them)
    try:

        def tangent(t, off):
            size = t._data.size
            if size >= BIG_ROW and off not in written:
                return None
            return tvals[off : off + size].reshape(t._data.shape)

        _tangent_forward(tape, arrays, duals, tangents, out._row, tvals, tangent, written)
        tcot[out._off] = 0.0
        s.seed(out, _one(out._data.dtype))
        _reverse(s, tcot, tvals, tangent, arrays, stop)
        result = [None] * (2 * m)
        live = s.live
        extern_offs = None
        for k, t in enumerate(targets):
            if t._op is not None and t._tape is tape:
                off = t._off
            else:
                if extern_offs is None:
                    extern_offs = {id(e): o for row, o, e in tape.externs if row >= s.lowest}
                off = extern_offs.get(id(t))
            if off is None or not live[off]:
                raise RuntimeError("ad.compile: a replayed grad() inside a dual level reached no input it recorded")
            result[k] = _copy(s.cot, off, t)
            result[m + k] = _copy(tcot, off, t)
        if not retain_graph:
            engine.free_swept([s])
    finally:
        del arrays
        stack.pop()
        s.release()
    return tuple(result)


_SWEEP_STACK = [None]  # ad.autograd._sweep_stack, once imported (ad.autograd imports this module's importers)
_ONES = {}  # dtype -> a read-only 0-d one, the seed


def _sweep_stack():
    from .autograd import _sweep_stack as stack

    _SWEEP_STACK[0] = stack
    return stack


def _one(dtype):
    one = _ONES.get(dtype)
    if one is None:
        one = _ONES[dtype] = np.ones((), dtype)
        one.flags.writeable = False
    return one


def _tangent_forward(tape, arrays, duals, tangents, last, tvals, tangent, written):
    """The tangent of every value of the rows from the first dual tensor's to ``last``: the kernel between the
    big rows and the dual rows, big rows by ``_big_tangent``, each dual tensor's tangent placed at its offset
    once its row is reached (a dual tensor's tangent is the one given, not its primal's)."""
    rows, attrs, aux, status = arrays
    placed = {}
    for d, tan in zip(duals, tangents):
        placed.setdefault(d._row, []).append((d, tan))
    lo = min(placed)
    stops = list(placed)
    for h in tape.python_rows:
        if lo <= h <= last and h not in placed:
            stops.append(h)
    stops.sort()
    stops.append(last + 1)
    for h in stops:
        if lo <= h - 1:
            if tangent_forward_sweep(rows, attrs, aux, tape.values, tvals, FORWARD_TANGENT, lo, h - 1, status) < 0:
                raise RuntimeError("ad.compile: the replayed tangent pass met a row without a tangent rule")
        if h <= last:
            if h in placed:
                for d, tan in placed[h]:
                    off, size = d._off, d._data.size
                    tvals[off : off + size] = tan._data.reshape(-1)
                    written.add(off)
            else:
                _big_tangent(tape, _row_tensor(tape, h), h, tvals, tangent, written)
        lo = h + 1


def _big_tangent(tape, t, h, tvals, tangent, written):
    """The tangent of big row ``h``'s output ``t``: a matrix (no tangent) times a vector by one product into the
    arena, any other row by ``double_backward._big_forward``."""
    inputs = t._inputs
    if len(inputs) == 2 and t._data.ndim == 1 and inputs[0]._data.ndim == 2 and inputs[1]._data.ndim == 1:
        op_bits, out_off, x_off, y_off = engine._ROW_HEAD.unpack_from(tape.rows, h * 80)
        if op_bits & K.CODE_MASK == K.MATMUL and tangent(inputs[0], x_off) is None:
            ty = tangent(inputs[1], y_off)
            n = t._data.size
            if ty is None:
                tvals[out_off : out_off + n] = 0.0
            else:
                np.dot(inputs[0]._data, ty, out=tvals[out_off : out_off + n])
            written.add(out_off)
            return
    try:
        _big_forward(tape, t, h, tvals, tangent, written)
    except second_order._Unsupported:
        raise RuntimeError("ad.compile: the replayed tangent pass met a row without a tangent rule") from None


def _row_tensor(tape, h):
    """The tensor big row ``h`` produces (among those registered at that row)."""
    for r in tape.hook_rows.get(h, ()):
        t = r()
        if t is not None and t._row == h:
            return t
    raise RuntimeError("ad.compile: a replayed big row's tensor is gone")


def _reverse(s, tcot, tvals, tangent, arrays, stop):
    """``second_order._sweep_rows`` from the seeded output down to row ``stop``: the kernel between the big rows,
    each big row by ``second_order._big_row``."""
    tape = s.tape
    freed = tape.freed_flags()
    start = s.start
    for h in sorted([r for r in tape.python_rows if stop <= r <= start], reverse=True):
        second_order._run_kernel(s, tcot, tvals, start, h + 1, freed, arrays)
        if h < s.lowest:
            return
        t = _row_tensor(tape, h)
        if s.live[t._off]:
            second_order._big_row(s, tcot, t, h, freed, tangent)
        start = h - 1
    second_order._run_kernel(s, tcot, tvals, start, stop, freed, arrays)


def _copy(arena, off, t):
    data = t._data
    g = _new(Tensor)  # (wrap_array, inlined: a fresh copy)
    g._data = arena[off : off + data.size].astype(data.dtype).reshape(data.shape)
    return g


class DualProgram:
    """``call_dual_grad`` worked out once per template, for the common case (a compiled Hessian-vector product:
    every Python row a matrix-vector product of a matrix from outside or an argument, and a vector node that
    receives the cotangent): the steps of the tangent forward pass and of the tangent reverse sweep, with every
    offset known, and the sweep's buffers kept with the program (``spares``) between calls.

    - ``forward``: ``("k", lo, hi)`` the tangent kernel over rows ``lo..hi``; ``("d", j)`` dual tensor j's
      tangent placed at its offset; ``("m", j)`` matrix-vector product j's tangent (``matvecs[j]``: the matrix
      times the vector's tangent; the matrix has none). ``schedule``: the phase's forward with these steps
      inside (``_schedule``), or None (they follow the replay).
    - ``reverse``: ``("k", start, stop)`` the tangent reverse kernel, ``("m", j)`` matrix-vector product j's
      vector cotangent and its tangent, as one product of ``[g; tg]`` with the matrix.
    - ``matvecs``: per product ``(row, out offset, out size, vector offset, vector size, vector row, k, matrix
      reference)``, ``k`` the vector's operand index (1: ``A @ v``; 0: ``v @ A``), the matrix reference
      ``("a", k)`` or ``("e", tensor)`` (the backward program's, ``ad/compile_backward.py``).
    - ``targets``: the differentiated tensors' ``(offset, size, shape)`` (an argument's size and shape are
      read at each call: ``leaf_targets``, ``(index in targets, argument index)``); ``duals``: the dual
      tensors', with ``tangent_refs`` their tangents' references (an argument, from outside, a constant).
    - A spare: one buffer ``[cot | tcot | tvals | live flags]`` of the tape's layout (the ``TangentSweep``'s), its
      ``visited`` rows and status words, the views the steps read, made with it, and the fused products'
      ``(2, n)`` operands and results. Taken by one call at a time (a list pop: a thread's concurrent call
      makes another), cleared by byte ranges at the next call (outside the big regions, which no step reads:
      no node of this program has a big region but the matrices, read from their tensors).

    ``replay`` returns None, with nothing done, where this call's tensors do not fit (a matrix that is no
    longer a 2-D array of the arena's dtype): the generic replay and ``call_dual_grad`` then run."""

    __slots__ = (
        "tpl",
        "position",
        "schedule",
        "dtype",
        "used",
        "nrows",
        "rows",
        "attrs",
        "aux",
        "big_off",
        "big_n",
        "ranges",
        "out",
        "targets",
        "leaf_targets",
        "duals",
        "tangent_refs",
        "matvecs",
        "forward",
        "reverse",
        "spares",
    )

    def replay(self, tensors, retain_graph):
        """The phase (``tpl``) replayed on ``tensors`` with the tangent pass, then the tangent reverse sweep:
        ``(the phase's tensors, the event's results)``; ``_EAGER`` where the phase's replay answers so; None,
        with nothing done, where this call's tensors do not fit the program; raises ``Refused`` (nothing done)
        where a tangent does not fit its dual tensor."""
        dtype = self.dtype
        tangents = []
        for (_, _, shape), r in zip(self.duals, self.tangent_refs):
            kind = r[0]
            t = tensors[r[1]] if kind == "a" else r[1] if kind == "e" else None
            data = r[1] if t is None else t._data
            if data.shape != shape or data.dtype != dtype or (t is not None and t._dev is not None):
                raise Refused
            tangents.append(data)
        matrices = []
        for mv in self.matvecs:
            ref = mv[7]
            data = (tensors[ref[1]] if ref[0] == "a" else ref[1])._data
            if data.ndim != 2 or data.dtype != dtype:
                return None
            matrices.append(data if mv[6] else data.T)  # (v @ A as A.T @ v: one form for both passes)
        targets = self.targets
        if self.leaf_targets:  # (an argument differentiated: its size and shape are this call's)
            targets = list(targets)
            for j, k in self.leaf_targets:
                data = tensors[k]._data
                if data.dtype != dtype:
                    return None
                targets[j] = (targets[j][0], data.size, data.shape)
        spare = self._take()
        try:
            schedule = self.schedule
            if schedule is not None:  # the tangent pass inside the phase's forward, its products fused
                forward = functools.partial(self._forward, schedule, spare, tangents, matrices)
                out = _replay(self.tpl, tensors, forward)
                if out is _EAGER:
                    return _EAGER
                tape = out[self.position]._tape
            else:
                out = _replay(self.tpl, tensors)
                if out is _EAGER:
                    return _EAGER
                tape = out[self.position]._tape
                if tape.unwritten is not None:
                    tape.materialize()  # (the tangent rules read values a fused replay's forward may have left out)
                self._forward(self.forward, spare, tangents, matrices, tape.values, None, None)
            return out, self._sweep(spare, tape, matrices, targets, retain_graph)
        finally:
            self.spares.append(spare)

    def _take(self):
        try:
            spare = self.spares.pop()  # (atomic: another thread's call takes another, or makes one)
        except IndexError:
            return self._spare()
        raw, ranges, visited = spare[0], self.ranges, spare[5]
        if type(ranges) is list:
            for lo, hi in ranges:
                raw[lo:hi] = 0
        else:
            zero_byte_ranges(raw, ranges)
        visited[:] = 0
        return spare

    def _spare(self):
        """A zeroed buffer of the tape's layout and the views of it the steps read."""
        used, dtype = self.used, self.dtype
        size = dtype.itemsize
        nflags = -(-used // size)
        buf = np.zeros(3 * used + nflags, dtype)
        cot, tcot, tvals = buf[:used], buf[used : 2 * used], buf[2 * used : 3 * used]
        raw = buf.view(np.uint8)
        live = raw[3 * used * size : 3 * used * size + used]

        def pair(off, n):  # the cotangent at ``off`` and its tangent as the rows of one (2, n) view
            return np.ndarray((2, n), dtype, buf, off * size, (used * size, size))

        duals = [tvals[off : off + n] for off, n, _ in self.duals]
        forward = [(tvals[v : v + nv], tvals[o : o + n]) for _, o, n, v, nv, _, _, _ in self.matvecs]
        reverse = [(pair(o, n), pair(v, nv)) for _, o, n, v, nv, _, _, _ in self.matvecs]
        visited = np.zeros(self.nrows + 1, np.uint8)
        status = np.zeros(3, np.int64)
        both = [(np.empty((2, nv), dtype), np.empty((2, n), dtype)) for _, _, n, _, nv, _, _, _ in self.matvecs]
        return (raw, cot, tcot, tvals, live, visited, status, duals, forward, reverse, both)

    def _forward(self, steps, spare, tangents, matrices, values, slots, aux):
        """The tangent pass's ``steps`` (``forward``), or the phase's forward with it (``schedule``: the phase's
        segments, ``("p", segments)``, run by ``_run_segments`` on ``slots`` and ``aux``, as ``_replay`` runs
        them)."""
        _, _, _, tvals, _, _, status, duals, forward, _, both = spare
        rows, attrs, program_aux = self.rows, self.attrs, self.aux
        for step in steps:
            kind = step[0]
            if kind == "k":
                lo, hi = step[1], step[2]
                if tangent_forward_sweep(rows, attrs, program_aux, values, tvals, FORWARD_TANGENT, lo, hi, status):
                    raise RuntimeError("ad.compile: the replayed tangent pass met a row without a tangent rule")
            elif kind == "d":
                j = step[1]
                duals[j][...] = tangents[j].reshape(-1)
            elif kind == "m":
                j = step[1]
                tv, out = forward[j]
                np.dot(matrices[j], tv, out=out)
            elif kind == "f":  # a product and its tangent as one: [v; tv] A^T, the matrix read once
                j = step[1]
                _, o, n, v, nv, _, _, _ = self.matvecs[j]
                vectors, products = both[j]
                vectors[0] = values[v : v + nv]
                vectors[1] = tvals[v : v + nv]
                np.dot(vectors, matrices[j].T, out=products)
                values[o : o + n] = products[0]
                tvals[o : o + n] = products[1]
            else:
                _run_segments(self.tpl, aux, slots, values, step[1])

    def _sweep(self, spare, tape, matrices, targets, retain_graph):
        _, cot, tcot, tvals, live, visited, status, _, _, reverse, _ = spare
        rows, attrs, aux, values = self.rows, self.attrs, self.aux, tape.values
        out_off, out_row = self.out
        cot[out_off] = 1.0  # (the seed; its tangent stays zero)
        live[out_off] = 1
        lowest = out_row
        freed = tape.freed_flags()
        modified = tape.modified
        big_off, big_n = self.big_off, self.big_n
        for step in self.reverse:
            if step[0] == "k":
                start, stop = step[1], step[2]
                if start < lowest:
                    continue
                lowest = tangent_reverse_sweep(
                    rows,
                    attrs,
                    aux,
                    values,
                    tvals,
                    cot,
                    tcot,
                    live,
                    visited,
                    freed,
                    modified,
                    SAVES,
                    SECOND_ORDER,
                    False,
                    start,
                    stop,
                    lowest,
                    status,
                    big_off,
                    big_n,
                )
                if lowest < 0:
                    _kernel_error(tape, status)
                continue
            j = step[1]
            h, o, _, v, _, v_row, _, _ = self.matvecs[j]
            if h < lowest or not live[o]:
                continue
            visited[h] = 1
            g_pair, v_pair = reverse[j]
            v_pair += np.dot(g_pair, matrices[j])  # ([g; tg] A: the vector's cotangent and its tangent)
            live[v] = 1
            if v_row < lowest:
                lowest = v_row
        m = len(targets)
        result = [None] * (2 * m)
        for k, (off, n, shape) in enumerate(targets):
            if not live[off]:
                raise RuntimeError("ad.compile: a replayed grad() inside a dual level reached no input it recorded")
            result[k] = _fresh(cot, off, n, shape)
            result[m + k] = _fresh(tcot, off, n, shape)
        if not retain_graph:  # (engine.free_swept of this one sweep)
            freed[: self.nrows] |= visited[: self.nrows]
            tape.import_at.clear()
            tape.import_refs.clear()
        return tuple(result)


def prepare(tpl, position, refs, options):
    """The ``DualProgram`` of a program's dual event (``Program.dual``'s parts), or None where ``call_dual_grad``
    must run (see ``DualProgram``)."""
    if tpl.targets or tpl.remaps or tpl.fused is not None or tpl.out[0] != "s":
        return None  # (a per-call aux, a fused loss: the generic event)
    n = options[3]
    m = len(refs) - 2 * n
    out_spec = tpl.out[2]

    def node(r):  # the template node a phase reference stands for
        if r[0] != "p" or out_spec[r[2]][0] != "n":
            return None
        return tpl.nodes[out_spec[r[2]][1]]

    def target(r):  # ``(offset, size, shape, row)`` of a differentiated node, or of an argument's import
        if r[0] == "a":
            offs = [(off, row) for row, off, e in tpl.externs if e == r]
            if len(offs) != 1:
                return None
            off, row = offs[0]
            return (off, None, None, row, r[1])  # (its size and shape: the argument's, seen at each call)
        nd = node(r)
        return None if nd is None else (nd.off, nd.n, nd.shape, nd.row, None)

    out = node(("p", 0, position))
    targets = [target(r) for r in refs[:m]]
    duals = [node(r) for r in refs[m : m + n]]
    if out is None or None in targets or None in duals or any(r[0] not in "aek" for r in refs[m + n :]):
        return None
    python_rows = sorted(tpl.python_rows)
    matvecs = []
    if python_rows:
        program = tpl.backward
        if program is None or program.operands is None:
            return None
        for step, pair in zip(program.steps, program.operands):
            h, o, size, _, _, _, ((v, v_row, k),) = step
            matrix, vector = pair[1 - k], pair[k]
            if matrix[0] not in "ae" or vector[0] != "n" or len(vector[3]) != 1 or max(size, vector[2]) >= BIG_ROW:
                return None  # (a matrix with a tangent, or a big vector region: the generic event)
            matvecs.append((h, o, size, v, vector[2], v_row, k, matrix))
        matvecs.sort(key=lambda mv: mv[0])
        if [mv[0] for mv in matvecs] != python_rows:
            return None
    elif tpl.hook_rows:
        return None
    P = DualProgram()
    P.dtype = np.dtype(tpl.dtype)
    P.used = tpl.used + 1
    P.nrows = tpl.nrows
    raw = bytearray(tpl.rows_bytes)  # (the kernels' arrays laid out as ``Tape.arrays``' views: the types they
    # were compiled for)
    P.rows = np.ndarray((tpl.nrows, 8), np.int64, raw, 0, (80, 8))
    P.attrs = np.ndarray((tpl.nrows, 2), np.float64, raw, 64 if tpl.nrows else 0, (80, 8))
    P.aux = np.array(tpl.aux, np.int64) if len(tpl.aux) else np.zeros(1, np.int64)
    if tpl.big_regions:
        _, P.big_off, P.big_n, live_off, live_n = engine.big_region_arrays(tpl.big_regions, True)
    else:
        P.big_off = P.big_n = live_off = live_n = engine._NO_REGIONS
    P.ranges = engine._zero_ranges(P.used, 3, P.dtype.itemsize, P.big_off, P.big_n, live_off, live_n)
    P.out = (out.off, out.row)
    P.targets = [t[:3] for t in targets]
    P.leaf_targets = [(j, t[4]) for j, t in enumerate(targets) if t[4] is not None]
    P.duals = [(d.off, d.n, d.shape) for d in duals]
    P.tangent_refs = list(refs[m + n :])
    P.matvecs = matvecs
    # the tangent pass, from the first dual row to the output's: the kernel between the dual rows and the products
    last = out.row
    lo = min(d.row for d in duals)
    stops = {d.row: ("d", j) for j, d in enumerate(duals)}
    for j, mv in enumerate(matvecs):
        if lo <= mv[0] <= last:
            stops.setdefault(mv[0], ("m", j))
    forward = []
    for h in sorted(stops) + [last + 1]:
        if lo <= h - 1:
            forward.append(("k", lo, h - 1))
        if h <= last:
            forward.append(stops[h])
            if stops[h][0] == "d":  # (several dual tensors of one row: each placed, in make_dual order)
                forward.extend(("d", j) for j, d in enumerate(duals) if d.row == h and j != stops[h][1])
        lo = h + 1
    P.forward = forward
    P.tpl, P.position = tpl, position
    P.schedule = _schedule(tpl, forward, matvecs)
    # the reverse sweep from the output down to the row above the lowest target node (rows below it add nothing
    # to its cotangent), or to row 0 for an argument's
    stop = 0 if P.leaf_targets else min(t[3] for t in targets) + 1
    reverse = []
    start = last
    for j in sorted(range(len(matvecs)), key=lambda j: -matvecs[j][0]):
        h = matvecs[j][0]
        if not stop <= h <= start:
            continue
        if start >= h + 1:
            reverse.append(("k", start, h + 1))
        reverse.append(("m", j))
        start = h - 1
    if start >= stop:
        reverse.append(("k", start, stop))
    P.reverse = reverse
    P.spares = []
    return P


def _schedule(tpl, forward, matvecs):
    """The phase's forward with the tangent pass ``forward`` inside: its segments (``_Template.segments``) in
    runs, ``("p", segments)``, each tangent step placed after the rows it reads, and each matrix-vector product
    computed with its tangent as one product (``("f", j)``, in place of its segment and of its step ``("m",
    j)``); None where a segment is neither a kernel stretch nor a BLAS row (the fused forward's runs, which may
    leave values out of the arena: the tangent pass then follows the replay)."""
    if any(seg[0] not in "km" for seg in tpl.segments):
        return None
    fused = {mv[0]: j for j, mv in enumerate(matvecs)}
    steps = list(forward)
    schedule = []
    primal = []
    for seg in tpl.segments:
        j = fused.get(seg[1]) if seg[0] == "m" else None
        if j is None or ("m", j) not in steps:
            primal.append(seg)
            continue
        if primal:
            schedule.append(("p", primal))
            primal = []
        k = steps.index(("m", j))  # (the tangent steps before it read rows below the product's: computed)
        schedule.extend(steps[:k])
        schedule.append(("f", j))
        del steps[: k + 1]
    if primal:
        schedule.append(("p", primal))
    return schedule + steps


def _fresh(arena, off, n, shape):
    g = _new(Tensor)  # (wrap_array, inlined: a fresh copy, the buffer stays with the program)
    g._data = arena[off : off + n].copy().reshape(shape)
    return g


def _kernel_error(tape, status):
    if status[0] == UNSUPPORTED:
        raise RuntimeError("ad.compile: the replayed tangent sweep met a row without a second-order rule")
    if status[0] == FREED:
        raise RuntimeError(engine.FREED_MESSAGE)
    raise RuntimeError(engine._modified_message(tape, int(status[1]), int(status[2])))
