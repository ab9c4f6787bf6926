"""``allow_mutation_on_saved_tensors``: in-place writes into tensors saved for backward, with the gradient
computed from the values they had when saved, as ``torch.autograd.graph.allow_mutation_on_saved_tensors``
(re-exported by ``ad.autograd.graph``).

ad's ops save values in their tape's value arena (a recorded tensor's storage is its arena region; a view or an
imported tensor has a copy there), and an in-place write flags the arena copies it makes stale
(``tape.mark_modified``), so that a backward reading one raises. Inside the context:

- The tapes are this context's own: entering and leaving retire the thread's current tapes, so the tapes with
  an id from ``_AllowMutationOnSavedContext.first_tape`` on hold only rows recorded inside.
- Before a write (``views.check_write``, which every in-place write passes first, calls ``before_write``),
  each arena region of such a tape that the write will flag (the written tensor's, its aliases', their
  imports': the regions ``mark_modified`` walks) is copied once (the context's ``originals``: the value it had
  when the graph recorded it; later writes keep the first copy).
- A backward inside the context (``around_call``) puts those copies back into their regions and clears their
  flags for the duration of the call, then restores the current values and the flags. Only copied regions are
  cleared: a region flagged by a write that bypassed ``check_write`` still raises, never a silent wrong
  gradient. (During that call the written tensors read their saved values; hooks run then see them.)
- Custom Functions' ``save_for_backward`` (ad's Python-swept primitives included) goes through a
  ``saved_tensors_hooks`` pair: a write into a saved tensor's storage first clones it, and ``saved_tensors``
  returns the clone. The clone has no graph: a double backward (``create_graph``) that needs it raises.
- Leaving the context makes its live tapes refuse backward (``_refused``, checked by ``around_call`` while any
  of them lives): torch's AssertionError, also for a graph without writes.

State: ``ENGAGED[0]`` is true while a context is active or a graph recorded in one is alive, so that
``backward`` and ``grad`` skip all of this otherwise.
"""

import threading
import weakref

import numpy as np

from .. import engine, grad_mode, views
from .. import tape as _tape
from ..tensor import Tensor
from .graph import saved_tensors_hooks

__all__ = ["allow_mutation_on_saved_tensors"]

ENGAGED = [False]
_OUTSIDE = (
    "Trying to backward outside of the 'allow_mutation_on_saved_tensors' contextin which the graph was originally "
    "recorded."
)  # (torch's wording, its missing space included)
_lock = threading.Lock()
_active = [None]  # the context now entered (torch's contexts are process-wide and do not nest)
_refused = weakref.WeakSet()  # tapes recorded in a context already left


class _SavedByFunction:
    """A tensor a custom Function saved inside the context, or the clone made of it before a write."""

    __slots__ = ("tensor", "clone", "context", "__weakref__")

    def __init__(self, tensor, context):
        self.tensor = tensor
        self.clone = None
        self.context = context


class _AllowMutationOnSavedContext:
    def __init__(self):
        self.first_tape = 0
        self.closed = False
        self.originals = {}  # (tape id, offset) -> (tape, offset, the region's values before the first write)
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
            return s.tensor
        if grad_mode.is_grad_enabled() and s.tensor._rg:
            raise RuntimeError(
                "a tensor saved for backward by a custom Function was modified in place under "
                "allow_mutation_on_saved_tensors: its saved clone has no graph, so ad cannot differentiate "
                "through it (create_graph=True); use a first-order backward, or clone() before the write"
            )
        return s.clone

    def before_write(self, t):
        """Copy the regions ``mark_modified(t)`` will flag on this context's tapes, and clone the Function-saved
        tensors that share ``t``'s storage, before ``t`` is written."""
        vc = t._vc
        aliases = list(vc.members) if vc is not None and vc.refs else []
        if not any(m is t for m in aliases):
            aliases.append(t)
        for m in aliases:
            n = m._data.size
            tape = m._tape
            if isinstance(tape, _tape.Tape):
                self._keep(tape, m._off, n)
            for ref, off in m._imports or ():
                tape = ref()
                if isinstance(tape, _tape.Tape):
                    self._keep(tape, off, n)
        if self.saved:
            data = t._data
            for s in list(self.saved):
                if s.clone is None and isinstance(s.tensor, Tensor) and np.may_share_memory(s.tensor._data, data):
                    with grad_mode.no_grad():
                        s.clone = s.tensor.detach().clone()

    def _keep(self, tape, off, n):
        if tape.id < self.first_tape or off < 0:
            return
        key = (tape.id, off)
        if key not in self.originals:
            self.originals[key] = (tape, off, tape.values[off : off + n].copy())


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
            context.closed = True
            context.originals.clear()
            _active[0] = None
        return False


def _check_not_refused(outputs):
    roots = [t for t in outputs if isinstance(t, Tensor)]
    tapes = {id(t._tape): t._tape for t in roots if t._tape is not None}
    for t, _ in engine.graph_nodes(roots).values():
        if t._tape is not None:
            tapes[id(t._tape)] = t._tape
    for tape in tapes.values():
        if tape in _refused:
            raise AssertionError(_OUTSIDE)


def around_call(fn, args, outputs):
    """Run ``fn(*args)`` (a ``backward`` or ``grad`` call) with the saved values of the active context put back
    into their arena regions; refuse a graph recorded in a context already left."""
    if _refused:
        _check_not_refused(outputs)
    context = _active[0]
    if context is None:
        if not _refused:
            ENGAGED[0] = False
        return fn(*args)
    swapped = []
    try:
        for tape, off, original in list(context.originals.values()):
            region = tape.values[off : off + original.size]
            flag = tape.modified[off]
            swapped.append((tape, off, region.copy(), flag))
            region[...] = original
            if flag:
                tape.modified[off] = 0
        return fn(*args)
    finally:
        for tape, off, current, flag in swapped:
            tape.values[off : off + current.size] = current
            if flag:
                tape.modified[off] = flag
