"""Forward mode: dual levels and tangent propagation.

Data structures:

- ``Tensor._tangents``: ``{level: Tensor}``, the tangent of the tensor at each active dual level (None when it
  has none, so a tensor without a tangent costs one attribute check per op). A tangent is an ``ad`` Tensor:
  it may itself carry tangents of other levels and take part in reverse-mode graphs.
- ``_FwState`` (thread-local): the stack of active levels, the levels hidden while a rule computes the
  tangent of one level, and per level the weak references to every tensor given a tangent there, so that
  ``exit_dual_level`` clears them in O(number of tensors that carry one).

Propagation (``apply_dual``): an op whose operands carry tangents first runs its primal with those levels
hidden, then, for each level ``k`` with a tangent, runs its JVP rule (``ad`` ops) with ``k`` hidden and the
other levels visible. Nested levels therefore interact exactly: the level-``k`` tangent is computed from
operands that are dual at the other levels, so forward over forward gives mixed and higher derivatives. With
one level and nothing to record for reverse mode, elementwise ops take the compiled path
(``kernels.cpu.jvp_unary`` / ``jvp_binary``, the same per-element partials as the reverse sweep).
"""

import threading
import weakref

import numpy as np

from . import grad_mode
from .tensor import Tensor, wrap_array


class _FwState(threading.local):
    def __init__(self):
        self.levels = []  # active levels, innermost last
        self.hidden = frozenset()
        self.registry = {}  # level -> _Refs: weak references to the tensors holding a tangent at that level


_fw = _FwState()
_ref = weakref.ref


class _Refs(list):
    """A level's weak references; ``prune_at``: the length at which dead ones are dropped."""

    __slots__ = ("prune_at",)

    def __init__(self):
        super().__init__()
        self.prune_at = 1024


def active_levels():
    return _fw.levels


def visible_levels_of(*tensors):
    """Levels (visible now) at which any of ``tensors`` carries a tangent, outermost first."""
    hidden = _fw.hidden
    found = []
    for lvl in _fw.levels:
        if lvl in hidden:
            continue
        for t in tensors:
            tans = t._tangents if isinstance(t, Tensor) else None
            if tans is not None and lvl in tans:
                found.append(lvl)
                break
    return found


def tangent_of(t, level):
    tangents = t._tangents if type(t) is Tensor or isinstance(t, Tensor) else None
    return tangents.get(level) if tangents is not None else None


def set_tangent(t, level, tangent):
    tangents = t._tangents
    if tangents is None:
        t._tangents = {level: tangent}
    else:
        tangents[level] = tangent
    registry = _fw.registry
    refs = registry.get(level)
    if refs is None:
        refs = registry[level] = _Refs()
    refs.append(_ref(t))
    if len(refs) >= refs.prune_at:
        # drop references to dead tensors, so a long loop inside one level keeps a bounded registry
        refs[:] = [r for r in refs if r() is not None]
        refs.prune_at = max(1024, 2 * len(refs))


class hide:
    """Context manager: treat ``levels`` as inactive (their tangents are ignored by ops inside)."""

    __slots__ = ("levels", "prev")

    def __init__(self, levels):
        self.levels = levels

    def __enter__(self):
        self.prev = _fw.hidden
        _fw.hidden = self.prev | frozenset(self.levels)

    def __exit__(self, *exc):
        _fw.hidden = self.prev
        return False


def apply_dual(primal_fn, jvp_fn, tensors, levels):
    """Run ``primal_fn()`` and give its output the tangent ``jvp_fn(tan, base)`` at each of ``levels``.

    ``tan(t)`` returns operand ``t``'s tangent at the level being computed (or None); ``base`` is the
    output with the tangents of the other levels, so that rules see exactly dual operands. ``primal_fn``
    must not dispatch to forward mode itself, but the ops it is made of do: an operand it broadcasts or
    reshapes keeps its tangent, which forward-over-reverse needs (the reverse rules read those operands).
    """
    out = primal_fn()
    single = len(levels) == 1
    for k in levels:
        prev = _fw.hidden
        _fw.hidden = prev | {k}  # (``hide``, inlined: this runs for every dual op)
        try:
            base = out if single else apply_dual(primal_fn, jvp_fn, tensors, [lvl for lvl in levels if lvl != k])
            tk = jvp_fn(lambda t, _k=k: tangent_of(t, _k), base)
        finally:
            _fw.hidden = prev
        if tk is None:
            continue
        if not isinstance(tk, Tensor):
            tk = wrap_array(np.broadcast_to(np.asarray(tk, out.dtype), out.shape).copy())
        elif tk.shape != out.shape:  # a rule on one operand of a broadcasting op
            from .ops import expand

            with hide((k,)):
                tk = expand(tk, out.shape)
        set_tangent(out, k, tk)
    return out


def compiled_level(x, y=None):
    """The level at which the compiled elementwise JVP (``kernels.cpu.jvp_unary`` / ``jvp_binary``) computes
    the tangent of an op on ``x`` (and ``y``), or None when the general path must: it needs exactly one
    active, visible level at which an operand has a tangent, nothing to record for reverse mode, and tangents
    that are plain values (not dual themselves, not requiring grad)."""
    levels = _fw.levels
    if len(levels) != 1 or _fw.hidden:
        return None
    level = levels[0]
    recording = grad_mode._grad_state.enabled
    found = None
    for t in (x, y):
        if t is None:
            continue
        if recording and t._rg:
            return None
        tans = t._tangents
        if tans is not None:
            tan = tans.get(level)
            if tan is not None:
                if tan._tangents is not None or (recording and tan._rg):
                    return None
                found = level
    return found


def reregister(t):
    """Record ``t`` in the registries of the levels it holds tangents at (after its tangents were copied)."""
    tangents = t._tangents
    if tangents:
        t._tangents = None
        for lvl, tan in tangents.items():
            set_tangent(t, lvl, tan)


def exit_level(level):
    for ref in _fw.registry.pop(level, ()):
        t = ref()
        if t is not None and t._tangents is not None:
            t._tangents.pop(level, None)
            if not t._tangents:
                t._tangents = None
