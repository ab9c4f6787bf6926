"""Double backward without a recorded second-order graph (issue 12): ``grad(..., create_graph=True)`` as one node.

``grad(y, xs, create_graph=True)`` normally runs every reverse rule as ``ad`` ops (``graph_sweep``), so
that the gradient is itself differentiable: for W7 (a 200-step scalar iteration) that records about 1,600 small
rows, each a Python call. When the graph allows it, ``fused_grad`` instead computes the gradients with the
compiled sweep (``engine.kernel_sweep``) and returns them as the outputs of one custom Function node,
``SweepBackward``, whose inputs are the graph's leaves that require grad. Its backward, given the cotangents
``w`` of the gradients, needs ``d/d theta <w, grad_xs y>`` for every leaf ``theta``: by the symmetry of second
derivatives that is the tangent, along the direction ``w`` placed on ``xs``, of the gradient of ``y`` at
``theta``: a forward-over-reverse product. It is computed by two compiled passes over the original tape:

1. ``kernels.second_order.tangent_forward_sweep``: the tangent of every value (``tvals``) from ``w`` at the
   offsets of ``xs`` (big rows: here, with numpy);
2. ``ad.second_order``'s tangent reverse sweep, seeded with the original seeds (tangent 0): the tangents of
   the cotangents at the leaves' offsets are the node's input gradients.

The node's backward falls back to the differentiable sweeps (the recorded path, exact in every case) when it
must itself be differentiable (``create_graph`` again, a cotangent that requires grad, dual levels) or when the
compiled passes refuse a row. ``fused_grad`` returns None (the caller records as before) unless: the outputs
live on one tape whose imports are all leaves (no other tape's graph); the inputs are leaves imported once, of
the tape's dtype; the seeds are constants; the graph is retained; the tape has no hooks, ``retain_grad``,
custom Functions or in-place writes; and every row from the first input's use to the outputs (``MIN_NODES`` or
more) has a forward tangent rule (``FORWARD_TANGENT``) and a reverse one (``SECOND_ORDER``). These are checks
of the tape's rows, not a walk over the graph's nodes.

Freeing follows torch: ``grad(..., create_graph=True, retain_graph=False)`` frees the rows the first sweep
visited (the node's backward then raises torch's error where a row needs a saved value); a sweep that runs the
node's backward without retaining the graph frees the node (a second run raises) and those rows of the
original graph (``engine.free_function`` calls the node's ``free_graph``), so a later backward through the
original graph raises as torch's does. (The rows freed are all those the first sweep reached from the outputs;
torch frees only the nodes on paths to the inputs: a later backward through nodes off those paths that saved
nothing torch would let through raises here.)
"""

import weakref

import numpy as np

from kernels import opcodes as K
from kernels.cpu import binary_backward_chunk, jvp_binary, jvp_unary
from kernels.second_order import FORWARD_TANGENT, SECOND_ORDER, tangent_forward_sweep

from . import differentiable_sweep, engine, second_order
from .autograd.function import Function
from .forward import _fw
from .grad_mode import _grad_state
from .tape import BIG_ROW, held, retire
from .tensor import wrap_array

# Below this many rows the recorded rules cost less than the node's fixed costs (a Function call, four arenas
# for its backward): W4's three-node graph double-backwards faster recorded; W7's 800 nodes far slower.
MIN_NODES = 24


class _State:
    """What ``SweepBackward``'s backward needs: the original graph (tape, roots, seeds), the requested inputs
    with their arena offsets, and the rows to run forward."""

    __slots__ = ("tape", "roots", "seeds", "xs", "x_offs", "first", "last", "visited")

    def free_graph(self):
        """Mark the rows the first sweep visited freed (see the module docstring)."""
        freed = self.tape.freed_flags()
        m = min(freed.shape[0], self.visited.shape[0] - 1)
        freed[:m] |= self.visited[:m]


def fused_grad(roots, seeds, targets, retain_graph):
    """``grad(roots, targets, seeds, create_graph=True)`` as one node, or None (see the module docstring).
    Returns ``(leaf_grads, {})`` as ``differentiable_sweep.graph_sweep``."""
    if not targets or _fw.levels:
        return None
    tape = roots[0]._tape
    if tape is None or tape.nrows < MIN_NODES:
        return None  # (a small graph, W4's: one check before the walks below)
    if any(g._rg for g in seeds):
        return None
    if tape is None or tape.dirty or any(t._op is None or t._tape is not tape for t in roots):
        return None
    if max(t._row + t._nrows for t in roots) < MIN_NODES:
        return None  # (the rows from the first input's use to the outputs are fewer still)
    if not tape.hook_rows.keys() <= tape.python_rows or any(
        held(e[2]) is None or held(e[2])._op is not None for e in tape.externs
    ):
        return None  # hooks, retain_grad, custom Functions, or operands from other tapes' graphs
    xs = list(targets.values())
    x_offs = []
    first = tape.nrows
    for x in xs:
        hit = tape.imports.get(id(x))
        if x._op is not None or hit is None or hit[2] is not x or x._data.dtype != tape.dtype:
            return None
        if sum(1 for e in tape.externs if e[2] is x) != 1:
            return None  # imported twice (re-imported after an in-place change): the recorded path sums
        x_offs.append(hit[0])
        first = min(first, hit[1])
    last = max(t._row + t._nrows - 1 for t in roots)
    if last - first + 1 < MIN_NODES:
        return None
    rows = np.frombuffer(tape.rows, np.int64, count=(last + 1) * 10).reshape(-1, 10)[first:, 0] & K.CODE_MASK
    if not (FORWARD_TANGENT[rows].all() and SECOND_ORDER[rows].all()):
        return None  # (the rows below ``first`` the sweep reaches are checked by the kernel: fallback there)
    swept = []
    leaf_grads, _ = engine.kernel_sweep(roots, [g._data for g in seeds], {}, retain_graph, swept=swept)
    # the node's backward sweeps this tape again: no later graph may grow it (as a Python row's sweep does)
    retire(tape)
    found = [leaf_grads.get(id(x)) for x in xs]
    state = _State()
    state.tape, state.roots, state.seeds = tape, list(roots), list(seeds)
    state.xs, state.x_offs, state.first, state.last = xs, x_offs, first, last
    state.visited = swept[0].visited
    leaves = [e[0] for e in leaf_grads.values() if e[0]._rg]
    outs = SweepBackward.apply(state, [None if f is None else f[1] for f in found], *leaves)
    if not isinstance(outs, tuple):
        outs = (outs,)
    rec = outs[0]._ctx
    rec.outputs = _WeakOutputs(rec.outputs)
    result = {}
    k = 0
    for x, f in zip(xs, found):
        if f is not None:
            result[id(x)] = (x, outs[k])
            k += 1
    return result, {}


class _WeakOutputs:
    """A custom Function record's outputs, held weakly: the outputs hold the record (``_ctx``), and a cycle
    would keep the original graph (its tape's arenas, which the pool would recycle) alive until the garbage
    collector runs. Reads as the list of outputs (None for one that died)."""

    __slots__ = ("refs",)

    def __init__(self, outputs):
        self.refs = [None if o is None else weakref.ref(o) for o in outputs]

    def __iter__(self):
        return (None if r is None else r() for r in self.refs)

    def __len__(self):
        return len(self.refs)

    def __getitem__(self, i):
        r = self.refs[i]
        return None if r is None else r()


class SweepBackward(Function):
    """The gradients of a graph as one differentiable node (see the module docstring)."""

    _grad_fn_name = "SweepBackward"
    _backward_carries_tangents = True  # its fallback runs the differentiable sweeps, which carry tangents

    @staticmethod
    def forward(ctx, state, grads, *leaves):
        ctx.state = state
        ctx.free_graph = state.free_graph  # (engine.free_function: a sweep that does not retain the graph)
        ctx.leaves = leaves
        ctx.used = [g is not None for g in grads]
        return tuple(wrap_array(g.copy()) for g in grads if g is not None)  # (the sweep's arena goes back)

    @staticmethod
    def backward(ctx, *ws):
        if ctx._freed:  # a second backward through the node after one that did not retain the graph
            raise RuntimeError(engine.FREED_MESSAGE)
        state = ctx.state
        full = []
        it = iter(ws)
        for used in ctx.used:
            full.append(next(it) if used else None)
        plain = not _grad_state.enabled and not _fw.levels
        if plain and not any(w is not None and (w._rg or w._tangents) for w in full):
            try:
                return (None, None, *_compiled_vjp(state, full, ctx.leaves))
            except second_order._Unsupported:
                pass
        return (None, None, *_differentiable_vjp(state, full, ctx.leaves))


def _differentiable_vjp(state, ws, leaves):
    """The recorded path: the gradients again as ``ad`` ops, then their VJP with ``ws``."""
    targets = {id(x): x for x in state.xs}
    leaf_grads, _ = differentiable_sweep.graph_sweep(state.roots, state.seeds, targets, True, True)
    outs, cots = [], []
    for x, w in zip(state.xs, ws):
        hit = leaf_grads.get(id(x))
        if hit is not None and w is not None and hit[1]._rg:
            outs.append(hit[1])
            cots.append(w)
    if not outs:
        return [None] * len(leaves)
    grads, _ = differentiable_sweep.graph_sweep(outs, cots, {}, _grad_state.enabled, _grad_state.enabled)
    return [grads[id(t)][1] if id(t) in grads else None for t in leaves]


def _compiled_vjp(state, ws, leaves):
    tape = state.tape
    if tape.dirty:
        raise second_order._Unsupported
    s = second_order.TangentSweep(tape)
    s.transposed = True  # the direction sits on the inputs (see kernels.second_order.tangent_reverse_sweep)
    tvals, tcot = s.tvals, s.tcot
    written = set()  # big regions of tvals holding a tangent (the others hold garbage: read as None)
    try:
        for off, x, w in zip(state.x_offs, state.xs, ws):
            if w is not None:
                tvals[off : off + x._data.size] = w._data.reshape(-1)
                written.add(off)

        def tangent(t, off):
            n = t._data.size
            if n >= BIG_ROW and off not in written:
                return None
            return tvals[off : off + n].reshape(t._data.shape)

        _forward(state, tvals, tangent, written)
        for t, g in zip(state.roots, state.seeds):
            off, n = t._off, t._data.size
            if not s.live[off]:
                tcot[off : off + n] = 0.0
            s.seed(t, g._data)
        second_order._sweep_rows(s, tcot, tvals, tangent)
        result = []
        offs = {id(t): off for row, off, t in tape.externs if row >= s.lowest}
        for t in leaves:
            off = offs.get(id(t))
            if off is None or not s.live[off]:
                result.append(None)
            else:
                result.append(wrap_array(tcot[off : off + t._data.size].reshape(t._data.shape).copy()))
        return result
    finally:
        s.release()


def _forward(state, tvals, tangent, written):
    """The tangent of every value of rows ``first..last``: the kernel between big rows, big rows here."""
    tape = state.tape
    rows, attrs, aux = tape.arrays()
    status = np.zeros(3, np.int64)
    lo = state.first
    big = sorted(h for h in tape.python_rows if state.first <= h <= state.last)
    for h in big + [state.last + 1]:
        if lo <= h - 1:
            if tangent_forward_sweep(rows, attrs, aux, tape.values, tvals, FORWARD_TANGENT, lo, h - 1, status) < 0:
                raise second_order._Unsupported
        if h <= state.last:
            t = next((r() for r in tape.hook_rows.get(h, ()) if r() is not None and r()._row == h), None)
            if t is None:
                raise second_order._Unsupported
            _big_forward(tape, t, h, tvals, tangent, written)
        lo = h + 1
    del rows, attrs, aux


def _big_forward(tape, t, h, tvals, tangent, written):
    """The tangent of big row ``h``'s output ``t`` (matmul / linear by numpy, elementwise by the JVP kernels)."""
    op_bits, out_off, x_off, y_off = engine._ROW_HEAD.unpack_from(tape.rows, h * 80)
    code = op_bits & K.CODE_MASK
    inputs = t._inputs
    n = t._data.size
    tans = [tangent(i, off) for i, off in zip(inputs, (x_off, y_off))]
    if code == K.MATMUL and inputs[0].ndim <= 2 and inputs[1].ndim <= 2 or code in (K.LINEAR, K.LINEAR_BIAS):
        x, y = inputs[:2]
        yt = (lambda a: a.T) if code != K.MATMUL else (lambda a: a)
        res = np.zeros(t._data.shape, t._data.dtype)
        if tans[0] is not None:
            res += tans[0] @ yt(y._data)
        if tans[1] is not None:
            res += x._data @ yt(tans[1])
        if code == K.LINEAR_BIAS:
            a = int(np.frombuffer(tape.rows, np.int64, count=1, offset=h * 80 + 40)[0])
            b_off = tape.aux[a + 3]
            tb = tangent(inputs[2], b_off)
            if tb is not None:
                res += tb
    elif code == K.SUM_ALL:
        scale = float(np.frombuffer(tape.rows, np.float64, count=1, offset=h * 80 + 64)[0])
        res = np.array(0.0 if tans[0] is None else scale * tans[0].sum())
    elif K.is_unary(code) or K.BINARY_FIRST <= code <= K.BINARY_LAST:
        if any(i._data.shape != t._data.shape for i in inputs):
            raise second_order._Unsupported
        attrs = np.frombuffer(tape.rows, np.float64, count=2, offset=h * 80 + 64)
        flat = [np.ascontiguousarray(i._data).reshape(-1) for i in inputs]
        tflat = [second_order._flat(tn, i) for tn, i in zip(tans, inputs)]
        res = np.empty(n, t._data.dtype)
        out = np.ascontiguousarray(t._data).reshape(-1)
        if len(inputs) == 1:
            jvp_unary(code, flat[0], out, tflat[0], res, float(attrs[0]), float(attrs[1]))
        elif code == K.MAXIMUM or code == K.MINIMUM:
            # the reverse partials (masks), as tangent_forward_sweep's small rows, not jvp_binary's forward rule
            along_y = np.empty(n, t._data.dtype)
            binary_backward_chunk(code, flat[0], flat[1], out, tflat[0], res, res, True, False, False, False)
            binary_backward_chunk(code, flat[0], flat[1], out, tflat[1], along_y, along_y, False, True, False, False)
            res += along_y
        else:
            jvp_binary(code, flat[0], flat[1], out, tflat[0], tflat[1], res, True, True)
    else:
        raise second_order._Unsupported
    tvals[out_off : out_off + n] = np.asarray(res).reshape(-1)
    written.add(out_off)
