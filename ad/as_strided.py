"""torch's ``as_strided`` family: a view of any geometry over a tensor's storage (``Tensor.as_strided``,
``torch.as_strided``), its in-place form (``as_strided_``) and its out-of-place write (``as_strided_scatter``).

Data structures (read ``ad/views.py``'s header first):

- The storage of a tensor is its root's memory: the root tensor (``_vbase``, or the tensor itself) holds it in
  ``_data``, whose first element is storage element 0. A root whose own geometry no longer covers its storage
  (after ``as_strided_``, ``set_`` or a shrinking ``resize_``: ``ad/storage.py``) keeps the whole storage as a
  flat array in ``_storage``, and storage element 0 is that array's first. ``storage_flat`` returns the storage
  as a flat array either way; ``storage_size`` its length; ``storage_positions`` the storage index of every
  element of a geometry (size, stride, storage offset), flat in C order.
- ``as_strided(x, size, stride, offset)`` is a view of ``x``'s root (``views.alias``): its ``_data`` is a
  strided array over the storage memory, so writes through either are seen by both and share one version counter.
  Its recorded node reads ``x``'s values by an index map (``ops.gather_map``, ``AsStridedBackward0``): output
  element ``j`` reads the element of ``x`` that lies at storage index ``wanted[j]``. Elements of the view that lie
  in the storage but outside ``x`` are constants (no gradient, as torch's), joined to the gathered ones by an
  addition that is named ``AsStridedBackward0``. Output elements that share a storage element accumulate their
  gradients (the scatter of the index map's VJP). An ``x`` whose own elements overlap in memory (an ``expand``ed
  tensor) splits each output element's gradient evenly among the elements of ``x`` at that storage index, as
  torch does: an ``amax`` over the (equal) aliases, whose VJP shares ties evenly.
- ``as_strided_scatter(x, src, size, stride, offset)`` is a new tensor of ``x``'s shape: ``x``'s values, except
  where an element of ``x`` lies at a storage index that the geometry covers, which takes the ``src`` element
  written there (the last in C order where the geometry covers a storage index twice). Both parts are index maps,
  so the gradients are exact: ``x`` gets the cotangent where it was kept, each ``src`` element the cotangent of the
  elements it landed on.

Where to start reading: ``as_strided``.
"""

import numpy as np

from kernels import opcodes as K

from . import views as _views
from .grad_mode import _grad_state
from .observe import value_read
from .ops import ADD, Op, add, amax, gather_map, scatter_map, where
from .ops.indexing import AS_STRIDED_VIEW
from .tensor import Node, Tensor, wrap_array

__all__ = ["as_strided", "as_strided_", "as_strided_scatter", "slice_inverse"]

# the sum of the gathered and the constant parts of a view that reads storage outside its input (see the header)
AS_STRIDED_JOIN = Op(
    "as_strided_join", K.ADD, "AsStridedBackward0", ADD.vjp, ADD.partial, ADD.np_fn, jvp=ADD.jvp, register=False
)
# as_strided_scatter's result: the kept part of ``input`` plus the scattered part of ``src``
AS_STRIDED_SCATTER = Op(
    "as_strided_scatter", K.ADD, "AsStridedScatterBackward0", ADD.vjp, ADD.partial, ADD.np_fn, jvp=ADD.jvp,
    register=False,
)  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# the storage of a tensor


def root_of(t):
    return t if t._vbase is None else t._vbase


def storage_flat(root):
    """The storage of root tensor ``root`` as a flat array (numpy, or a device array for a CUDA tensor) over the
    same memory: its ``_storage``, or its ``_data``'s memory from the first element to the last."""
    store = root.__dict__.get("_storage")
    if store is not None:
        return store
    d = root._data
    item = d.dtype.itemsize
    if any(s < 0 for s in d.strides):
        # (ad's roots have non-negative strides: torch's from_numpy refuses negative ones, and ad's own
        # reversals make copies; this guards the address arithmetic below)
        raise RuntimeError("as_strided: the tensor's storage has negative strides; call .contiguous() first")
    span = 0 if d.size == 0 else 1 + sum((n - 1) * s // item for n, s in zip(d.shape, d.strides))
    if root._dev is None:
        return np.lib.stride_tricks.as_strided(d, shape=(span,), strides=(item,))
    from .cuda.arrays import strided_view

    return strided_view(d, (span,), (1,), 0) if span else d.reshape(-1)


def storage_size(root):
    """The number of elements of root tensor ``root``'s storage."""
    return storage_flat(root).shape[0]


def storage_positions(shape, strides, offset):
    """The storage index of every element of the geometry (``shape``, element ``strides``, ``offset``), flat in C
    order."""
    idx = np.full(tuple(shape), offset, dtype=np.int64)
    for k, (extent, st) in enumerate(zip(shape, strides)):
        if extent > 1 and st:
            sh = [1] * len(shape)
            sh[k] = extent
            idx = idx + (np.arange(extent, dtype=np.int64) * st).reshape(sh)
    return idx.reshape(-1)


def strided_data(root, size, stride, offset):
    """A numpy (or device) array over ``root``'s storage memory with the given geometry (no copy)."""
    flat = storage_flat(root)
    if root._dev is not None:
        from .cuda.arrays import strided_view

        return strided_view(flat, size, stride, offset)
    item = flat.dtype.itemsize
    start = flat[offset:] if offset else flat
    return np.lib.stride_tricks.as_strided(start, shape=tuple(size), strides=tuple(s * item for s in stride))


def check_geometry(name, t, size, stride, offset):
    """torch's checks of a geometry over ``t``'s storage; returns ``(size, stride, offset)`` as ints (``offset``
    None: ``t``'s own).

    Raises:
        RuntimeError: ``size`` and ``stride`` of different lengths, a negative stride, size or offset, or a
            geometry that reaches past the storage (torch's messages, ``setStorage: ... out of bounds``).
    """
    if not isinstance(t, Tensor):
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not {type(t).__name__}")
    size, stride = _ints(name, "size", size), _ints(name, "stride", stride)
    offset = t.storage_offset() if offset is None else int(offset)
    check_layout(size, stride, offset, t.dtype.itemsize, storage_size(root_of(t)))
    return size, stride, offset


def check_layout(size, stride, offset, itemsize, available):
    """torch's checks of a geometry (lists of ints, an int offset) over a storage of ``available`` elements of
    ``itemsize`` bytes (``check_geometry``; ``as_strided_copy``'s, over its root's elements)."""
    if len(size) != len(stride):
        raise RuntimeError("mismatch in length of strides and shape")
    if any(s < 0 for s in stride):
        raise RuntimeError(f"as_strided: Negative strides are not supported at the moment, got strides: {stride}")
    if any(n < 0 for n in size):
        raise RuntimeError(f"Storage size calculation overflowed with sizes={size} and strides={stride}")
    if offset < 0:
        raise RuntimeError(f"Tensor: invalid storage offset {offset}")
    needed = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1 if all(size) else 0
    if needed > available:
        raise RuntimeError(
            f"setStorage: sizes {size}, strides {stride}, storage offset {offset}, and itemsize {itemsize} requiring "
            f"a storage size of {needed * itemsize} are out of bounds for storage of size {available * itemsize}"
        )


def _ints(name, arg, values):
    if isinstance(values, Tensor) or not isinstance(values, (tuple, list)):
        if isinstance(values, (int, np.integer)):
            return [int(values)]
        raise TypeError(f"{name}(): argument '{arg}' must be tuple of ints, not {type(values).__name__}")
    return [int(v) for v in values]


# ---------------------------------------------------------------------------------------------------------
# as_strided


def as_strided(input, size, stride, storage_offset=None):  # noqa: A002 - torch's names
    """``torch.as_strided``: a view of ``input``'s storage with shape ``size``, element strides ``stride`` and
    first element at ``storage_offset`` (default: ``input``'s own). Writes through the view are seen by
    ``input`` and the other views of its storage; gradients follow torch's ``AsStridedBackward0`` (see the module
    header: overlapping output elements accumulate, storage outside ``input`` gets none).

    Args:
        input: the tensor whose storage the view reads.
        size, stride: the view's shape and strides (in elements, non-negative).
        storage_offset: the storage index of the view's first element.

    Returns:
        A view of ``input``'s root (``_base``).

    Raises:
        RuntimeError: torch's errors for a bad or out-of-bounds geometry (``check_geometry``).

    Example:
        >>> ad.arange(6.0).as_strided((2, 2), (1, 2), 1)
        tensor([[1., 3.],
                [2., 4.]])
    """
    size, stride, offset = check_geometry("as_strided", input, size, stride, storage_offset)
    root = root_of(input)
    data = strided_data(root, size, stride, offset)
    if not (input._rg and _grad_state.enabled) and not input._tangents:
        out = wrap_array(data) if input._dev is None else _device_tensor(data, input._dev)
    else:
        out = _recorded(input, root, data, size, stride, offset)
    return _views.alias(input, out, data)


def _device_tensor(data, dev):
    from .cuda.ops import result

    return result(data, dev)


def _constant(data, dev):
    """A constant tensor holding a copy of array ``data``'s values."""
    if dev is None:
        return wrap_array(np.array(data))
    from .cuda.ops import const

    return const(_device_tensor(data, dev), data.dtype)


def _recorded(x, root, data, size, stride, offset):
    """The node of ``x.as_strided(size, stride, offset)``: a gather from ``x`` where the view lies on ``x``'s
    elements, constants elsewhere (see the module header)."""
    wanted = storage_positions(size, stride, offset)
    mine = storage_positions(x.shape, x.stride(), x.storage_offset())
    if root._rg and root.__dict__.get("_storage") is not None:
        owned = storage_positions(root.shape, root.stride(), root.storage_offset())
        outside_root = not np.isin(wanted, owned).all()
    else:
        outside_root = False
    if outside_root:
        # a recorded write through such a view would need the positions of memory outside its base's elements
        raise RuntimeError(
            "as_strided: this view reads storage outside the elements of a tensor that requires grad and whose "
            "geometry was changed in place (as_strided_, set_, resize_); ad cannot track writes through it. Take "
            "the view of a clone, or under no_grad."
        )
    order = np.argsort(mine, kind="stable")
    sorted_mine = mine[order]
    first = np.searchsorted(sorted_mine, wanted, side="left")
    last = np.searchsorted(sorted_mine, wanted, side="right")
    count = last - first  # the elements of x at each wanted storage index
    inside = count > 0
    if inside.all() and (count == 1).all():
        return gather_map(x, size, order[first], AS_STRIDED_VIEW)
    here = np.flatnonzero(inside)
    if (count[here] == 1).all():
        gathered = gather_map(x, (here.size,), order[first[here]], AS_STRIDED_VIEW)
    else:
        # x's own elements overlap: each output element reads all the aliases at its storage index, and the amax
        # of those equal values splits the gradient evenly among them (torch's rule); a padding entry of -inf
        # never wins a tie except against -inf values
        width = int(count[here].max())
        k = np.arange(width)
        taken = first[here][:, None] + np.minimum(k, count[here][:, None] - 1)
        aliases = gather_map(x, (here.size, width), order[taken], AS_STRIDED_VIEW)
        padded = k[None, :] >= count[here][:, None]
        if padded.any():
            aliases = where(wrap_array(padded), float("-inf"), aliases)
        gathered = amax(aliases, 1)
    out = scatter_map(gathered, size, here)
    outside = np.flatnonzero(~inside)
    if outside.size:
        value_read("as_strided reading storage outside its input")  # (ad.compile: the constant is this call's)
        constant = _constant(data, x._dev)
        out = add(out, scatter_map(gather_map(constant, (outside.size,), outside), size, outside))
        if out._op is not None:
            out._op = AS_STRIDED_JOIN
            out._node = None
    elif out._op is not None:  # (the scatter of the gathered aliases: torch's node name)
        out._node = Node("AsStridedBackward0", out._inputs, out._op)
    return out


def slice_inverse(input, src, dim=0, start=None, end=None, step=1):  # noqa: A002 - torch's names
    """``torch.slice_inverse``: the inverse of ``src.slice(dim, start, end, step)`` as torch runs it eagerly: a
    view of ``input``'s storage with ``src``'s shape, strides and storage offset (``dim``, ``start``, ``end`` and
    ``step`` name the slice that made ``input``; torch's eager op reads only ``src``'s geometry, and so does this).

    When ``input`` is that slice of a storage laid out as ``src``, the gradient is torch's (``input`` gets the
    cotangent's slice). Otherwise it is the derivative of the view's values, as ``as_strided``'s: the elements of
    the view that lie on ``input``'s storage give it their cotangents, the others are constants (torch's node
    slices the cotangent and sums it to ``input``'s shape, which is not that derivative: tests/
    test_parity_gaps19.py).

    Args:
        input: the slice (a tensor whose storage the view reads).
        src: the tensor whose geometry the view takes.
        dim, start, end, step: the slice (kept for torch's signature).

    Returns:
        A view of ``input``'s root, ``grad_fn`` ``SliceInverseBackward0``.

    Raises:
        RuntimeError: torch's ``setStorage: ... out of bounds`` where ``src``'s geometry reaches past the storage.

    Example:
        >>> base = ad.arange(6.0)
        >>> ad.slice_inverse(base[2:4], ad.zeros(6), 0, 2, 4)
        tensor([0., 1., 2., 3., 4., 5.])
    """
    if not isinstance(src, Tensor):
        raise TypeError(f"slice_inverse(): argument 'src' (position 2) must be Tensor, not {type(src).__name__}")
    out = as_strided(input, src.shape, src.stride(), src.storage_offset())
    if out._op is not None:
        out._node = Node("SliceInverseBackward0", out._inputs, out._op)
    return out


def as_strided_(input, size, stride, storage_offset=None):  # noqa: A002
    """``Tensor.as_strided_``: ``input`` itself takes the geometry (its storage stays; a view stays a view of
    its base), recorded as torch's ``AsStridedBackward1`` when ``input`` is part of a graph. Returns ``input``.

    Raises:
        RuntimeError: the errors of ``as_strided``, and torch's for an in-place op on a leaf that requires grad.

    Example:
        >>> x = ad.arange(6.0)
        >>> x.as_strided_((2,), (2,), 1)
        tensor([1., 3.])
    """
    size, stride, offset = check_geometry("as_strided_", input, size, stride, storage_offset)
    if input._vbase is None and "_storage" not in input.__dict__:
        input._storage = storage_flat(input)  # (the root's storage outlives its geometry: see the header)
    return _views.inplace_view(input, "as_strided_", lambda t: as_strided(t, size, stride, offset))


def as_strided_scatter(input, src, size, stride, storage_offset=None):  # noqa: A002
    """``torch.as_strided_scatter``: a new tensor of ``input``'s shape holding ``input``'s values, except for
    the elements of ``input`` that lie where ``input.as_strided(size, stride, storage_offset)`` lies in the
    storage, which take ``src``'s values there (``src`` cast to ``input``'s dtype). Differentiable in both.

    Raises:
        RuntimeError: ``src``'s shape is not ``size`` (torch's message), and the errors of ``as_strided``.

    Example:
        >>> ad.as_strided_scatter(ad.zeros(4), ad.ones(2), (2,), (2,))
        tensor([1., 0., 1., 0.])
    """
    size, stride, offset = check_geometry("as_strided_scatter", input, size, stride, storage_offset)
    if not isinstance(src, Tensor):
        raise TypeError(f"as_strided_scatter(): argument 'src' (position 2) must be Tensor, not {type(src).__name__}")
    if tuple(src.shape) != tuple(size):
        raise RuntimeError(
            f"expected src to have a size equal to the slice of self. src size = {list(src.shape)}, slice size = {size}"
        )
    if src.dtype != input.dtype:
        src = src.to(input.dtype)
    wanted = storage_positions(size, stride, offset)
    writer = np.full(storage_size(root_of(input)), -1, dtype=np.int64)
    np.maximum.at(writer, wanted, np.arange(wanted.size))  # (where the geometry covers an index twice: the last)
    written = writer[storage_positions(input.shape, input.stride(), input.storage_offset())]
    hit = np.flatnonzero(written >= 0)
    kept = np.flatnonzero(written < 0)
    shape = tuple(input.shape)
    out = add(
        scatter_map(gather_map(input, (kept.size,), kept), shape, kept),
        scatter_map(gather_map(src, (hit.size,), written[hit]), shape, hit),
    )
    if out._op is not None:
        out._op = AS_STRIDED_SCATTER
        out._node = None
    return out


def bind():
    """The Tensor methods."""

    def as_strided_scatter_method(self, src, size, stride, storage_offset=None):
        return as_strided_scatter(self, src, size, stride, storage_offset)

    as_strided_scatter_method.__name__ = as_strided_scatter_method.__qualname__ = "as_strided_scatter"
    Tensor.as_strided = as_strided
    Tensor.slice_inverse = slice_inverse
    Tensor.as_strided_ = as_strided_
    Tensor.as_strided_scatter = as_strided_scatter_method
