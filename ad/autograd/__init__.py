"""``ad.autograd``: reverse-mode entry points with torch's signatures and semantics.

``backward`` accumulates into ``.grad``; ``grad`` returns and never accumulates. Both validate every argument
before any sweep, sweep (``ad/engine.py``), and only then touch ``.grad``: a failed call changes nothing.
In anomaly mode (``detect_anomaly``, ``anomaly_mode.py``) both take the node-by-node sweep, which checks
each node's result.
"""

import contextlib
import threading
from collections import deque
from itertools import repeat
from operator import attrgetter, is_not

import numpy as np

from .. import batched, compile_fused, differentiable_sweep, engine, observe, second_order
from .. import cuda as _cuda
from ..creation import zeros_like
from ..forward import _fw
from ..grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from ..tensor import Tensor, _new, _pre_write_node, wrap_array
from . import anomaly_mode
from . import graph as _graph  # modules (issue 15): saved-tensor and graph hooks
from . import multi_grad_hooks as _multi_grad_hooks
from . import saved_mutation as _saved_mutation
from . import sweep_hooks as _sweep_hooks  # distributed (issue 14): gradient-ready hooks, final callbacks
from .anomaly_mode import detect_anomaly, set_detect_anomaly

__all__ = [
    "backward",
    "grad",
    "no_grad",
    "enable_grad",
    "set_grad_enabled",
    "is_grad_enabled",
    "gradcheck",
    "gradgradcheck",
    "GradcheckError",
    "Function",
    "FunctionCtx",
    "forward_ad",
    "functional",
    "detect_anomaly",
    "set_detect_anomaly",
    "Variable",
    "inference_mode",
    "is_multithreading_enabled",
    "set_multithreading_enabled",
]


def _as_tuple(x, what):
    if x is None:
        return ()
    if isinstance(x, Tensor):
        return (x,)
    if isinstance(x, _graph.GradientEdge):  # (a named tuple: one edge, not three elements)
        return (x,)
    if isinstance(x, (list, tuple)):
        return tuple(x)
    if what == "inputs":
        raise RuntimeError(f"all inputs have to be Tensors or GradientEdges, but got {type(x).__name__}")
    raise TypeError(f"{what} must be a Tensor or a sequence of Tensors, got {type(x).__name__}")


def _differentiated(inputs, fn):
    """``inputs`` of ``backward`` / ``grad`` as a tuple, checked as torch checks them.

    Raises:
        RuntimeError: no inputs, one that is not a tensor, or one that does not require grad (torch's messages).
    """
    inputs = _edges_to_tensors(_as_tuple(inputs, "inputs"))
    if len(inputs) == 0:
        raise RuntimeError(f"`inputs` argument to `{fn}()` cannot be empty.")
    for t in inputs:
        if not isinstance(t, Tensor):
            raise RuntimeError(f"all inputs have to be Tensors or GradientEdges, but got {type(t).__name__}")
        if not t._rg:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    return inputs


def _edges_to_tensors(items):
    """``items`` with each ``GradientEdge`` replaced by the tensor that holds its node (``graph.edge_tensor``)."""
    for x in items:  # (a loop, not any(generator): once per call)
        if isinstance(x, _graph.GradientEdge):
            return tuple(_graph.edge_tensor(x) if isinstance(x, _graph.GradientEdge) else x for x in items)
    return items


def _non_leaf_edges(inputs):
    """Ids of the non-leaf tensors named by ``GradientEdge``s in ``backward``'s ``inputs``: their gradient flows
    to the graph but, as torch, is stored nowhere (a tensor there gets it in ``.grad``)."""
    if inputs is None or isinstance(inputs, Tensor):
        return ()
    items = (inputs,) if isinstance(inputs, _graph.GradientEdge) else inputs
    return {id(_graph.edge_tensor(e)) for e in items if isinstance(e, _graph.GradientEdge)} - {
        id(t) for t in items if isinstance(t, Tensor)
    }


def _make_seeds(outputs, grad_outputs, create_graph):
    """Validate ``grad_outputs`` against ``outputs``; return seeds (Tensors)."""
    if grad_outputs is None and len(outputs) == 1:
        # the usual call, a CPU scalar loss and its implicit gradient: the checks below, for that case
        out = outputs[0]
        if isinstance(out, Tensor) and out._rg and out._dev is None:  # (a replayed result: a subclass)
            d = out._data
            if d.ndim == 0 and d.dtype.kind == "f":
                seed = wrap_array(np.array(1, d.dtype))
                if observe.observer is not None:  # (ad.compile: a constant the replay of a create_graph sweep
                    observe.observer.created(seed)  # re-creates)
                return [seed]
    if grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    else:
        grad_outputs = (
            _as_tuple(grad_outputs, "grad_outputs") if not isinstance(grad_outputs, Tensor) else (grad_outputs,)
        )
        for g in grad_outputs[: len(outputs)]:
            if g is not None and not isinstance(g, Tensor):
                raise TypeError(f"gradients can be either Tensors or None, but got {type(g).__name__}")
        if len(grad_outputs) != len(outputs):
            raise RuntimeError(f"got {len(outputs)} tensors and {len(grad_outputs)} gradients")
    seeds = []
    for i, (out, g) in enumerate(zip(outputs, grad_outputs)):
        if not isinstance(out, Tensor):
            # torch raises AssertionError here too (an explicit raise, not an assert statement)
            raise AssertionError(f"Expected output to be a torch.Tensor, but outputs[{i}] is {type(out).__name__}")
        if g is None:
            if out._rg:
                if out._data.size != 1:
                    raise RuntimeError("grad can be implicitly created only for scalar outputs")
                if out._data.dtype.kind != "f":
                    raise RuntimeError(
                        f"grad can be implicitly created only for real scalar outputs but got {out._data.dtype}"
                    )
            dt = out._data.dtype
            # (np.array for the usual 0-d loss: one C call, where np.ones is a Python function)
            g = wrap_array(np.array(1, dt) if out._data.ndim == 0 else np.ones(out.shape, dtype=dt))
            if observe.observer is not None:  # (ad.compile: a constant the replay of a create_graph sweep re-creates)
                observe.observer.created(g)
            if out._dev is not None:
                g = g.to(out._dev)
        else:
            if not isinstance(g, Tensor):
                if isinstance(g, (int, float, np.ndarray, list)):
                    g = wrap_array(np.asarray(g, dtype=out._data.dtype))
                else:
                    raise TypeError(f"gradients can be either Tensors or None, but got {type(g).__name__}")
            if g.shape != out.shape:
                raise RuntimeError(
                    f"Mismatch in shape: grad_output[{i}] has a shape of {_size_str(g.shape)} and output[{i}] has a "
                    f"shape of {_size_str(out.shape)}."
                )
            if g._data.dtype.kind != "f" and out._data.dtype.kind == "f":
                raise RuntimeError(
                    f"invalid gradient at index {i} - expected a floating point gradient but got {g.dtype}"
                )
            if g._data.dtype != out._data.dtype:
                g = (
                    g.to(out._data.dtype)
                    if create_graph or g._dev is not None
                    else wrap_array(g._data.astype(out._data.dtype))
                )
            if g._dev is not out._dev and g.device != out.device:
                raise RuntimeError(f"invalid gradient at index {i} - expected device {out.device} but got {g.device}")
        seeds.append(g)
    for i, out in enumerate(outputs):
        if not out._rg:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have a grad_fn")
    return seeds


_NO_MODE_CHANGE = contextlib.nullcontext()


def _size_str(shape):
    return "torch.Size([" + ", ".join(str(s) for s in shape) + "])"


_sweeps = threading.local()


def _sweep_stack():
    stack = getattr(_sweeps, "stack", None)
    if stack is None:
        stack = _sweeps.stack = []
    return stack


def _is_checkpoint_valid():
    """Whether the sweep now running is a ``backward()`` that accumulates into every leaf it reaches (no
    ``inputs=``), as ``torch.autograd._is_checkpoint_valid``: a checkpoint's inner backward writes the ``.grad`` of
    the tensors its function captures, which ``grad()`` and ``backward(inputs=...)`` must not do."""
    stack = _sweep_stack()
    return bool(stack) and stack[-1]


_DOUBLE_BACKWARD = [None]  # ad/double_backward.py, once ``_run`` imported it (a function-level import costs a
# Python call, importlib's _handle_fromlist, each time it runs)


def _run(outputs, seeds, targets, retain_graph, create_graph, run_targets=False):
    if anomaly_mode._enabled:
        # node by node, so that each node's result can be checked (slow, as torch's anomaly mode)
        return differentiable_sweep.graph_sweep(
            outputs, seeds, targets, retain_graph, create_graph, anomaly_mode.run_node, run_targets=run_targets
        )
    if _fw.levels and not create_graph and not _cuda.reaches_device_tape(outputs):
        # forward over reverse: the compiled sweep carries the tangents of the cotangents (ad/second_order.py),
        # or says the graph needs the differentiable sweep below
        done = second_order.tangent_sweep(outputs, seeds, targets, retain_graph, run_targets)
        if done is not None:
            return done
    if (
        create_graph
        and not _fw.levels
        and not run_targets
        and observe.observer is None  # (ad.compile records the differentiable sweep's ops: ad/compile_program.py)
        and not _cuda.reaches_device_tape(outputs)
    ):
        # double backward: the gradients as one node whose backward is a compiled forward-over-reverse product
        # (ad/double_backward.py), or None: the graph needs the recorded rules below
        double_backward = _DOUBLE_BACKWARD[0]
        if double_backward is None:  # (imported here once: it imports this package's Function)
            from .. import double_backward

            _DOUBLE_BACKWARD[0] = double_backward
        done = double_backward.fused_grad(outputs, seeds, targets, retain_graph)
        if done is not None:
            return done
    if create_graph or _fw.levels or _cuda.needs_graph_sweep(outputs):
        # inside a dual level the reverse rules run as ad ops (under no_grad unless create_graph), so that
        # gradients carry tangents: forward over reverse gives Hessian-vector products, as in torch; CUDA
        # graphs are swept on the device (ad/cuda/backward.py) except where that sweep does not apply
        return differentiable_sweep.graph_sweep(
            outputs, seeds, targets, retain_graph, create_graph, run_targets=run_targets
        )
    if not targets and len(outputs) == 1 and getattr(outputs[0]._tape, "fused", None) is not None:
        leaf_grads = compile_fused.take(outputs[0], seeds[0], retain_graph)  # a fused replay's (ad/compile_fused.py)
        if leaf_grads is not None:
            return leaf_grads, {}
    return engine.kernel_sweep(outputs, [s._data for s in seeds], targets, retain_graph, run_targets)


def _leaf_result(t, g, create_graph):
    """A leaf's total cotangent after its hooks, as a Tensor."""
    if isinstance(g, tuple):
        g = g[1]
    g = g if isinstance(g, Tensor) else wrap_array(g)
    if t._hooks:
        g = engine.run_hooks(t, g)
    return g


def _check_not_stale(inputs):
    """torch reads each requested tensor's grad_fn: a view of a multi-output op whose storage was written since
    raises (``views.retire_multi_views``)."""
    for t in inputs:
        if t.__dict__.get("_stale_view"):
            t.grad_fn  # noqa: B018 - raises torch's error


@_sweep_hooks.runs_final_callbacks
def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, grad_variables=None, inputs=None):
    """Accumulate the gradients of ``tensors`` into the leaves' ``.grad``.

    Args:
        tensors: output tensor(s) to differentiate.
        grad_tensors: the vector of the Jacobian-vector product, one per output; may be omitted (``None``)
            only for scalar outputs.
        retain_graph: keep the graph's saved values for another backward; defaults to ``create_graph``.
        create_graph: record the derivative computation, so that ``.grad`` is differentiable.
        inputs: accumulate only into these tensors (leaves or not) instead of all leaves.

    Raises:
        RuntimeError: an output does not require grad, an implicit gradient for a non-scalar output, a
            gradient of the wrong shape or count, empty ``inputs``, or a graph already freed.

    Example:
        >>> x = ad.tensor([1.0, 2.0], requires_grad=True)
        >>> ad.autograd.backward([(x * x).sum()])
        >>> x.grad
        tensor([2., 4.])
    """
    if grad_variables is not None:
        grad_tensors = grad_variables
    outputs = _edges_to_tensors(_as_tuple(tensors, "tensors"))
    edge_only = ()
    if inputs is not None:
        edge_only = _non_leaf_edges(inputs)
        inputs = _differentiated(inputs, "backward")
    if retain_graph is None:
        retain_graph = create_graph
    if observe.observer is not None:  # (a backward inside a function ad.compile records: ad/compile_program.py)
        return observe.observer.grad_event(
            "backward", _backward, outputs, inputs, grad_tensors, retain_graph, create_graph, ()
        )
    if _multi_grad_hooks.ACTIVE[0] or _saved_mutation.ENGAGED[0]:
        args = (outputs, inputs, grad_tensors, retain_graph, create_graph, edge_only)
        return _engaged_call(_backward, args, outputs, inputs, False)
    _backward(outputs, inputs, grad_tensors, retain_graph, create_graph, edge_only)


def _engaged_call(fn, args, outputs, inputs, is_grad):
    """``fn(*args)``, a ``backward`` (``is_grad`` false) or ``grad`` call, while multi-grad hooks exist (they
    collect gradients per call: ``multi_grad_hooks.run_call``) or ``allow_mutation_on_saved_tensors`` is engaged
    (the compiled sweep reads the saved values it froze: ``saved_mutation.around_call``)."""
    if _saved_mutation.ENGAGED[0]:
        if _multi_grad_hooks.ACTIVE[0]:
            args = (fn, args, outputs, inputs, is_grad)
            fn = _multi_grad_hooks.run_call
        return _saved_mutation.around_call(fn, args)
    return _multi_grad_hooks.run_call(fn, args, outputs, inputs, is_grad)


def _backward(outputs, inputs, grad_tensors, retain_graph, create_graph, edge_only=()):
    seeds = _make_seeds(outputs, grad_tensors, create_graph)
    targets = {id(t): t for t in inputs} if inputs is not None else {}
    _check_not_stale(targets.values())
    if inputs is not None:
        for t in inputs:
            if t._op is not None and id(t) not in edge_only:
                # as torch: backward(inputs=[non-leaf]) fills its .grad; the sweep does it, as for any
                # retained tensor, so a tensor both retained and in ``inputs`` gets its gradient once
                t.retain_grad()
    # (as torch's engine for backward(inputs=...): a requested non-leaf's own node runs too)
    stack = _sweep_stack()
    stack.append(inputs is None)
    try:
        leaf_grads, target_grads = _run(outputs, seeds, targets, retain_graph, create_graph, run_targets=True)
    finally:
        stack.pop()
    if _sweep_hooks.READY[0]:  # distributed (issue 14): leaves the sweep did not hand to their hooks
        _sweep_hooks.finish(leaf_grads, inputs, create_graph)

    updates = []
    if inputs is None and not create_graph and _bulk_grads(leaf_grads):
        pass  # (every leaf took its cotangent as its new .grad)
    elif inputs is None:
        if not create_graph:
            # the hot path of a training step: leaves without hooks and without a .grad yet take the
            # cotangent as it is (fresh memory of this backward)
            for t, g in engine.leaf_pairs(leaf_grads):
                if t._grad is None and t._hooks is None and t._rg:
                    if type(g) is np.ndarray:  # (wrap_array, inlined: one per leaf of the step)
                        t._grad = _new(Tensor)
                        t._grad._data = g
                    else:
                        t._grad = _as_tensor(g)  # (a CUDA leaf's entry is a CUDA tensor)
                elif t._rg:
                    updates.append((t, g))
        else:
            for t, g in engine.leaf_pairs(leaf_grads):
                if t._rg:
                    updates.append((t, g))
    else:
        for t in targets.values():  # (a tensor listed twice gets its gradient once, as torch)
            hit = leaf_grads.get(id(t)) if t._op is None else None  # non-leaves: retained by the sweep
            if hit is not None:
                updates.append((t, hit[1]))
    with no_grad() if not create_graph else enable_grad():
        results = [(t, _leaf_result(t, g, create_graph) if t._op is None else _as_tensor(g)) for t, g in updates]
    for t, g in results:
        if t._hooks and t._grad is None and not create_graph and t._op is None and g._dev is None:
            # the hooks saw ``g`` and may keep it: ``.grad`` takes a copy, so that the next backward's in-place
            # accumulation does not change what they kept (torch's AccumulateGrad clones a gradient it does not
            # hold the only reference to)
            g = wrap_array(g._data.copy())
        _accumulate(t, g, create_graph)
    # ---- modules (issue 15): post-accumulate-grad hooks, after every .grad of this backward is written
    if _graph._POST_ACC[0]:
        chosen = [e[0] for e in leaf_grads.values() if inputs is None or any(e[0] is t for t in inputs)]
        _graph.run_post_accumulate_grad_hooks(chosen)


def _bulk_grads(leaf_grads):
    """``_backward``'s hot path for a replayed many-leaf step (``LeafGrads.bulk``: the leaves and cotangents
    in lists) in C-level passes: when no leaf has a ``.grad`` or hooks and all require grad, each takes its
    cotangent (fresh memory of this backward) as a new ``.grad``; False (nothing done) otherwise."""
    bulk = getattr(leaf_grads, "bulk", None)
    if bulk is None or len(bulk[0]) != len(leaf_grads):  # (entries added since the hand-over: the generic way)
        return False
    leaves, arrays = bulk
    if (
        any(map(is_not, map(_GRAD, leaves), repeat(None)))  # (``is not None``: a Tensor's truth is its value's)
        or any(map(_HOOKS, leaves))  # (a dict of hooks or None; an emptied one runs none: as none at all)
        or not all(map(_RG, leaves))
    ):
        return False
    grads = list(map(_new, repeat(Tensor, len(arrays))))  # (wrap_array, as C-level passes)
    deque(map(setattr, grads, repeat("_data"), arrays), maxlen=0)
    deque(map(setattr, leaves, repeat("_grad"), grads), maxlen=0)
    return True


_GRAD, _HOOKS, _RG = attrgetter("_grad"), attrgetter("_hooks"), attrgetter("_rg")


def _as_tensor(g):
    return g if isinstance(g, Tensor) else wrap_array(g)


def _accumulate(t, g, create_graph):
    """Add ``g`` into ``t.grad``. ``g`` is fresh memory of this backward (a cotangent or a hook's result)
    unless a hook returned a tensor it also keeps; ``.grad`` only ever takes it over when it is fresh."""
    if t._grad is None:
        if create_graph:
            t._grad = g
        elif g._rg:
            t._grad = g.detach()
        else:
            t._grad = g
    elif create_graph or t._grad._rg or g._rg:
        t._grad = t._grad + g
    elif t._grad._dev is not None:
        from ..cuda.ops import accumulate

        accumulate(t._grad, g)
        t._grad._version += 1
    else:
        np.add(t._grad._data, g._data, out=t._grad._data, casting="unsafe")
        t._grad._version += 1


def grad(
    outputs,
    inputs,
    grad_outputs=None,
    retain_graph=None,
    create_graph=False,
    only_inputs=True,
    allow_unused=None,
    is_grads_batched=False,
    materialize_grads=False,
):
    """Return the gradients of ``outputs`` with respect to ``inputs`` (never accumulates into ``.grad``).

    Args:
        outputs: tensor(s) to differentiate.
        inputs: tensor(s) (leaves or not) to differentiate with respect to.
        grad_outputs: the vectors of the vector-Jacobian product; ``None`` is allowed for scalar outputs.
        retain_graph: keep the graph for another backward; defaults to ``create_graph``.
        create_graph: record the derivative computation, for higher-order derivatives.
        allow_unused: return ``None`` for inputs the outputs do not depend on instead of raising; defaults
            to ``materialize_grads``.
        is_grads_batched: the first dimension of each grad_output is a batch of cotangents.
        materialize_grads: return zeros instead of ``None`` for unused inputs.

    Returns:
        A tuple with one gradient (or ``None``) per input.

    Raises:
        RuntimeError: as ``backward``; an input that does not require grad; an unused input without
            ``allow_unused``.
        ValueError: ``allow_unused=False`` together with ``materialize_grads=True``.

    Example:
        >>> x = ad.tensor(3.0, requires_grad=True)
        >>> (g,) = ad.autograd.grad(x ** 3, x, create_graph=True)
        >>> ad.autograd.grad(g, x)
        (tensor(18.),)
    """
    if materialize_grads and allow_unused is False:
        raise ValueError(
            "Expected allow_unused to be True or not passed when materialize_grads=True, but got: allow_unused=False."
        )
    if allow_unused is None:
        allow_unused = materialize_grads
    if outputs is None:
        raise TypeError("'NoneType' object is not iterable: grad() needs the outputs to differentiate")
    outputs = _edges_to_tensors(_as_tuple(outputs, "outputs"))
    inputs_t = _differentiated(inputs, "grad")
    if retain_graph is None:
        retain_graph = create_graph
    options = (allow_unused, is_grads_batched, materialize_grads)
    if observe.observer is not None:  # (a grad inside a function ad.compile records: ad/compile_program.py)
        return observe.observer.grad_event(
            "grad", _grad_call, outputs, inputs_t, grad_outputs, retain_graph, create_graph, options
        )
    if _multi_grad_hooks.ACTIVE[0] or _saved_mutation.ENGAGED[0]:
        args = (outputs, inputs_t, grad_outputs, retain_graph, create_graph, *options)
        return _engaged_call(_grad_call, args, outputs, inputs_t, True)
    return _grad_call(outputs, inputs_t, grad_outputs, retain_graph, create_graph, *options)


def _grad_call(
    outputs, inputs_t, grad_outputs, retain_graph, create_graph, allow_unused, is_grads_batched, materialize_grads
):
    stack = _sweep_stack()
    stack.append(False)
    try:
        if is_grads_batched:
            return _batched_grad(
                outputs, inputs_t, grad_outputs, retain_graph, create_graph, allow_unused, materialize_grads
            )
        return _grad(outputs, inputs_t, grad_outputs, retain_graph, create_graph, allow_unused, materialize_grads)
    finally:
        stack.pop()


UNUSED_INPUT_MESSAGE = (
    "One of the differentiated Tensors appears to not have been used in the graph. Set "
    "allow_unused=True if this is the desired behavior."
)


def _grad(outputs, inputs_t, grad_outputs, retain_graph, create_graph, allow_unused, materialize_grads):
    seeds = _make_seeds(outputs, grad_outputs, create_graph)
    # a non-leaf written under no_grad is differentiated at its node before the write (torch's grad_fn is
    # unchanged by such a write: the uses before and after it count)
    nodes = [_pre_write_node(t) if t._op is not None else t for t in inputs_t]
    targets = {id(t): t for t in nodes}
    _check_not_stale(targets.values())
    leaf_grads, target_grads = _run(outputs, seeds, targets, retain_graph, create_graph)
    result = []
    unused = False
    # the leaves' hooks run under the grad mode of the sweep (a hook's ad ops are recorded only with create_graph)
    hooked = False
    for t in inputs_t:  # (a loop, not any(generator): once per input of every call)
        if t._hooks and t._op is None:
            hooked = True
            break
    with (no_grad() if not create_graph else enable_grad()) if hooked else _NO_MODE_CHANGE:
        for t, node in zip(inputs_t, nodes):
            hit = leaf_grads.get(id(t)) if t._op is None else target_grads.get(id(node))
            if hit is None:
                unused = True  # raised after the other inputs' hooks ran, as torch's engine does
                # (with create_graph, torch's materialized zeros require grad, as any other gradient)
                result.append(
                    wrap_array(np.zeros(t.shape, t._data.dtype), requires_grad=create_graph)
                    if materialize_grads
                    else None
                )
                continue
            g = hit[1]
            if t._op is None:
                g = _leaf_result(t, g, create_graph)
            else:
                # a cotangent-arena view (fresh memory of this sweep) or the differentiable sweep's tensor
                g = g if isinstance(g, Tensor) else wrap_array(g)
            result.append(g)
    if unused and not allow_unused:
        raise RuntimeError(UNUSED_INPUT_MESSAGE)
    return tuple(result)


def _batched_grad(outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused, materialize_grads):
    """``is_grads_batched=True``: entry ``b`` of the leading dimension of every grad_output is the ``b``-th
    cotangent; the result's leading dimension indexes the same VJPs. Without ``create_graph`` all B VJPs are
    one compiled sweep (``ad/batched.py``); so are they in the differentiable sweep (``create_graph``, forward-mode
    levels), its cotangents carrying the batch as batched tangents (``batched.batched_graph_grad``), except in
    anomaly mode and through custom Functions (ad's linear algebra included) or hooks: those run once per
    cotangent and stack."""
    seeds, batch = _batched_seeds(outputs, grad_outputs)
    for i, out in enumerate(outputs):
        if not out._rg:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have a grad_fn")
    if create_graph or _fw.levels or anomaly_mode._enabled or _cuda.reaches_device_tape(outputs):
        # (the batched kernel sweep runs CPU tapes only: a graph with CUDA nodes takes the differentiable sweep,
        # whose device ops carry the batch as batched tangents)
        res = None
        if not anomaly_mode._enabled:  # one differentiable sweep carrying the batch (ad/batched.py)
            res = batched.batched_graph_grad(
                grad, outputs, inputs, seeds, batch, retain_graph, create_graph, allow_unused
            )
        if res is None:
            return _looped_grad(
                outputs, inputs, seeds, batch, retain_graph, create_graph, allow_unused, materialize_grads
            )
        return tuple(
            r if r is not None or not materialize_grads else zeros_like(t, requires_grad=create_graph)
            for r, t in zip(res, inputs)
        )

    targets = {id(t): t for t in inputs}
    leaf_grads, target_grads = batched.batched_kernel_sweep(
        outputs, [g._data for g in seeds], targets, retain_graph, batch
    )
    result = []
    unused = []
    for k, t in enumerate(inputs):
        hit = leaf_grads.get(id(t)) if t._op is None else target_grads.get(id(t))
        if hit is None:
            unused.append(k)
            # (torch's materialized zeros are not batched either)
            result.append(wrap_array(np.zeros(t.shape, t._data.dtype)) if materialize_grads else None)
            continue
        g = hit[1]
        if t._op is None and t._hooks:  # a hook sees one cotangent at a time, as under torch's vmap
            with no_grad():
                g = np.stack([engine.run_hooks(t, wrap_array(np.array(gb)))._data for gb in g])
        result.append(wrap_array(np.ascontiguousarray(g)))
    if unused and not allow_unused:
        raise RuntimeError(
            f"The differentiated Tensor at index {unused[0]} appears to not have been used in the graph. Set "
            "allow_unused=True if this is the desired behavior."
        )
    return tuple(result)


def _identity_rows(outputs, inputs, retain_graph):
    """``functional.jacobian``'s rows without ``create_graph``: ``grad(outputs, inputs, I, is_grads_batched=True,
    allow_unused=True)`` for the identity ``I`` over the outputs' elements taken together (output ``i``'s seed is
    its block of columns of ``I``: see functional's ``_standard_basis``), as one compiled sweep. What ``grad``
    checks cannot fail here (the inputs require grad, the seeds are well formed), so this skips it and the
    tensors around the seeds and results: a list with a ``(B,) + input.shape`` array or None per input, or None
    where the general path must run (forward-mode levels, anomaly mode, a graph with CUDA nodes, no element)."""
    if _fw.levels or anomaly_mode._enabled or observe.observer is not None or _cuda.reaches_device_tape(outputs):
        return None  # (observe.observer: ad.compile is recording, and records grad()'s sweep, not this one)
    numels = [out._data.size for out in outputs]
    total = sum(numels)
    if total == 0:  # (grad's IndexError for an empty batch)
        return None
    roots, seeds = [], []
    start = 0
    for out, n in zip(outputs, numels):
        if out._rg:  # (an output that does not require grad adds nothing: its rows stay zeros, as in grad)
            roots.append(out)
            seeds.append(batched.IdentitySeed(start))
        start += n
    if not roots:
        return [None] * len(inputs)
    stack = _sweep_stack()
    stack.append(False)
    try:
        leaf_grads, target_grads = batched.batched_kernel_sweep(
            roots, seeds, {id(t): t for t in inputs}, retain_graph, total
        )
    finally:
        stack.pop()
    rows = []
    for t in inputs:
        hit = leaf_grads.get(id(t)) if t._op is None else target_grads.get(id(t))
        if hit is None:
            rows.append(None)
            continue
        g = hit[1]
        if t._op is None and t._hooks:  # (``func`` hooked its input) one cotangent at a time, as in grad
            with no_grad():
                g = np.stack([engine.run_hooks(t, wrap_array(np.array(gb)))._data for gb in g])
        rows.append(g)
    return rows


def _batched_seeds(outputs, grad_outputs):
    """Check batched grad_outputs as torch does; return them (Tensors in each output's dtype) and B."""
    if isinstance(grad_outputs, Tensor):
        grad_outputs = (grad_outputs,)
    elif grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    else:
        grad_outputs = _as_tuple(grad_outputs, "grad_outputs")
    if len(grad_outputs) != len(outputs):
        raise RuntimeError(f"got {len(outputs)} tensors and {len(grad_outputs)} gradients")
    seeds = []
    batch = None
    for i, (g, out) in enumerate(zip(grad_outputs, outputs)):
        if not isinstance(out, Tensor):
            raise AssertionError(f"Expected output to be a torch.Tensor, but outputs[{i}] is {type(out).__name__}")
        if g is None:
            if out._data.size != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            # torch: vmap over the implicit (unbatched) ones fails the same way
            raise ValueError(
                f"is_grads_batched=True needs a batched grad_output for output {i}: got None, which has no batch "
                "dimension (vmap(vjp, in_dims=0): expected in_dim to satisfy 0 <= in_dim < 0)"
            )
        if not isinstance(g, Tensor):
            if not isinstance(g, (np.ndarray, list)):
                raise TypeError(f"gradients can be either Tensors or None, but got {type(g).__name__}")
            g = wrap_array(np.asarray(g))
        if g.ndim == 0:
            raise IndexError(
                f"is_grads_batched=True: grad_output[{i}] is 0-dimensional; its first dimension must be the batch"
            )
        if g.shape[1:] != out.shape:
            raise RuntimeError(
                "If `is_grads_batched=True`, we interpret the first dimension of each grad_output as the batch "
                "dimension. The sizes of the remaining dimensions are expected to match the shape of "
                f"corresponding output, but a mismatch was detected: grad_output[{i}] has a shape of "
                f"{_size_str(g.shape[1:])} and output[{i}] has a shape of {_size_str(out.shape)}. If you only want "
                "some tensors in `grad_output` to be considered batched, consider using vmap."
            )
        if batch is None:
            batch = g.shape[0]
        elif g.shape[0] != batch:
            raise ValueError(
                "vmap: Expected all tensors to have the same size in the mapped dimension, got sizes "
                f"[{batch}, {g.shape[0]}] for the mapped dimension"
            )
        if g._data.dtype != out._data.dtype:
            g = g.to(out._data.dtype)
        seeds.append(g)
    if batch == 0:
        raise IndexError("is_grads_batched=True: the batch dimension of grad_outputs has size 0")
    return seeds, batch


def _looped_grad(outputs, inputs, seeds, batch, retain_graph, create_graph, allow_unused, materialize_grads):
    """One ``grad`` per cotangent, stacked (the differentiable sweep's rules take one cotangent)."""
    from .. import ops

    per_input = [[] for _ in inputs]
    for b in range(batch):
        res = grad(
            outputs,
            inputs,
            [g[b] for g in seeds],
            retain_graph=True if b < batch - 1 else retain_graph,
            create_graph=create_graph,
            allow_unused=allow_unused,
            materialize_grads=False,
        )
        for k, r in enumerate(res):
            per_input[k].append(r)
    out = []
    for t, rs in zip(inputs, per_input):
        if any(r is None for r in rs):
            out.append(zeros_like(t, requires_grad=create_graph) if materialize_grads else None)
        else:
            out.append(ops.stack(rs, 0))
    return tuple(out)


from . import (
    forward_ad,  # noqa: E402
    functional,  # noqa: E402, F401
)
from .function import Function, FunctionCtx  # noqa: E402
from .gradcheck import GradcheckError, gradcheck, gradgradcheck  # noqa: E402
from .variable import Variable, is_multithreading_enabled, set_multithreading_enabled  # noqa: E402
