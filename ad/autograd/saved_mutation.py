"""``allow_mutation_on_saved_tensors``: in-place writes into tensors saved for backward, with the gradient
computed from the values they had when saved, as ``torch.autograd.graph.allow_mutation_on_saved_tensors``
(re-exported by ``ad.autograd.graph``).

ad's ops save values in their tape's value arena, which the compiled sweep reads by offset: a recorded tensor's
storage is its own arena region; a view or an imported tensor (a leaf, a constant, a tensor of another tape) has
a copy there. An in-place write flags the arena copies it makes stale (``tape.mark_modified``), so that a
backward reading one raises. Inside the context:

- The tapes are this context's own: entering and leaving retire the thread's current tapes, so the tapes with
  an id from the context's ``first_tape`` on hold only rows recorded inside.
- Before a write (``views.check_write``, which every in-place write passes first, calls ``before_write``), the
  arena regions of those tapes that the write will flag (the written tensor's, its aliases', their imports':
  the regions ``mark_modified`` walks) become *frozen*: where one is the storage being written, the storage of
  the written tensor and its aliases moves to a copy first (``_move_storage``), so the region keeps the value
  the graph saved, for good; an imported copy keeps it anyway.
- A backward inside the context has the compiled sweep read the tapes' modified flags with the frozen regions
  cleared (``engine.kernel_flags``, for the duration of the call): those rows read their saved values.
- What reads saved values from tensor objects rather than arena regions keeps the flags and raises torch's
  modified-in-place error instead of reading a value written since (never a silent wrong gradient): rows over
  ``BIG_ROW`` elements or more (which read the tensors themselves: ``tape.import_new``), the differentiable sweep
  (``create_graph=True``, anomaly mode, forward-mode levels), batched sweeps. A storage that cannot be moved
  (a CUDA tensor's, an ``as_strided`` storage wider than its base) is not frozen either.
- Custom Functions' ``save_for_backward`` (ad's Python-swept primitives included) goes through a
  ``saved_tensors_hooks`` pair: a write into a saved tensor's storage first clones it, and ``saved_tensors``
  returns the clone. The clone has no graph: a double backward (``create_graph``) that needs it raises.
- Leaving the context makes its live tapes refuse backward (``_refused``, which the sweeps check where they take
  a tape: ``engine.refused_tapes``): torch's AssertionError, also for a graph without writes.

State: ``ENGAGED[0]`` is true while a context is active (until the next ``backward`` or ``grad`` after it), so
that those calls skip all of this otherwise.
"""

import threading
import weakref

import numpy as np

from .. import engine, grad_mode, views
from .. import tape as _tape
from ..tensor import Tensor
from ..views import _addr
from .graph import saved_tensors_hooks

__all__ = ["allow_mutation_on_saved_tensors"]

ENGAGED = [False]
_OUTSIDE = (
    "Trying to backward outside of the 'allow_mutation_on_saved_tensors' contextin which the graph was originally "
    "recorded."
)  # (torch's wording, its missing space included)
_lock = threading.Lock()
_active = [None]  # the context now entered (torch's contexts are process-wide and do not nest)


class _RefusedTapes(weakref.WeakSet):
    """The tapes recorded in a context already left (``engine.refused_tapes``: a sweep that takes one raises)."""

    @staticmethod
    def error():
        return AssertionError(_OUTSIDE)


_refused = _RefusedTapes()


class _SavedByFunction:
    """A tensor a custom Function saved inside the context, or the clone made of it before a write."""

    __slots__ = ("tensor", "clone", "context", "version", "__weakref__")

    def __init__(self, tensor, context):
        self.tensor = tensor
        self.clone = None
        self.context = context
        self.version = tensor._version  # (a write that bypassed ``before_write`` still raises on unpack)

    def rebind(self, swap):
        """A saved output of forward becomes the recorded output (``FunctionCtx._snapshot_saved``), so that a
        double backward through it reaches the call, as without the context."""
        t = swap.get(id(self.tensor))
        if t is not None and self.clone is None:
            self.tensor = t
            self.version = t._version


class _AllowMutationOnSavedContext:
    def __init__(self):
        self.first_tape = 0
        self.closed = False
        self.frozen = {}  # tape id -> (tape, offsets of regions that keep their saved values for good)
        self.saved = weakref.WeakSet()  # _SavedByFunction of this context still held by a ctx
        self.hooks = saved_tensors_hooks(self.pack, self.unpack)

    def pack(self, t):
        s = _SavedByFunction(t, self)
        self.saved.add(s)
        return s

    def unpack(self, s):
        if s.context.closed:
            raise AssertionError(_OUTSIDE)
        if s.clone is None:
            if s.tensor._version != s.version:
                raise RuntimeError(
                    "one of the variables needed for gradient computation has been modified by an inplace "
                    f"operation: a tensor a custom Function saved is at version {s.tensor._version}; expected "
                    f"version {s.version} instead (it was written in a way allow_mutation_on_saved_tensors does not "
                    "see: resize_, set_)"
                )
            return s.tensor
        if grad_mode.is_grad_enabled() and s.tensor._rg:
            raise RuntimeError(
                "a tensor saved for backward by a custom Function was modified in place under "
                "allow_mutation_on_saved_tensors: its saved clone has no graph, so ad cannot differentiate "
                "through it (create_graph=True); use a first-order backward, or clone() before the write"
            )
        return s.clone

    def before_write(self, t):
        """Freeze the regions ``mark_modified(t)`` will flag on this context's tapes, and clone the
        Function-saved tensors that share ``t``'s storage, before ``t`` is written."""
        root = t._vbase if t._vbase is not None else t
        vc = root._vc
        aliases = list(vc.members) if vc is not None and vc.refs else []
        for m in (root, t):
            if not any(a is m for a in aliases):
                aliases.append(m)
        regions = []
        for m in aliases:
            n = m._data.size
            if n >= _tape.BIG_ROW:
                continue  # (read from the tensor itself, not from the arena: not frozen)
            tape = m._tape
            if isinstance(tape, _tape.Tape) and tape.id >= self.first_tape and m._off >= 0:
                regions.append((tape, m._off, n))
            for ref, off in m._imports or ():
                tape = ref()
                if isinstance(tape, _tape.Tape) and tape.id >= self.first_tape:
                    regions.append((tape, off, n))
        if regions:
            written = [(tape, off, n) for tape, off, n in regions if _overlaps(tape, off, n, root._data)]
            if not written or _move_storage(root, aliases):
                for tape, off, _ in regions:
                    self.frozen.setdefault(tape.id, (tape, set()))[1].add(off)
        if self.saved:
            data = t._data
            for s in list(self.saved):
                if s.clone is None and isinstance(s.tensor, Tensor) and np.may_share_memory(s.tensor._data, data):
                    with grad_mode.no_grad():
                        s.clone = s.tensor.detach().clone()


def _overlaps(tape, off, n, data):
    """Whether arena region ``off``..``off + n`` of ``tape`` is (part of) the memory of array ``data``."""
    return isinstance(data, np.ndarray) and np.may_share_memory(tape.values[off : off + n], data)


def _move_storage(root, aliases):
    """Give ``root`` and its ``aliases`` (views, ``detach()`` aliases) a copy of their storage, each at the same
    place in it, so that a write into them leaves the arena region they were in as it is. False (nothing moved)
    where that cannot be done safely."""
    data = root._data
    if not isinstance(data, np.ndarray) or not data.flags.c_contiguous:
        return False
    base = _addr(data)
    end = base + data.nbytes
    placed = []
    for m in aliases:
        d = m._data
        if "_storage" in m.__dict__ or not isinstance(d, np.ndarray) or d.dtype != data.dtype:
            return False
        at = _addr(d) - base
        if not np.may_share_memory(d, data) or at < 0 or _addr(d) > end:
            return False
        placed.append((m, at, d.shape, d.strides))
    moved = data.copy()
    for m, at, shape, strides in placed:
        m._data = np.ndarray(shape, data.dtype, buffer=moved, offset=at, strides=strides)
    return True


class allow_mutation_on_saved_tensors:
    """Context manager under which tensors saved for backward may be modified in place: a backward run inside
    the context computes the gradient from the values they had when they were saved (ad copies a saved value
    before the first write into it, see the module header).

    Raises:
        RuntimeError: entered while another one is active (torch's message: contexts cannot be nested).
        AssertionError: (from backward) a graph recorded inside the context is differentiated after the context
            was left (torch's class and message).

    Example:
        >>> with ad.autograd.graph.allow_mutation_on_saved_tensors():
        ...     y = x * 1
        ...     z = y.sin()
        ...     y.mul_(2)          # z's backward still reads y as sin saw it
        ...     z.sum().backward()
        >>> x.grad                 # cos(x)
    """

    def __enter__(self):
        with _lock:
            if _active[0] is not None:
                raise RuntimeError("allow_mutation_on_saved_tensors contexts cannot be nested")
            context = _AllowMutationOnSavedContext()
            _active[0] = context
        _tape.reset_current()  # the rows recorded from here on go to tapes of this context
        context.first_tape = _tape._next_tape_id()
        context.hooks.__enter__()
        ENGAGED[0] = True
        views.on_write[0] = context.before_write
        self._context = context
        return context

    def __exit__(self, *exc):
        context = self._context
        views.on_write[0] = None
        context.hooks.__exit__()
        _tape.reset_current()
        with _lock:
            for tape_id, ref in list(_tape._live_tapes.items()):
                if tape_id >= context.first_tape:
                    tape = ref()
                    if tape is not None:
                        _refused.add(tape)
            engine.refused_tapes = _refused
            context.closed = True
            context.frozen.clear()
            _active[0] = None
        return False


def around_call(fn, args):
    """Run ``fn(*args)`` (a ``backward`` or ``grad`` call) with the compiled sweep reading the active context's
    frozen regions as unmodified. (A graph recorded in a context already left is refused by the sweeps:
    ``engine.refused_tapes``.)"""
    context = _active[0]
    if context is None:
        ENGAGED[0] = False
        return fn(*args)
    flags = engine.kernel_flags
    for tape_id, (tape, offsets) in context.frozen.items():
        cleared = np.array(tape.modified, copy=True)
        cleared[list(offsets)] = 0
        flags[tape_id] = cleared
    try:
        return fn(*args)
    finally:
        for tape_id in context.frozen:
            flags.pop(tape_id, None)
