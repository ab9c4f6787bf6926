"""The differentiable reverse sweep (``graph_sweep``): for ``create_graph=True``, in forward-mode levels and in
anomaly mode. It walks the Python graph (``Tensor._inputs``, ``engine.graph_nodes``) in reverse recording order
and applies each op's ``vjp`` (written with ``ad`` ops), so the result is itself differentiable. Traversal,
``inputs`` masking, hooks, ``retain_grad``, freeing and the saved-value checks follow ``ad/engine.py``'s compiled
sweep (``kernel_sweep``), whose module docstring describes them; results have its form."""

import numpy as np

from kernels import opcodes as K
from kernels.cpu import READS_OUT, READS_X, READS_Y, SAVES, needed_reads_py

from . import engine, grad_mode
from .big_rows import _ROW_HEAD, FREED_MESSAGE, _modified_message
from .engine import (
    _SAVES_LIST,
    _inputs_of,
    _node_order,
    _requested,
    _restricts_nothing,
    _retain,
    free_function,
    graph_nodes,
    hooks_on_undefined,
    replaced_grad_inputs,
    run_hooks,
    take_replaced_grad_inputs,
)
from .tape import retire
from .tensor import Tensor, wrap_array


def graph_sweep(roots, seeds, targets, retain_graph, create_graph, run_node=None, run_targets=False):
    """Differentiable reverse sweep over the Python graph; seeds and results are ``Tensor``s.

    ``run_node(t, inputs, step, args)``, if given, runs each node's reverse step ``step(*args)`` (anomaly
    mode's checks)."""
    nodes = graph_nodes(roots)
    order = sorted(nodes.values(), key=_node_order, reverse=True)
    tapes = {}  # the tapes the graph lives on, by id
    for t, _ in order:
        if t._op.vjp is None:
            raise RuntimeError(f"{t.grad_fn.name()} has no differentiable rule")
        tape = t._tape
        if tape is not None:
            if id(tape) not in tapes:
                refused = engine.refused_tapes  # (rebound by allow_mutation_on_saved_tensors)
                if refused and tape in refused:
                    raise refused.error()
                tapes[id(tape)] = tape
                tape.freed_flags()
                if getattr(tape, "unwritten", None) is not None:  # (CUDA tapes have none)
                    tape.materialize()  # (the rules read values a replay's fused forward may have left out)

    runs = None
    if targets and (run_targets or not _restricts_nothing(roots, targets)):
        # only the nodes on a path to the inputs run (see _Plan)
        leads = {k for k, t in targets.items() if t._op is None}
        runs = set()
        for t, inputs in reversed(order):  # operands before their consumers
            if any(i is not None and id(i) in leads for i in inputs) or (run_targets and _requested(t, targets)):
                runs.add(id(t))
                leads.add(id(t))
            elif _requested(t, targets):
                leads.add(id(t))

    grads = {}
    leaf_grads = {}
    functions_ran = []
    ran = []
    for t, g in zip(roots, seeds):
        _accum(grads if t._op is not None else leaf_grads, t, g)
    target_grads = {}

    def arrive(t, g):
        """A tensor's complete cotangent: captured (before its hooks if its node runs, after if not: see
        _arrive), hooks, retain_grad."""
        key = id(t)
        before = targets and key in targets and (runs is None or key in runs)
        if before:
            target_grads[key] = (t, g)
        if t._hooks:
            with np.errstate(**user_errors):  # (the user's numpy error settings in their hooks)
                g = run_hooks(t, g, replacing=True)
        if targets and key in targets and not before:
            target_grads[key] = (t, g)
        if t._retains_grad:
            _retain(t, g)
        return g

    state = grad_mode._grad_state
    was_enabled = state.enabled
    state.set(create_graph)
    # The rules compute without numpy's warnings, as the kernel sweep and torch's backward do: a partial at a pole
    # (log's 1 / x at 0, logcumsumexp at -inf) is inf and an inf cotangent meets 0 by design, with the values
    # torch gives. Hooks and custom Functions' backward run with the user's settings.
    user_errors = np.seterr(divide="ignore", over="ignore", invalid="ignore")
    try:
        for t, inputs in order:
            entry = grads.pop(id(t), None)
            if entry is None:
                continue
            g = entry[1]
            if runs is not None and id(t) not in leads:
                continue
            if t._hooks or t._retains_grad or (targets and id(t) in targets):  # (else ``arrive`` returns g)
                g = arrive(t, g)
            if runs is not None and id(t) not in runs:
                if replaced_grad_inputs:
                    take_replaced_grad_inputs(t)  # (its node does not run: nor do what its hook returned)
                continue
            tape = t._tape
            if tape is not None:  # checked when the node runs, as torch's engine (hooks before it have run)
                if tape.freed[t._row] and _SAVES_LIST[t._op.code]:
                    raise RuntimeError(FREED_MESSAGE)
                if tape.dirty or getattr(tape, "graph_rows", None):  # (_check_saved's early exits, inlined)
                    _check_saved(t)
            ran.append(t)
            replaced = take_replaced_grad_inputs(t) if replaced_grad_inputs else None
            if replaced is not None:  # (a node hook returned them: ad/autograd/graph.py)
                step, args = (lambda grads: grads), (replaced,)
                in_grads = step(*args) if run_node is None else run_node(t, inputs, step, args)
            elif t._op.code == K.PYTHON:
                functions_ran.append(t._ctx)
                with np.errstate(**user_errors):  # (the user's numpy error settings in custom backwards)
                    in_grads = (
                        _function_backward(t, g, grads, arrive)
                        if run_node is None
                        else run_node(t, inputs, _function_backward, (t, g, grads, arrive))
                    )
            else:
                step, args = t._op.vjp, (g, t, inputs, t._ctx)
                in_grads = step(*args) if run_node is None else run_node(t, inputs, step, args)
            for inp, gi in zip(inputs, in_grads):
                if gi is None or inp is None or not inp._rg:
                    continue
                if type(gi) is not Tensor and not isinstance(gi, Tensor):
                    gi = wrap_array(np.broadcast_to(np.asarray(gi, dtype=inp.dtype), inp.shape).copy())
                elif gi._data.dtype is not inp._data.dtype and gi._data.dtype != inp._data.dtype:
                    gi = gi.to(inp.dtype)
                table = grads if inp._op is not None else leaf_grads
                key = id(inp)
                prev = table.get(key)  # (_accum, inlined: once per operand of every node)
                table[key] = (inp, gi if prev is None else prev[1] + gi)
    finally:
        np.seterr(**user_errors)
        state.set(was_enabled)
    if not retain_graph:
        for t in ran:  # only what ran is freed: other paths of the graph can still be differentiated
            if t._tape is not None:
                t._tape.freed[t._row : t._row + t._nrows] = 1
        for tape in tapes.values():
            retire(tape)  # as kernel_sweep: the next graph starts a tape that dies with it
        for rec in functions_ran:
            free_function(rec)
    return leaf_grads, target_grads


def _check_saved(t):
    """Raise torch's error if a value that ``t``'s rows saved for backward was modified in place since (what
    the kernel checks per row)."""
    tape = t._tape
    if t._row in getattr(tape, "graph_rows", ()):  # (a CUDA node without a row to read: its op's check)
        from .cuda.tape import check_graph_row

        check_graph_row(t, _inputs_of(t))
        return
    if not tape.dirty:
        return
    mod = tape.modified
    for row in range(t._row, t._row + t._nrows):
        op_bits, out_off, x_off, y_off = _ROW_HEAD.unpack_from(tape.rows, row * 80)
        reads = needed_reads_py(int(SAVES[op_bits & K.CODE_MASK]), op_bits)
        if reads and (
            (reads & READS_OUT and mod[out_off])
            or (reads & READS_X and x_off >= 0 and mod[x_off])
            or (reads & READS_Y and y_off >= 0 and mod[y_off])
        ):
            raise RuntimeError(_modified_message(tape, row, out_off))


def _function_backward(t, g, grads, arrive):
    """Run a custom Function's backward once for all its outputs (the first one reached carries them all:
    every output's cotangent is complete by then, since all their consumers come later on the tape; each
    goes through ``arrive``: hooks, retain_grad, capture)."""
    rec = t._ctx
    _refuse_forward_over_reverse(rec)
    own = {id(t): g}
    for out in rec.outputs:
        if out is not None and out is not t:
            entry = grads.pop(id(out), None)
            if entry is not None:
                own[id(out)] = arrive(out, entry[1])
            elif out._hooks:
                g_out = hooks_on_undefined(out)
                if g_out is not None:
                    own[id(out)] = g_out
    in_grads = rec.call_backward(rec.output_grads(lambda out: own.get(id(out))))
    tensor_inputs = [g_ for a, g_ in zip(rec.inputs, in_grads) if isinstance(a, Tensor)]
    return tensor_inputs


def _refuse_forward_over_reverse(rec):
    """ad's own Python-swept primitives (cumsum, lgamma, ...: Functions with ``_grad_fn_name``) compute their
    backward from saved values that carry no tangents, so the tangent of their gradient (forward over reverse)
    would be silently wrong (checked against finite differences of the gradient): raise instead. Double
    backward (``create_graph=True``) through them is right. Those whose backward carries tangents
    (``_backward_carries_tangents``: the linear algebra of ad/ops/linalg.py, the scans and special functions of
    ad/reductions.py, each checked in tests/test_linalg_fwd_over_rev.py) pass."""
    from .forward import _fw

    if not _fw.levels or getattr(rec.cls, "_grad_fn_name", None) is None:
        return
    if getattr(rec.cls, "_backward_carries_tangents", False):  # (checked against finite differences)
        return
    for a in rec.inputs:
        if isinstance(a, Tensor) and a._tangents:
            raise NotImplementedError(
                f"forward-over-reverse through {rec.cls._grad_fn_name} is not implemented in ad (its backward "
                "would lose the input's tangent); use double backward (autograd.grad with create_graph=True), "
                "e.g. ad.autograd.functional.hvp"
            )


def _accum(table, t, g):
    key = id(t)
    prev = table.get(key)
    table[key] = (t, g if prev is None else prev[1] + g)
