"""Hooks a ``backward()`` call runs for data-parallel training (``ad.distributed.DataParallel``): the
equivalents of torch's hooks on ``AccumulateGrad`` nodes and of ``Variable._execution_engine.queue_callback``.

- Gradient-ready hooks: ``register_grad_ready_hook(leaf, hook)`` keeps ``hook(leaf, grad)`` in the leaf's
  ``_grad_ready_hooks`` dict (``READY[0]`` counts the leaves that ever had one, so ``backward`` skips all of
  this when it is 0). ``grad`` is a read-only numpy array, the leaf's complete gradient from this ``backward()``
  call, before the leaf's tensor hooks and before it is accumulated into ``.grad`` (no ``.grad`` has been
  written yet when a hook runs). The hook must copy what it keeps: the array is the sweep's memory.
  Where it runs: a tape that imports such a leaf registers a hook row just below the leaf's first use
  (``Tape.import_tensor``), so the compiled sweep (``engine._sweep_tape``) stops once the leaf's cotangent is
  complete and calls ``leaf_ready``, while the rows below are still to be swept: that is what lets an all-reduce
  start early and overlap the rest of the sweep. A leaf whose gradient cannot be known complete there (used on
  another live tape, tensor hooks of its own, ``backward(inputs=...)``) and every leaf of a differentiable
  sweep (``create_graph``, anomaly mode, forward-mode levels) is handed over by ``finish`` once the sweep is
  over, still before any ``.grad`` is written. ``autograd.grad`` (which writes no ``.grad``) runs none.
- Final callbacks: ``queue_callback(fn)``, called while a ``backward()`` runs (from a hook), runs ``fn()`` once
  that backward has written every ``.grad`` and run the post-accumulate-grad hooks. A backward that raises
  drops its callbacks.

State: a thread-local stack of ``_Frame`` (one per running ``backward()``, which may nest: a hook may call
backward). ``backward`` is wrapped by ``runs_final_callbacks``, which pushes and pops the frame.
"""

import functools
import threading

from .. import engine
from ..tensor import Tensor
from .graph import register_leaf_hook

READY = [0]


class _Frame:
    __slots__ = ("callbacks", "ready", "leaf_roots")

    def __init__(self, roots):
        self.callbacks = []
        self.ready = set()  # ids of the leaves whose gradient-ready hooks ran in this backward
        # leaves differentiated as outputs themselves: their seed is added apart from any tape, so the sweep
        # cannot tell when their gradient is complete (``finish`` hands them over)
        roots = roots if isinstance(roots, (list, tuple)) else (roots,)
        self.leaf_roots = {id(t) for t in roots if isinstance(t, Tensor) and t._op is None}


class _Stack(threading.local):
    def __init__(self):
        self.frames = []


_stack = _Stack()


def current_frame():
    """The frame of the innermost running ``backward()`` of this thread, or ``None``."""
    return _stack.frames[-1] if _stack.frames else None


def runs_final_callbacks(backward):
    """Wrap ``autograd.backward``: a frame for its hooks and callbacks; the callbacks run after it returns."""

    @functools.wraps(backward)
    def wrapper(*args, **kwargs):
        frame = _Frame(args[0] if args else kwargs.get("tensors"))
        _stack.frames.append(frame)
        try:
            backward(*args, **kwargs)
            # (a callback may queue another one: torch runs those too)
            k = 0
            while k < len(frame.callbacks):
                frame.callbacks[k]()
                k += 1
        finally:
            _stack.frames.pop()

    return wrapper


def queue_callback(callback):
    """Run ``callback()`` when the running ``backward()`` finishes (after every ``.grad`` is written), as
    torch's ``Variable._execution_engine.queue_callback``.

    Raises:
        RuntimeError: no backward is running in this thread.

    Example:
        >>> def hook(g):
        ...     ad.autograd.sweep_hooks.queue_callback(lambda: print("grads written"))
        >>> h = y.register_hook(hook); y.sum().backward()
        grads written
    """
    frame = current_frame()
    if frame is None:
        raise RuntimeError("Final callbacks can only be installed during backward pass.")
    frame.callbacks.append(callback)


def register_grad_ready_hook(tensor, hook):
    """Register ``hook(tensor, grad)``, called once per ``backward()`` with the leaf's complete gradient from
    that backward (a read-only numpy array, before tensor hooks and accumulation), as early in the sweep as
    the engine can tell it is complete. Returns a handle with ``remove()``.

    Raises:
        RuntimeError: ``tensor`` does not require grad or is not a leaf.
    """
    return register_leaf_hook(
        tensor, hook, "_grad_ready_hooks", READY, "gradient-ready hooks can only be registered on leaf tensors"
    )


def _call(frame, t, g):
    frame.ready.add(id(t))
    if g.dtype != t._data.dtype:
        g = g.astype(t._data.dtype)
    g = g.reshape(t._data.shape).view()
    g.flags.writeable = False
    for hook in list(t._grad_ready_hooks.values()):
        hook(t, g)


def leaf_ready(s, t, h):
    """Called by the compiled sweep of tape ``s.tape`` stopped before row ``h``, right below a row that uses
    leaf ``t``: run ``t``'s gradient-ready hooks if its cotangent is now complete."""
    frame = current_frame()
    if frame is None or s.plan is not None or t._hooks or not t.__dict__.get("_grad_ready_hooks"):
        return
    if id(t) in frame.ready or id(t) in frame.leaf_roots:
        return
    tape = s.tape
    offs = []
    for row, off, x in tape.externs[: s.nexterns]:
        if x is t:
            if row <= h:
                return  # an earlier import of t (before an in-place change) is still to be swept
            offs.append(off)
    for ref, _ in t._imports or ():
        other = ref()
        if other is not None and other is not tape:
            hit = other.imports.get(id(t))
            if hit is not None and hit[2] is t:
                return  # another live tape may add to t's gradient: ``finish`` hands it over
    n = t._data.size
    parts = [s.cot[off : off + n] for off in offs if s.live[off]]
    if not parts:
        return
    g = parts[0]
    for p in parts[1:]:
        g = g + p
    _call(frame, t, g)


engine.on_leaf_ready = leaf_ready


def finish(leaf_grads, inputs, create_graph):
    """After the sweep, before ``.grad`` is written: run the gradient-ready hooks of the leaves the sweep did
    not hand over (``leaf_grads``: ``{id: (tensor, cotangent, ...)}`` as the engine returns it)."""
    frame = current_frame()
    if frame is None:
        return
    for entry in leaf_grads.values():
        t = entry[0]
        if id(t) in frame.ready or not t._rg or not t.__dict__.get("_grad_ready_hooks"):
            continue
        if inputs is not None and not any(t is x for x in inputs):
            continue
        if create_graph:
            raise RuntimeError(
                "gradient-ready hooks (ad.distributed.DataParallel) do not support backward(create_graph=True): "
                "the gradient they reduce would not be part of the recorded graph"
            )
        g = entry[1]
        _call(frame, t, getattr(g, "_data", g))
