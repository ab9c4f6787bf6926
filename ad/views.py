"""Views: tensors that share storage (and a version counter) with a base, and in-place ops through them.

Data structures (read this first):

- Storage is a numpy array (a numba device array for a CUDA tensor). A view's ``_data`` is a numpy view of its
  base's ``_data`` (same memory; on CUDA a strided device array over the base's device memory,
  ``ad/cuda/arrays.py`` ``strided_view``), so a write through either is seen by both, as in torch. The base is
  the root: a view of a view has the first tensor as ``_vbase`` (torch's ``_base``). Everything below is
  device-agnostic: layouts are read from the arrays' strides and addresses (``_addr``), values move by ops.
- ``VersionCounter`` (``Tensor._vc``, defined in ad/tensor.py; ``None`` until a tensor gets an alias or is
  modified in place): one per storage, shared by the base, its views and its ``detach()`` aliases. ``version``
  is what ``_version`` reads; ``refs`` are weak references to every tensor that aliases the storage
  (``members``: the live ones): an in-place write flags the arena copies of all of them
  (``tape.mark_modified``), so a backward that needs a saved alias raises torch's error.
- View state on the view tensor: ``_vbase`` (the root), ``_vflags`` (``MULTI``: made by a multi-output op,
  ``NO_GRAD``: made while grad mode was off and could have recorded). Positions of a view in its base
  (``positions``) are recomputed from the numpy strides when an in-place write needs them.
- The tape is unchanged: a recorded view op still records a ``GATHER_STRIDED`` (or ``COPY``) row whose output
  region in the value arena holds a copy of the view's values, because the compiled sweep reads every value by
  arena offset. That copy is a snapshot for the kernel only; ``_data`` is the live storage. An in-place write
  flags the snapshot (``mark_modified``), so a backward that would read a stale snapshot raises instead.

In-place write on a recorded tensor (``rebase``), torch's view+inplace rule:
1. The new value ``r = f(snapshot)`` is recorded out of place (``snapshot`` is a recorded clone of the view).
2. If the tensor is a view of ``base``, the base's new node is ``CopySlices``: ``base_old * keep + scatter(r)``
   (``keep`` is zero where the view lies); otherwise the tensor's new node is ``r`` itself.
3. The values are written into the storage; the base (or the tensor) takes over the new node's autograd
   identity, keeping its storage, counter and view fields; its pre-write node lives on in a new object (``_prev``)
   that rows recorded earlier reference.
4. Every live view of that base that is part of a graph is regenerated as a gather from the base's new node
   (torch regenerates lazily, by version; eagerly here, so that the forward hot paths stay untouched): its
   gradient then flows through ``CopySlices``, and its ``grad_fn`` is ``AsStridedBackward0`` as torch's.

Writes that are not recorded (``no_grad``) into a graph node: the node gets a fresh arena copy joined by an
identity row (``rehome_after_write``), so later uses read the new values while rows recorded before the write
keep the flagged old copy. Forward mode: ``sync_tangents`` keeps a base's and its views' tangents consistent
after a write.

Where to start reading: ``alias`` (making a view), ``rebase`` (writing through one).
"""

import weakref

import numpy as np

from .grad_mode import _grad_state, enable_grad
from .tensor import Tensor, VersionCounter, _new, _pre_write_node, counter, share  # noqa: F401 - the counter lives with Tensor

MULTI = 1  # made by a multi-output op (unbind, split, chunk): in-place on it is an error
NO_GRAD = 2  # made in no_grad mode from a tensor that requires grad (or a view of such a view)

# (_storage: ad/as_strided.py; _pinned, _shared: ad/storage.py)
_KEEP = ("_data", "_vc", "_vbase", "_vflags", "_vname", "_storage", "_pinned", "_shared")
# torch's grad_fn names of the in-place view ops (``t_`` -> TBackward1, ``squeeze_(dim)`` -> SqueezeBackward4, ...),
# by the name of the out-of-place op's node they replace
_INPLACE_NODE_NAMES = {
    "TBackward0": "TBackward1",
    "TransposeBackward0": "TransposeBackward1",
    "SqueezeBackward0": "SqueezeBackward3",
    "SqueezeBackward1": "SqueezeBackward4",
    "SqueezeBackward2": "SqueezeBackward5",
    "UnsqueezeBackward0": "UnsqueezeBackward1",
    "AsStridedBackward0": "AsStridedBackward1",
}


def alias(x, out, data, multi=False, name=None):
    """Make ``out`` (just produced from ``x`` by a view op) a view of ``x``'s root base with storage ``data``
    (a numpy view of ``x._data``)."""
    out._data = data
    root = x._vbase if x._vbase is not None else x
    out._vbase = root
    flags = MULTI if multi else 0
    if not _grad_state.enabled and x._rg:
        # torch: such a view requires grad and is a leaf with no grad_fn; ops on it in grad mode record, and no
        # gradient reaches it or its base (``Tape.import_tensor`` gives it no extern)
        flags |= NO_GRAD
        out._rg = True
    if x._vflags & NO_GRAD:
        flags |= NO_GRAD
    if x._vflags & MULTI and out._rg and not flags & NO_GRAD:
        # torch: a view of a multi-output op's view inherits its creation meta, and its errors name the new view's
        # own node ("Output 0 of Unsqueeze ..."); made under no_grad, its no-grad meta wins (torch's
        # propagate_creation_meta), and it has no node to name
        flags |= MULTI
        if name is None:
            name = (out.grad_fn.name().rsplit("Backward", 1)[0], 0)
    if flags:
        out._vflags = flags
    if name is not None:
        out._vname = name
    share(root, out)
    return out


def broadcast_constant(x, shape):
    """``x`` (a constant) broadcast to ``shape`` for a binary op, sharing ``x``'s version counter: writing into
    ``x`` afterwards makes a backward that needs the saved operand raise, as torch (which saves ``x`` itself)."""
    from .tensor import wrap_array

    t = wrap_array(np.broadcast_to(x._data, shape))
    share(x, t)
    return t


# ---------------------------------------------------------------------------------------------------------
# layout (torch's stride(), storage_offset(), is_contiguous())


def _addr(d):
    """The address of array ``d``'s first element (host memory, or device memory for a CUDA tensor's)."""
    if isinstance(d, np.ndarray):
        return d.__array_interface__["data"][0]
    from .cuda.arrays import address

    return address(d)


def stride(t, dim=None):
    item = t._data.dtype.itemsize
    strides = tuple(s // item for s in t._data.strides)
    if dim is None:
        return strides
    from .tensor import _wrap_dim

    return strides[_wrap_dim(dim, t.ndim)]


def storage_offset(t):
    root = t if t._vbase is None else t._vbase
    store = root.__dict__.get("_storage")  # (a root whose geometry no longer covers its storage: as_strided.py)
    if store is None:
        if t._vbase is None:
            return 0
        store = root._data
    d = t._data
    return (_addr(d) - _addr(store)) // d.dtype.itemsize


def is_contiguous(t, memory_format=None):
    d = t._data
    if isinstance(d, np.ndarray):
        return bool(d.flags.c_contiguous)
    from .cuda.arrays import is_contiguous as device_contiguous

    return device_contiguous(d)


def overlaps(data):
    """Whether two elements of ``data`` share memory (a stride 0 over a dimension of size > 1): torch's
    internal-overlap check."""
    return any(s == 0 and n > 1 for s, n in zip(data.strides, data.shape))


def positions(v):
    """The C-order indices, in its base, of every element of view ``v`` (flat, in ``v``'s C order)."""
    base = v._vbase._data
    vd = v._data
    item = vd.dtype.itemsize
    start = (_addr(vd) - _addr(base)) // item
    vmem = _offsets(vd.shape, [s // item for s in vd.strides], start)
    if is_contiguous(v._vbase) and "_storage" not in v._vbase.__dict__:
        return vmem
    bmem = _offsets(base.shape, [s // item for s in base.strides], 0)
    order = np.argsort(bmem, kind="stable")
    found = np.minimum(np.searchsorted(bmem[order], vmem), max(bmem.size - 1, 0))
    if vmem.size and (bmem.size == 0 or (bmem[order][found] != vmem).any()):
        # (a view made before its base's geometry changed in place, reaching past the base's elements now)
        raise RuntimeError(
            "a view reaches storage outside its base's elements (the base's geometry was changed in place by "
            "as_strided_, set_ or resize_); ad cannot record a write through it. Write into a clone."
        )
    return order[found]


def _offsets(shape, strides, start):
    idx = np.full(shape, start, dtype=np.int64)
    for k, (extent, st) in enumerate(zip(shape, strides)):
        if st and extent > 1:
            sh = [1] * len(shape)
            sh[k] = extent
            idx = idx + (np.arange(extent, dtype=np.int64) * st).reshape(sh)
    return idx.reshape(-1)


# ---------------------------------------------------------------------------------------------------------
# checks before an in-place write

_OVERLAP = (
    "unsupported operation: more than one element of the written-to tensor refers to a single memory location. "
    "Please clone() the tensor before performing the operation."
)
_VIEW_OF_LEAF = "a view of a leaf Variable that requires grad is being used in an in-place operation."
_NO_GRAD_VIEW = (
    "A view was created in no_grad mode and is being modified inplace with grad mode enabled. Given that this use "
    "case is ambiguous and error-prone, it is forbidden. You can clarify your code by moving both the view and the "
    "inplace either both inside the no_grad block (if you don't want the inplace to be tracked) or both outside (if "
    "you want the inplace to be tracked)."
)


def check_write(t):
    """Raise torch's error for a write into ``t`` that torch refuses whatever the grad mode, and for one into
    memory that ``t`` covers more than once in any layout (overlapping ``unfold`` windows): torch detects only some
    of those and then writes in an order-dependent way; ad refuses them all. Every in-place write passes here
    first: ``on_write[0]``, when set, is called with ``t`` (``autograd.saved_mutation`` keeps saved values)."""
    if overlaps(t._data) or _covers_memory_twice(t._data):
        raise RuntimeError(_OVERLAP)
    if on_write[0] is not None:
        on_write[0](t)


on_write = [None]  # the active allow_mutation_on_saved_tensors context's before_write (ad/autograd/saved_mutation.py)


def _covers_memory_twice(data):
    """Whether two elements of ``data`` may share memory (a conservative test on the strides: visiting the
    dimensions from the smallest stride up, each stride must step over everything the smaller ones span)."""
    span = data.dtype.itemsize
    for stride, n in sorted((abs(s), n) for s, n in zip(data.strides, data.shape) if n > 1):
        if stride < span:
            return True
        span += stride * (n - 1)
    return False


_PARTIAL_OVERLAP = (
    "unsupported operation: some elements of the input tensor and the written-to tensor refer to a single memory "
    "location. Please clone() the tensor before performing the operation."
)


def check_operand_overlap(t, other):
    """Raise torch's error for an in-place op on ``t`` whose tensor operand ``other`` partly overlaps ``t`` in
    memory (``x[None].add_(x)``, ``x[1:].add_(x[:-1])``): torch's ``assert_no_partial_overlap``. The same
    memory with the same layout, or disjoint memory, is fine."""
    if not isinstance(other, Tensor) or other is t or t._vc is None or t._vc is not other._vc:
        return  # (only aliases of one storage share a version counter)
    a, b = t._data, other._data
    if a.size == 0 or b.size == 0 or not _dense(a) or not _dense(b):
        return  # torch: too hard to tell, allowed
    a0 = _addr(a)
    b0 = _addr(b)
    a1 = a0 + a.size * a.dtype.itemsize
    b1 = b0 + b.size * b.dtype.itemsize
    if a0 == b0 and a1 == b1:
        if a.strides != b.strides:
            raise RuntimeError(_PARTIAL_OVERLAP)
    elif a0 < b1 and b0 < a1:
        raise RuntimeError(_PARTIAL_OVERLAP)


def _dense(data):
    """Whether ``data`` covers a contiguous block without overlap, in some order of its dimensions (torch's
    ``is_non_overlapping_and_dense``)."""
    expected = data.dtype.itemsize
    for s, n in sorted((s, n) for n, s in zip(data.shape, data.strides) if n != 1):
        if s != expected:
            return False
        expected *= n
    return True


def check_recorded_write(t):
    """Raise torch's error for a recorded in-place op on view ``t`` (grad mode on)."""
    base = t._vbase
    flags = t._vflags
    if flags & MULTI:
        name, index = t.__dict__.get("_vname", ("Unbind", 0))
        raise RuntimeError(
            f"Output {index} of {name} is a view and is being modified inplace. This view is the output of a function "
            "that returns multiple views. Such functions do not allow the output views to be modified inplace. You "
            "should replace the inplace operation by an out-of-place one."
        )
    if flags & NO_GRAD:
        raise no_grad_view_error(t)
    if base._rg and base._op is None:
        raise RuntimeError(_VIEW_OF_LEAF)


def no_grad_view_error(t):
    """torch's error for an in-place op in grad mode on a view made under no_grad, or on a view (recorded in grad
    mode) of such a view."""
    if t._op is None:
        return RuntimeError(_NO_GRAD_VIEW)
    name = t.grad_fn.name().rsplit("Backward", 1)[0]
    return RuntimeError(
        f"Output 0 of {name} is a view of a view which was created in no_grad mode and is being modified inplace "
        + _NO_GRAD_VIEW.split(" and is being modified inplace ", 1)[1]
    )


# ---------------------------------------------------------------------------------------------------------
# recorded in-place writes


def rebase(self, compute):
    """Make ``self`` hold ``compute(snapshot of self)``, recorded, with torch's view+inplace semantics (see the
    module header). Returns ``self``."""
    from . import methods, ops
    from .forward import reregister

    check_write(self)
    base = self._vbase
    view_retains = base is not None and self._retains_grad
    if base is not None:
        check_recorded_write(self)
    pos = positions(self) if base is not None else None
    # a base without tangents whose make_dual alias has some: the write's tangent is computed through the base
    # (lent the alias's tangents); the views, that alias included, regenerate theirs from it below
    lent = base is not None and not base._tangents and _tangent_base(base) is not base
    if lent:
        base._tangents = dict(_tangent_base(base)._tangents)
    if base is not None and self._rg and base._rg and self._nrows == 1:
        # torch's CopySlices sends the view's part of the gradient straight to the base's old node: the view's
        # own node (and a hook registered on the view before the write) is not on that path, in forward mode too
        snapshot = ops.gather_map(base, self._data.shape, pos)
        if self._tangents or snapshot._tangents:  # (a dual view's snapshot keeps the view's own tangents)
            snapshot._tangents = dict(self._tangents) if self._tangents else None
            reregister(snapshot)
    else:  # (a dual tensor's snapshot keeps its tangents: the new node's tangent is computed from them)
        snapshot = ops.clone(self) if self._rg or self._tangents else _copy_of(self)
    try:
        result = compute(snapshot)
        if result._data.shape != self._data.shape:
            raise RuntimeError(
                f"output with shape {list(self._data.shape)} doesn't match the broadcast shape {list(result.shape)}"
            )
    except BaseException:
        if lent:
            base._tangents = None  # (nothing changed)
        raise
    if base is None:
        target, new = self, result
        old = _old_node(self)
        if self._rg:
            snapshot._inputs = (old,)
        new._inputs = tuple(old if i is self else i for i in new._inputs)
    else:
        target = base
        old = _old_node(base)
        shape = base._data.shape
        # the base's elements outside the view, moved by index rows: they read no values, so the old node's
        # flagged arena copy is never read (a multiplication by a mask would be, and would raise)
        kept = np.ones(base._data.size, bool)
        kept[pos] = False
        kept = np.flatnonzero(kept)
        value = result if result._data.dtype == base._data.dtype else result.to(base._data.dtype)
        new = ops.add(
            ops.scatter_map(ops.gather_map(old, (kept.size,), kept), shape, kept),
            ops.scatter_map(value, shape, pos),
        )
        new._op = ops.COPY_SLICES
        new._node = None
    methods._retarget(target, old)
    methods._semantics_rebase(target, old)
    from .tape import mark_modified

    mark_modified(target)
    reregister(old)
    vc = counter(target)
    version = vc.version + 1
    methods._store(target, new)  # the storage: every view sees the write
    keep = {k: target.__dict__[k] for k in _KEEP if k in target.__dict__}
    target.__dict__.clear()
    target.__dict__.update(new.__dict__)
    target.__dict__.update(keep)
    methods._retarget_rows(target, new, target)
    vc.version = version
    target._prev = old
    reregister(target)
    if old._retains_grad:  # retain_grad follows the tensor to its new node (hooks stay with the old one)
        old._retains_grad = False
        _stop_retaining_before(old)
        target.retain_grad()
    _regenerate_views(target)
    if lent:
        target._tangents = None  # (torch's primal of make_dual gets no tangent)
    if view_retains and not self._retains_grad:  # retain_grad follows the view to its regenerated node
        self.retain_grad()
    return self


def _copy_of(t):
    """A constant copy of ``t``'s values, on its device."""
    if t._dev is not None:
        from .cuda.ops import const

        return const(t, t._data.dtype)
    from . import ops

    return ops.wrap_array(np.array(t._data, copy=True))


def _stop_retaining_before(t):
    """``t``'s retained gradient was taken at a node before a write under no_grad (``_rehome``): stop it."""
    if t.__dict__.get("_retain_via_prev"):
        _pre_write_node(t)._retains_grad = False


_STALE_MULTI = (
    "Output {index} of {name} is a view and its base or another view of its base has been modified inplace. This "
    "view is the output of a function that returns multiple views. Such functions do not allow the output views to "
    "be modified inplace. You should replace the inplace operation by an out-of-place one."
)


def retire_multi_views(root):
    """After a write into ``root``'s storage: torch regenerates the grad_fn of each view of it at its next use,
    and refuses to for a view made by a multi-output op (chunk, split, unbind), so using such a view with grad
    afterwards raises. Its node so far lives on for the uses before the write (``_old_node``); the view leaves
    the tape (``_tape = None``), so recording a use imports it, and ``Tape.import_tensor`` raises
    (``stale_view_error``), as does its ``grad_fn``."""
    vc = root._vc
    if vc is None or not vc.refs:
        return  # (the hot path: an optimizer's write into a parameter without views)
    from . import methods
    from .forward import reregister

    for m in vc.members:
        if m._vbase is root and m._vflags & MULTI and m._rg and m._tape is not None:
            old = _old_node(m)
            methods._retarget(m, old)
            reregister(old)
            m._tape = None
            m._prev = old  # (the create_graph sweep finds, through it, the node that earlier uses used)
            m._stale_view = True


def stale_view_error(t):
    name, index = t.__dict__.get("_vname", ("Unbind", 0))
    return RuntimeError(_STALE_MULTI.format(index=index, name=name))


def _old_node(t):
    """A new object holding ``t``'s current node (rows recorded so far reference it)."""
    old = _new(Tensor)
    old.__dict__.update(t.__dict__)
    old.__dict__.pop("_vc", None)  # the old node no longer aliases the storage (its values are the old ones)
    old._vc = VersionCounter(counter(t).version)
    return old


def _regenerate_views(base):
    """Give every live view of ``base`` a node that gathers from ``base``'s new node (torch's regenerated
    ``AsStridedBackward0``), so that gradients through the view reach the write."""
    from . import methods, ops
    from .forward import reregister

    members = base._vc.members if base._vc is not None else None
    if not members or not base._rg or not _grad_state.enabled:
        return
    retire_multi_views(base)
    for v in members:
        if v._vbase is not base or v.__dict__.get("_stale_view"):
            continue
        new = ops.gather_map(base, v._data.shape, positions(v), ops.AS_STRIDED_VIEW)
        # the view's node so far lives on for the rows that used it (found through ``_prev``, as in rebase)
        old = _old_node(v)
        methods._retarget(v, old)
        reregister(old)
        keep = {k: v.__dict__[k] for k in _KEEP if k in v.__dict__}
        v.__dict__.clear()
        v.__dict__.update(new.__dict__)
        v.__dict__.update(keep)
        v._prev = old
        if old._tangents and not base._tangents:  # (torch's forward-mode view keeps its own tangent: make_dual's)
            v._tangents = dict(old._tangents)
        reregister(v)
        if old._retains_grad:  # torch moves the retains_grad hook to the regenerated grad_fn (other hooks stay)
            old._retains_grad = False
            _stop_retaining_before(old)
            v.retain_grad()


# ---------------------------------------------------------------------------------------------------------
# forward mode: a write into a dual view or base (not recorded for reverse mode)


def sync_tangents(t):
    """After an in-place write into ``t`` that set ``t``'s tangents: give its base the written tangent on the
    view's elements, and every view of that base the matching part of the base's tangent (tangents of views
    follow their base, as torch's forward-mode views do).

    The tangents' base is the storage's root, or when the root has none, the alias that ``make_dual`` made of it
    (a view of the root for reverse mode, but torch's forward-mode base of the views taken from it)."""
    from . import ops
    from .creation import zeros
    from .forward import set_tangent

    root = t._vbase
    if root is None:
        base = t
    else:
        base = _tangent_base(root)
        if base is not t:
            levels = set(t._tangents or ()) | set(base._tangents or ())
            if not levels:
                return
            pos = positions(t)
            shape = root._data.shape
            kept = np.ones(root._data.size, bool)
            kept[pos] = False
            kept = np.flatnonzero(kept)
            new = {}
            for lvl in levels:
                gather, scatter, lead = _tangent_maps(lvl)
                bt = (base._tangents or {}).get(lvl)
                vt = (t._tangents or {}).get(lvl)
                bt = bt if bt is not None else zeros(lead + shape, dtype=root._data.dtype, device=root._dev)
                vt = vt if vt is not None else zeros(lead + t._data.shape, dtype=root._data.dtype, device=root._dev)
                new[lvl] = (
                    ops.add(scatter(gather(bt, (kept.size,), kept), shape, kept), scatter(vt, shape, pos)),
                    lead,
                )
            base._tangents = None
            for lvl, (tan, lead) in new.items():
                set_tangent(base, lvl, tan.reshape(lead + base._data.shape))
        root = t._vbase
    if root is None:
        root = t
    members = root._vc.members if root._vc is not None else None
    if not members or not base._tangents:
        return
    for v in members:
        if v._vbase is root and v is not t and v is not base and (base is root or v._tangents):
            v._tangents = None
            for lvl, tan in base._tangents.items():
                set_tangent(v, lvl, _tangent_maps(lvl)[0](tan, v._data.shape, positions(v)))


def _tangent_maps(level):
    """``(gather_map, scatter_map, leading shape)`` for the tangents of ``level`` (batched ones carry a leading
    batch axis: ``ad/ops/batch_rules.py``)."""
    from . import ops
    from .forward import batch_size
    from .ops import batch_rules

    nb = batch_size(level)
    if nb is None:
        return ops.gather_map, ops.scatter_map, ()
    return batch_rules.batched_gather_map, batch_rules.batched_scatter_map, (nb,)


# the aliases ``make_dual`` made (forward mode's base of the views taken from them); a view of the same layout made
# otherwise (``x[:]``, ``x.view(x.shape)``) is not one: a write into it gives its root the tangent
class _DualAliases:
    """``id -> tensor``, held weakly: a dict of weak references, pruned of dead ones as it grows (a
    ``WeakValueDictionary`` costs a keyed reference with a Python callback per entry, about a microsecond per
    ``make_dual``; a WeakSet would compare tensors with ==). A dead entry's id may be reused: ``get`` returns
    whatever lives under it, which callers compare by identity."""

    __slots__ = ("refs", "prune_at")

    def __init__(self):
        self.refs = {}
        self.prune_at = 1024

    def __setitem__(self, key, t):
        refs = self.refs
        refs[key] = weakref.ref(t)
        if len(refs) >= self.prune_at:
            for k in [k for k, r in refs.items() if r() is None]:
                del refs[k]
            self.prune_at = max(1024, 2 * len(refs))

    def get(self, key, default=None):
        r = self.refs.get(key)
        t = None if r is None else r()
        return default if t is None else t


dual_aliases = _DualAliases()  # id -> tensor


def _tangent_base(root):
    """``root``, or if it has no tangent, its live alias of the same layout that has one (``make_dual``'s)."""
    if root._tangents or root._vc is None:
        return root
    d = root._data
    start = _addr(d)
    for m in root._vc.members:
        md = m._data
        if (
            m._vbase is root
            and m._tangents
            and dual_aliases.get(id(m)) is m
            and md.shape == d.shape
            and md.strides == d.strides
            and _addr(md) == start
        ):
            return m
    return root


# ---------------------------------------------------------------------------------------------------------
# writes that are not recorded (no_grad) into tensors that are part of a graph


def rehome_after_write(t):
    """After a write into ``t`` that was not recorded (under ``no_grad``): if the written storage belongs to a
    graph node (``t``, or the base ``t`` views), that node gets a fresh arena copy of its new values, joined to
    its node by an identity row (which reads no values): torch's grad_fn is unchanged by such a write. Rows
    recorded before the write keep the old, flagged copies (a backward that needs one raises, as torch's version
    check does); later rows read the new ones, so using them after the write is no error, as in torch. The live
    views of that storage get a new node that gathers from the base (``_regenerate_views``), as torch
    regenerates a view's grad_fn once its storage was written: uses of a view after the write reach the base
    through it, and a requested view gets the gradient of those uses only; views made by multi-output ops
    cannot be regenerated (``retire_multi_views``). Views of a leaf are the exception (below)."""
    root = t._vbase if t._vbase is not None else t
    retire_multi_views(root)
    if root._op is None:
        # views of a leaf (a parameter an optimizer writes at every step, its live views held by the last
        # graph) keep their node: regenerating each at every step would cost a gather of the parameter. So a
        # view of a leaf used after a write under no_grad differs from torch (listed in tests/test_torch_parity.py)
        if t._op is not None and t._tape is not None:
            _rehome(t)
        return
    if root._tape is not None:
        _rehome(root)
    if root._rg and root._vc is not None and root._vc.refs:
        with enable_grad():
            _regenerate_views(root)


def _rehome(t):
    from . import methods, ops
    from .forward import reregister

    old = _old_node(t)
    methods._retarget(t, old)
    methods._semantics_rebase(t, old)  # a custom Function's record keeps its output: the pre-write node
    reregister(old)
    name = old.grad_fn.name()
    if t._dev is not None:
        from .cuda.ops import record_copy

        new = record_copy(ops.REHOME, old, t)
    else:
        new = ops._record_copy(ops.REHOME, old, np.ascontiguousarray(t._data))
    keep = {k: t.__dict__[k] for k in _KEEP if k in t.__dict__}
    tangents = t._tangents
    t.__dict__.clear()
    t.__dict__.update(new.__dict__)
    t.__dict__.update(keep)
    t._ctx = name  # REHOME's grad_fn name: the node's own, as torch's grad_fn is unchanged by the write
    t._prev = old
    if tangents is not None:
        t._tangents = tangents
        reregister(t)
    if old._retains_grad:
        # retain_grad survives a write under no_grad, and stays with the node: torch's grad_fn is unchanged by the
        # write, so its retained gradient sums what the uses before and after the write send. The pre-write node
        # keeps retaining (the new one feeds it through the identity row) and stores into ``t``.
        if not old.__dict__.get("_retain_via_prev"):
            old._retain_into = t
        t._retains_grad = True
        t._retain_via_prev = True


# ---------------------------------------------------------------------------------------------------------
# in-place view ops (``t_``, ``transpose_``, ``squeeze_`` ...): the layout changes, the values do not

_INPLACE_VIEW_NO_GRAD = (
    "{name}(): an in-place view op under no_grad on a tensor that is part of a graph would leave its grad_fn "
    "expecting the old shape (torch then fails in backward). Call it with grad mode enabled, or on a detach()ed "
    "tensor."
)


def inplace_view(self, name, view_op):
    """``self`` takes the layout of ``view_op(self)`` (a view of the same storage), as torch's in-place view ops
    change a tensor's sizes and strides: the storage and ``self``'s own view fields stay, the shared version
    counter is bumped (a backward that needs a value saved before raises, as torch's). When recorded, ``self``
    also takes the view op's node (``grad_fn`` ``TBackward``, ``SqueezeBackward`` ...) and its node so far lives
    on in ``_prev`` for the rows that used it, as in ``rebase``. Returns ``self``."""
    from . import methods
    from .forward import reregister
    from .tape import mark_modified

    recorded = _grad_state.enabled and self._rg
    if recorded:
        if self._op is None:
            raise RuntimeError(methods._INPLACE_LEAF)
        if self._vbase is not None:
            check_recorded_write(self)
    elif self._op is not None and self._rg:
        raise RuntimeError(_INPLACE_VIEW_NO_GRAD.format(name=name))
    result = view_op(self)  # (bad arguments raise here, before anything changed)
    vc = counter(self)
    version = vc.version + 1
    mark_modified(self)  # (flags the new view's fresh arena copy too, as a member of the storage: unflag it)
    if result._tape is not None:
        result._tape.modified[result._off] = 0
    if not recorded and not result._tangents:
        self._data = result._data
        vc.version = version
        return self
    old = _old_node(self)
    result._inputs = tuple(old if i is self else i for i in result._inputs)
    methods._retarget(self, old)
    methods._semantics_rebase(self, old)
    reregister(old)
    keep = {k: self.__dict__[k] for k in _KEEP if k in self.__dict__ and k != "_data"}
    self.__dict__.clear()
    self.__dict__.update(result.__dict__)
    for k in ("_vbase", "_vflags", "_vname"):  # (the result is a view of ``self``'s root: ``self``'s own stay)
        self.__dict__.pop(k, None)
    self.__dict__.update(keep)
    methods._retarget_rows(self, result, self)
    vc.version = version
    self._prev = old
    reregister(self)
    if self._op is not None:  # torch names the in-place view's node apart from the out-of-place one's
        node = self.grad_fn
        node._name = _INPLACE_NODE_NAMES.get(node._name, node._name)
    if old._retains_grad:  # retain_grad follows the tensor to its new node, as in ``rebase``
        old._retains_grad = False
        _stop_retaining_before(old)
        self.retain_grad()
    return self
