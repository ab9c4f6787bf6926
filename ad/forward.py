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

Batched tangents (``_FwState.batch``: ``{level: B}``): at a level made batched by
``forward_ad.make_dual(..., is_batched=True)`` every tangent has a leading batch axis, shape ``(B, *shape)``,
so one forward pass carries B tangents. A rule that handles the leading axis (``batched_jvp`` of
``apply_dual``; the table of them is ``ad/ops/batch_rules.py``) gets the batched tangents as they are; any
other rule runs once per batch entry on the slices ``tangent[b]`` and the results are stacked, which is right
for every rule and slower. Results are brought to ``(B, *out.shape)`` here (a rule on a broadcast operand
gives a tangent of the operand's shape).
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
        self.batch = {}  # level -> B, for the levels whose tangents carry a leading batch axis


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


def batch_size(level):
    """B when ``level``'s tangents carry a leading batch axis of B, else None."""
    return _fw.batch.get(level)


def apply_dual(primal_fn, jvp_fn, tensors, levels, batched_jvp=None):
    """Run ``primal_fn()`` and give its output the tangent ``jvp_fn(tan, base)`` at each of ``levels``.

    ``tan(t)`` returns operand ``t``'s tangent at the level being computed (or None); ``base`` is the
    output with the tangents of the other levels, so that rules see exactly dual operands. ``primal_fn``
    must not dispatch to forward mode itself, but the ops it is made of do: an operand it broadcasts or
    reshapes keeps its tangent, which forward-over-reverse needs (the reverse rules read those operands).
    At a batched level, ``batched_jvp(tan, base)`` (same arguments, tangents of shape ``(B, *shape)``) is
    used if given; else ``jvp_fn`` runs once per batch entry (see the module docstring).
    """
    out = primal_fn()
    single = len(levels) == 1
    for k in levels:
        prev = _fw.hidden
        _fw.hidden = prev | {k}  # (``hide``, inlined: this runs for every dual op)
        try:
            base = (
                out
                if single
                else apply_dual(primal_fn, jvp_fn, tensors, [lvl for lvl in levels if lvl != k], batched_jvp)
            )
            nb = _fw.batch.get(k) if _fw.batch else None
            if nb is None:
                tk = jvp_fn(lambda t, _k=k: tangent_of(t, _k), base)
            elif batched_jvp is not None:
                tk = batched_jvp(lambda t, _k=k: tangent_of(t, _k), base)
                if tk is NotImplemented:  # (a batched rule that does not cover these arguments)
                    tk = _looped_jvp(jvp_fn, base, k, nb)
            else:
                tk = _looped_jvp(jvp_fn, base, k, nb)
            if tk is not None and (nb is not None or type(tk) is not Tensor or tk.shape != out.shape):
                tk = _to_batched_shape(tk, out, nb)
        finally:
            _fw.hidden = prev
        if tk is not None:
            set_tangent(out, k, tk)
    return out


def _looped_jvp(jvp_fn, base, k, nb):
    """A rule that takes one tangent, at batched level ``k``: run on each slice ``tangent[b]``, then stack."""
    from . import ops

    def slicer(b):
        def tan(t):
            tt = tangent_of(t, k)
            return None if tt is None else ops.getitem(tt, b)

        return tan

    pieces = [jvp_fn(slicer(b), base) for b in range(nb)]
    if all(p is None for p in pieces):
        return None
    full = [None if p is None else _to_batched_shape(p, base, None) for p in pieces]
    zero = None
    for i, p in enumerate(full):
        if p is None:
            zero = zero if zero is not None else ops.zeros_like(base)
            full[i] = zero
    return ops.stack(full, 0)


def _to_batched_shape(tk, out, nb):
    """``tk`` as a tangent of ``out``: shape ``(nb, *out.shape)`` (``out.shape`` when ``nb`` is None); a rule's
    tangent of a broadcast operand is aligned at the right and expanded."""
    from . import ops

    lead = () if nb is None else (nb,)
    want = lead + tuple(out.shape)
    if not isinstance(tk, Tensor):
        return wrap_array(np.broadcast_to(np.asarray(tk, out.dtype), want).copy())
    if tk.shape == want:
        return tk
    inner = tk.shape[len(lead) :]
    if len(inner) < out.ndim:
        tk = ops.reshape(tk, lead + (1,) * (out.ndim - len(inner)) + tuple(inner))
    return ops.expand(tk, want)


def compiled_level(x, y=None):
    """The level at which the compiled elementwise JVP (``kernels.cpu.jvp_unary`` / ``jvp_binary``) computes
    the tangent of an op on ``x`` (and ``y``), or None when the general path must: it needs exactly one
    active, visible level at which an operand has a tangent, nothing to record for reverse mode, and tangents
    that are plain values (not dual themselves, not requiring grad)."""
    levels = _fw.levels
    if len(levels) != 1 or _fw.hidden or _fw.batch:
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
    _fw.batch.pop(level, None)
    for ref in _fw.registry.pop(level, ()):
        t = ref()
        if t is not None and t._tangents is not None:
            t._tangents.pop(level, None)
            if not t._tangents:
                t._tangents = None
