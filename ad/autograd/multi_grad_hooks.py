"""``register_multi_grad_hook``: one hook over the gradients of several tensors, as
``torch.autograd.graph.register_multi_grad_hook`` (re-exported by ``ad.autograd.graph``).

Built on tensor hooks (``Tensor.register_hook``), so it runs wherever they run: the compiled sweep stops at the
tensors' rows (hook rows), a leaf's hook runs on its total gradient before ``.grad`` is written, the
differentiable sweep (``create_graph``) and ``ad.compile``'s replays call them as in eager mode.

State: ``ACTIVE[0]`` counts the multi-grad hooks registered and not removed; while it is 0, ``backward`` and
``grad`` skip all of this. Otherwise each call runs inside a ``_Call`` (a thread-local stack: a hook may run a
nested backward) holding its outputs and inputs and, per multi-grad hook, the gradients that arrived
(``_Arrivals``).

- ``mode="all"``: at the first arrival in a call, the hook works out which of its tensors this call will
  reach, as torch's engine decides which nodes it runs (``engine.graph_nodes`` from the outputs; with inputs,
  ``engine._Plan``'s tensors that lead to them), and calls ``fn(grads)`` when the last of those has arrived, with
  ``None`` for the tensors not reached. Where the engine gives a reached tensor no gradient after all, ``fn``
  runs when the call ends, with what arrived. In ``grad()`` a leaf among the tensors raises torch's error (its
  engine cannot tell whether ``grad`` will reach a leaf).
- ``mode="any"``: ``fn(grad)`` with the first gradient that arrives in a call, once per call.
"""

import threading

from ..tensor import Tensor, _pre_write_node

__all__ = ["register_multi_grad_hook"]

ACTIVE = [0]

_MODES = ("all", "any")
_LEAF_IN_GRAD = (
    "A leaf node was passed to _will_engine_execute_node but we are currently running autograd.grad(). "
    "This is currently not supported."
)


class _Stack(threading.local):
    def __init__(self):
        self.calls = []


_stack = _Stack()


class _Arrivals:
    __slots__ = ("grads", "arrived", "expected", "fired")

    def __init__(self, n):
        self.grads = [None] * n
        self.arrived = set()
        self.expected = None  # positions of the tensors this call reaches (mode "all", at the first arrival)
        self.fired = False


class _Call:
    """One ``backward()`` or ``grad()`` call while multi-grad hooks exist."""

    __slots__ = ("outputs", "inputs", "is_grad", "arrivals", "_reached")

    def __init__(self, outputs, inputs, is_grad):
        self.outputs = outputs
        self.inputs = inputs
        self.is_grad = is_grad
        self.arrivals = {}  # id(_MultiHandle) -> (handle, _Arrivals)
        self._reached = None

    def reached(self):
        """Ids of the tensors whose gradient this call computes (their hooks run), found once per call."""
        if self._reached is None:
            from .. import engine

            roots = [t for t in self.outputs if isinstance(t, Tensor)]
            if self.inputs is None:
                nodes = engine.graph_nodes(roots)
                reached = set(nodes)
                for _, operands in nodes.values():
                    for x in operands:
                        if x is not None and x._rg and x._op is None:
                            reached.add(id(x))
                reached.update(id(t) for t in roots if t._rg and t._op is None)
            else:
                targets = {}
                for t in self.inputs:
                    node = _pre_write_node(t) if t._op is not None and self.is_grad else t
                    targets[id(node)] = node
                reached = engine._Plan(roots, targets, run_targets=not self.is_grad).leads
            self._reached = reached
        return self._reached


def run_call(fn, args, outputs, inputs, is_grad):
    """Run ``fn(*args)`` (``backward``'s or ``grad``'s work) as one call for the multi-grad hooks; when it
    returns, a hook in mode "all" that got some gradients but not all it expected runs with those."""
    call = _Call(outputs, inputs, is_grad)
    _stack.calls.append(call)
    try:
        result = fn(*args)
    finally:
        _stack.calls.pop()
    for handle, state in list(call.arrivals.values()):
        if not state.fired and state.arrived and not handle.removed:
            state.fired = True
            handle.fn(list(state.grads))
    return result


class _MultiHandle:
    """Handle of a multi-grad hook: ``remove()`` unregisters its tensor hooks (also as a context manager)."""

    def __init__(self, fn, mode, count):
        self.fn = fn
        self.mode = mode
        self.count = count
        self.handles = []
        self.removed = False

    def remove(self):
        if self.removed:
            return
        self.removed = True
        for h in self.handles:
            h.remove()
        ACTIVE[0] -= 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False


def _arrive(handle, tensors, k, g):
    calls = _stack.calls
    if not calls:  # (a sweep outside backward/grad: no call to collect the gradients over)
        if handle.mode == "any":
            handle.fn(g)
        else:
            grads = [None] * handle.count
            grads[k] = g
            handle.fn(grads)
        return
    call = calls[-1]
    entry = call.arrivals.get(id(handle))
    if entry is None:
        entry = call.arrivals[id(handle)] = (handle, _Arrivals(handle.count))
    state = entry[1]
    if state.fired:
        return
    if handle.mode == "any":
        state.fired = True
        handle.fn(g)
        return
    if state.expected is None:
        if call.is_grad and any(t._op is None for t in tensors):
            raise RuntimeError(_LEAF_IN_GRAD)
        reached = call.reached()
        state.expected = {
            j for j, t in enumerate(tensors) if id(_pre_write_node(t) if t._op is not None else t) in reached
        }
    state.grads[k] = g
    state.arrived.add(k)
    if state.expected <= state.arrived:
        state.fired = True
        handle.fn(list(state.grads))


def register_multi_grad_hook(tensors, fn, *, mode="all"):
    """Register a hook over the gradients of several tensors.

    ``mode="all"``: in each backward (``backward()`` or ``autograd.grad``) that reaches some of ``tensors``,
    ``fn(grads)`` runs once, after the gradients of all the tensors that backward reaches are computed, with a
    list holding one gradient per tensor (``None`` for those not reached). ``mode="any"``: ``fn(grad)`` runs
    once per backward with the first gradient computed. ``fn``'s return value is ignored.

    Args:
        tensors: a sequence of tensors (in mode "all" each must require grad).
        fn: the hook.
        mode: ``"all"`` or ``"any"``.

    Returns:
        A handle whose ``remove()`` unregisters the hook.

    Raises:
        ValueError: an unknown ``mode`` (torch's message).
        AssertionError: in mode "all", a tensor that does not require grad (torch's class and message).
        RuntimeError: (during ``autograd.grad``) mode "all" with a leaf among ``tensors``: torch's engine does
            not support that.

    Example:
        >>> seen = []
        >>> h = ad.autograd.graph.register_multi_grad_hook((a, b), seen.append)
        >>> (a * 2).sum().backward()
        >>> seen        # [tensor([2., 2.]), None]
        >>> h.remove()
    """
    if mode not in _MODES:
        raise ValueError(f"Expects mode to be one of {_MODES} but got {mode}")
    tensors = tuple(tensors)
    if mode == "all":
        for t in tensors:
            if not t.requires_grad:
                raise AssertionError("Expected gradient function to be set")
    handle = _MultiHandle(fn, mode, len(tensors))
    for k, t in enumerate(tensors):
        if not t.requires_grad:
            continue  # (mode "any": a tensor without a gradient never fires)
        handle.handles.append(t.register_hook(lambda g, k=k: _arrive(handle, tensors, k, g)))
    ACTIVE[0] += 1
    return handle
