"""Shape and indexing ops (flip, roll, repeat, take, tril, diag, ...): composites; the Tensor methods of the
shape/index family.

Every differentiable op here is built from the index-map rows of ``ad/ops/__init__.py``: ``gather_map(x,
shape, index_map)`` (``out.flat[i] = x.flat[index_map[i]]``) and ``scatter_map(x, shape, index_map)``
(``out.flat[index_map[i]] += x.flat[i]``), plus ``where``, ``cat`` and the reductions. So none of them needs a
rule of its own: reverse mode stays in the compiled sweep (GATHER_MAP / SCATTER_MAP rows), and forward mode,
``create_graph`` and second order follow from those rows' rules.

The data structure each op builds is an integer *index map* (``index_maps.py``): ``_ids(shape)`` numbers the
elements of a tensor in C order, and numpy's own function applied to those numbers (``np.flip``, ``np.roll``,
``np.tile``, ``np.take_along_axis``, ...) says which input element lands where.

Ops whose result is one gather carry their own ``Op`` entry (torch's ``grad_fn`` name, e.g. FlipBackward0)
over the GATHER_MAP opcode. The family's other modules: ``scatter_ops.py`` (scatter, index_*, index_put, put,
masked_fill, masked_scatter: writes into a copy of the input), ``sorting.py`` (sort, topk, kthvalue, unique,
nonzero, searchsorted), ``stacking.py`` (broadcasting and stacking: meshgrid, hstack, ...), ``index_maps.py``
(what they share); this module binds the Tensor methods of all of them (``bind_methods``).

Start reading at ``flip`` (an index map and one gather).
"""

import builtins
import numbers

import numpy as np

from kernels import opcodes as K

from ..observe import value_read
from ..tensor import Tensor, _wrap_dim, wrap_array
from . import (
    GATHER,
    INDEX_SELECT,
    Op,
    _broadcast_shape,
    _gather_map_vjp,
    _gather_strided_vjp,
    _probe,
    _probe_layout,
    _record_gather_strided,
    _recording,
    gather_map,
    linear_op,
    reshape,
    scatter_map,
)
from . import clone as _clone
from . import sum as _sum
from .index_maps import _I64, _const, _flat_index_in_range, _ids, _index_array, _mask_array, _needs_grad, _pick
from .out import with_out
from .scatter_ops import (  # noqa: F401 - bound to Tensor and exported (``__all__``) by name, below
    index_add,
    index_copy,
    index_fill,
    index_put,
    index_reduce,
    masked_fill,
    masked_scatter,
    put,
    scatter,
    scatter_add,
    scatter_reduce,
)

FLIP = Op("flip", K.GATHER_STRIDED, "FlipBackward0", _gather_strided_vjp)
ROLL = Op("roll", K.GATHER_MAP, "RollBackward0", _gather_map_vjp)
ROT90 = Op("rot90", K.GATHER_STRIDED, "Rot90Backward0", _gather_strided_vjp)
REPEAT = Op("repeat", K.GATHER_MAP, "RepeatBackward0", _gather_map_vjp)
TAKE = Op("take", K.GATHER_MAP, "TakeBackward0", _gather_map_vjp)
MASKED_SELECT = Op("masked_select", K.GATHER_MAP, "MaskedSelectBackward0", _gather_map_vjp)
DIAGONAL = Op("diag", K.GATHER_MAP, "DiagonalBackward0", _gather_map_vjp)


# ---------------------------------------------------------------------------------------------------------
# flip, roll, rot90, repeat, tile, repeat_interleave: one gather each


def _dims_arg(dims):
    if isinstance(dims, numbers.Integral):
        return (int(dims),)
    return tuple(dims)


def _wrap_dims(dims, ndim):
    out = []
    for d in dims:
        d = _wrap_dim(d, ndim)
        if d in out:
            raise RuntimeError(f"dim {d} appears multiple times in the list of dims")
        out.append(d)
    return out


def _shape_args(sizes, fn):
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    for s in sizes:
        if not isinstance(s, numbers.Integral):
            raise TypeError(
                f"{fn}(): argument 'dims' must be tuple of ints, but found element of type {type(s).__name__}"
            )
    return tuple(int(s) for s in sizes)


@linear_op
def _strided_view(x, op, view):
    """A copy of the numpy view ``view(x)`` (flip, rot90: negative strides) recorded as one strided gather.

    The layout comes from applying ``view`` to a probe (``ad/ops/__init__.py``), so no index map is stored.
    """
    if x._dev is not None:  # one strided gather on the device
        probe = view(_probe(x.shape))
        base, strides = _probe_layout(probe)
        from ..cuda.ops import gather_strided as device_gather

        return device_gather(x, probe.shape, strides, base, op=op, record=_recording(x))
    out_data = np.copy(view(x._data), order="C")  # (ascontiguousarray would make a 0-d array 1-d)
    if not _recording(x):
        return wrap_array(out_data)
    base, strides = _probe_layout(view(_probe(x.shape)))
    return _record_gather_strided(op, x, out_data, strides, base)


def flip(input, dims, *more_dims):  # noqa: A002 - torch's names
    """Reverse the order of elements along ``dims``.

    Args: input (Tensor); dims (int or sequence of ints; ``Tensor.flip(0, 1)`` gives them one by one).
    Returns: a new tensor (torch copies too). Raises: IndexError for a dim out of range, RuntimeError for a
    repeated dim. Example: ``ad.flip(ad.tensor([1., 2.]), [0])`` is ``[2., 1.]``.
    """
    dims = _wrap_dims(_dims_arg(dims) + more_dims, input.ndim)
    return _strided_view(input, FLIP, lambda a: np.flip(a, dims) if dims and a.ndim else a)


def fliplr(input):  # noqa: A002
    """Flip the second dimension (columns); needs at least 2 dims."""
    if input.ndim < 2:
        raise RuntimeError("Input must be >= 2-d.")
    return flip(input, [1])


def flipud(input):  # noqa: A002
    """Flip the first dimension (rows); needs at least 1 dim."""
    if input.ndim < 1:
        raise RuntimeError("Input must be >= 1-d.")
    return flip(input, [0])


def roll(input, shifts, dims=None):  # noqa: A002
    """Roll elements along ``dims`` by ``shifts`` (the flattened tensor when ``dims`` is None)."""
    shifts = _dims_arg(shifts)
    ids = _ids(input.shape)
    if dims is None or (not isinstance(dims, numbers.Integral) and len(dims) == 0):
        if len(shifts) != 1:
            raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, dims:0")
        index_map = np.roll(ids.reshape(-1), shifts[0]).reshape(input.shape)
    else:
        dims = _dims_arg(dims)
        if len(shifts) != len(dims):
            raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, dims:{len(dims)}")
        dims = [_wrap_dim(d, input.ndim) for d in dims]
        index_map = np.roll(ids, shifts, dims) if input.ndim else ids
    return gather_map(input, input.shape, index_map, ROLL)


def rot90(input, k=1, dims=(0, 1)):  # noqa: A002
    """Rotate by 90 degrees ``k`` times in the plane ``dims``, from the first towards the second axis."""
    dims = _dims_arg(dims)
    if len(dims) != 2:
        raise RuntimeError(f"expected total rotation dims == 2, but got dims = {len(dims)}")
    if input.ndim < 2:
        raise RuntimeError(f"expected total dims >= 2, but got total dims = {input.ndim}")
    d0, d1 = (_wrap_dim(d, input.ndim) for d in dims)
    if d0 == d1:
        raise RuntimeError(f"expected rotation dims to be different, but got dim0 = {d0} and dim1 = {d1}")
    return _strided_view(input, ROT90, lambda a: np.rot90(a, k, axes=(d0, d1)))


def repeat(input, *sizes, repeats=None):  # noqa: A002
    """``Tensor.repeat``: tile the tensor ``sizes[k]`` times along each dim (new leading dims allowed)."""
    sizes = _shape_args(sizes if repeats is None else (repeats,), "repeat")
    if len(sizes) < input.ndim:
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number of dimensions of tensor")
    if builtins.any(s < 0 for s in sizes):
        raise RuntimeError(f"Trying to create tensor with negative dimension {builtins.min(sizes)}: {list(sizes)}")
    ids = _ids(input.shape).reshape((1,) * (len(sizes) - input.ndim) + input.shape)
    index_map = np.tile(ids, sizes)
    return gather_map(input, index_map.shape, index_map, REPEAT)


def tile(input, dims, *more_dims):  # noqa: A002
    """Like ``repeat``, with ``dims`` padded with leading ones when it is shorter than ``input.ndim``."""
    dims = _shape_args(((dims,) if isinstance(dims, numbers.Integral) else tuple(dims)) + more_dims, "tile")
    dims = (1,) * (input.ndim - len(dims)) + dims
    return repeat(input, dims)


def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):  # noqa: A002
    """Repeat each element ``repeats`` times along ``dim`` (of the flattened tensor when ``dim`` is None).

    ``repeat_interleave(repeats)`` with one integer tensor gives ``arange(len(repeats))`` repeated.
    """
    if repeats is None:
        reps = _index_array(input, "repeat_interleave", "repeats")
        if reps.ndim != 1:
            raise RuntimeError("repeat_interleave only accept 1D vector as repeat")
        if (reps < 0).any():
            raise RuntimeError("repeats can not be negative")
        return wrap_array(np.repeat(np.arange(reps.size, dtype=_I64), reps))
    x = input if dim is not None else reshape(input, -1)
    d = _wrap_dim(dim, x.ndim) if dim is not None else 0
    size = x.shape[d] if x.ndim else 1
    if isinstance(repeats, Tensor):
        reps = _index_array(repeats, "repeat_interleave", "repeats")
        if reps.ndim > 1:
            raise RuntimeError("repeat_interleave only accept 1D vector as repeat")
        reps = reps.reshape(-1)
        if reps.size == 1:
            reps = np.full(size, reps[0], dtype=_I64)
    elif isinstance(repeats, numbers.Integral):
        reps = np.full(size, int(repeats), dtype=_I64)
    else:
        raise TypeError(f"repeat_interleave(): argument 'repeats' must be Tensor or int, not {type(repeats).__name__}")
    if reps.size != size:
        raise RuntimeError(
            f"repeats must have the same size as input along dim, but got repeats.size(0) = {reps.size} and "
            f"input.size({d}) = {size}"
        )
    if (reps < 0).any():
        raise RuntimeError("repeats can not be negative")
    if output_size is not None and int(reps.sum()) != output_size:
        raise RuntimeError(f"allocated size does not match required size {int(reps.sum())} vs {output_size}")
    if x.ndim == 0:
        x = reshape(x, 1)
    index_map = np.repeat(_ids(x.shape), reps, axis=d)
    return gather_map(x, index_map.shape, index_map, INDEX_SELECT)


# ---------------------------------------------------------------------------------------------------------
# take / take_along_dim / masked_select: one gather each


@with_out(same_dtype=True)
def take(input, index):  # noqa: A002
    """``input.flatten()[index]`` with the shape of ``index`` (negative indices count from the end)."""
    idx = _index_array(index, "take")
    n = _flat_index_in_range(idx, input)
    return gather_map(input, idx.shape, idx % n if n else idx, TAKE)


@with_out(same_dtype=True)
def take_along_dim(input, indices, dim=None):  # noqa: A002
    """Values of ``input`` at ``indices`` along ``dim`` (both broadcast apart from ``dim``; None: flattened)."""
    idx = _index_array(indices, "take_along_dim", "indices")
    if dim is None:
        n = input._data.size
        bad = idx[(idx < -n) | (idx >= n)]
        if bad.size:  # (torch's class is gather's, not take's)
            raise RuntimeError(f"index {int(bad.reshape(-1)[0])} is out of bounds for dimension 0 with size {n}")
        return take(reshape(input, -1), wrap_array(idx.reshape(-1)))
    if idx.ndim != input.ndim:
        raise RuntimeError(
            "torch.take_along_dim(): input and indices should have the same number of dimensions, "
            f"but got {input.ndim} dimensions for input, and {idx.ndim} dimensions for indices"
        )
    d = _wrap_dim(dim, input.ndim)
    xs, js = list(input.shape), list(idx.shape)
    xs[d] = js[d] = 1
    b = list(broadcast_shapes(tuple(xs), tuple(js)))
    bx, bi = list(b), list(b)
    bx[d], bi[d] = input.shape[d], idx.shape[d]
    size = input.shape[d]
    bad = idx[(idx < -size) | (idx >= size)]
    if bad.size:
        raise RuntimeError(f"index {int(bad.reshape(-1)[0])} is out of bounds for dimension {d} with size {size}")
    ids = np.broadcast_to(_ids(input.shape), bx)
    index_map = np.take_along_axis(ids, np.broadcast_to(idx % builtins.max(size, 1), bi), axis=d)
    return gather_map(input, index_map.shape, index_map, GATHER)


@with_out(same_dtype=True)
def masked_select(input, mask):  # noqa: A002
    """The elements of ``input`` where ``mask`` holds, as a 1-D tensor (both broadcast)."""
    value_read("masked_select() (a data-dependent shape)")
    m = _mask_array(mask, "masked_select:")
    shape = np.broadcast_shapes(input.shape, m.shape)
    index_map = np.broadcast_to(_ids(input.shape), shape)[np.broadcast_to(m, shape)]
    return gather_map(input, index_map.shape, index_map, MASKED_SELECT)


# ---------------------------------------------------------------------------------------------------------
# tril / triu / diag / diag_embed / trace


def _triangle(input, diagonal, lower, fn):
    if input.ndim < 2:
        raise RuntimeError(f"{fn}: input tensor must have at least 2 dimensions")
    rows, cols = input.shape[-2:]
    keep = np.tri(rows, cols, diagonal, dtype=bool) if lower else ~np.tri(rows, cols, diagonal - 1, dtype=bool)
    return _pick(np.broadcast_to(keep, input.shape), input, _const(0, input.dtype))


@with_out(same_dtype=True)
def tril(input, diagonal=0):  # noqa: A002
    """The lower triangle of the last two dims (elements on and below ``diagonal``); the rest is zero."""
    return _triangle(input, diagonal, True, "tril")


@with_out(same_dtype=True)
def triu(input, diagonal=0):  # noqa: A002
    """The upper triangle of the last two dims (elements on and above ``diagonal``); the rest is zero."""
    return _triangle(input, diagonal, False, "triu")


def diag_embed(input, offset=0, dim1=-2, dim2=-1):  # noqa: A002
    """A tensor whose diagonals (``offset``) in the planes ``(dim1, dim2)`` hold the last dim of ``input``."""
    nd = input.ndim + 1
    d1, d2 = _wrap_dim(dim1, nd), _wrap_dim(dim2, nd)
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    x = input if input.ndim else reshape(input, 1)
    n = x.shape[-1] + builtins.abs(offset)
    shape = list(x.shape[:-1])
    for d in sorted((d1, d2)):
        shape.insert(d, n)
    positions = np.diagonal(_ids(tuple(shape)), offset, d1, d2)
    return scatter_map(x, tuple(shape), positions)


@with_out(same_dtype=True)
def diag(input, diagonal=0):  # noqa: A002
    """1-D input: a square matrix with it on ``diagonal``; 2-D input: its ``diagonal``-th diagonal."""
    if input.ndim == 1:
        return diag_embed(input, diagonal, 0, 1)
    if input.ndim != 2:
        raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {input.ndim}D")
    index_map = np.diagonal(_ids(input.shape), diagonal).copy()
    return gather_map(input, index_map.shape, index_map, DIAGONAL)


def trace(input):  # noqa: A002
    """The sum of the main diagonal of a 2-D tensor (int64 for integer input, as torch)."""
    if input.ndim != 2:
        raise RuntimeError(f"trace: expected a matrix, but got tensor with dim {input.ndim}")
    if input.dtype.kind != "f":
        return wrap_array(np.asarray(np.trace(input._data), dtype=_I64))
    return _sum(diag(input))


# ---------------------------------------------------------------------------------------------------------
# broadcast_shapes, clone


def broadcast_shapes(*shapes):
    """The shape that tensors of ``shapes`` broadcast to (each an int or a sequence of ints)."""
    shapes = [(s,) if isinstance(s, numbers.Integral) else tuple(s) for s in shapes]
    try:
        return tuple(int(s) for s in np.broadcast_shapes(*shapes))
    except ValueError:
        # torch's message: the first shape (in order) that does not broadcast to the shapes before it
        so_far = ()
        for i, s in enumerate(shapes):
            nd = builtins.max(len(so_far), len(s))
            a, b = (1,) * (nd - len(so_far)) + so_far, (1,) * (nd - len(s)) + s
            for k in range(nd - 1, -1, -1):
                if a[k] != b[k] and a[k] != 1 and b[k] != 1:
                    raise RuntimeError(
                        f"Attempting to broadcast a dimension of length {b[k]} at {k - nd}! Mismatching argument at "
                        f"index {i} had {tuple(s)}; but expected shape should be broadcastable to {list(a)}"
                    ) from None
            so_far = tuple(builtins.max(x, y) if 1 in (x, y) else x for x, y in zip(a, b))
        raise


def clone(input, *, memory_format=None):  # noqa: A002
    """A copy of ``input`` that stays in the graph (``memory_format`` is accepted for torch)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"clone(): argument 'input' must be Tensor, not {type(input).__name__}")
    if not _needs_grad(input) and input._dev is None:
        return wrap_array(input._data.copy())
    return _clone(input)  # (a CUDA tensor: a device copy, recorded only if it needs grad)


# ---------------------------------------------------------------------------------------------------------
# Tensor methods and in-place variants


def _make_inplace(name, out_of_place):
    """``Tensor.<name>_``: compute out of place, then take the result's place as torch's in-place ops do."""
    from .. import methods

    def method(self, *args, **kwargs):
        others = [a for a in (*args, *kwargs.values()) if isinstance(a, Tensor)]
        rg_other = next((a for a in others if a._rg), None)
        if methods._records_inplace(self, rg_other):
            return methods._rebase(self, lambda snap: out_of_place(snap, *args, **kwargs))
        dual_other = next((a for a in others if a._tangents), None)
        if methods._dual_inplace(self, dual_other, lambda: out_of_place(self, *args, **kwargs)):
            return self
        if self._dev is not None:  # (a CUDA tensor: computed on the device and copied into its storage)
            # (cast to self's dtype first, as the host's store does: an integer index_add_ with alpha stays Long)
            return methods._device_write(self, lambda: out_of_place(self, *args, **kwargs).to(self.dtype), name[:-1])
        result = out_of_place(self, *args, **kwargs)
        if result.shape != self.shape:
            raise RuntimeError(
                f"output with shape {list(self.shape)} doesn't match the broadcast shape {list(result.shape)}"
            )
        self._data[...] = result._data
        methods._bump(self)
        return self

    method.__name__ = name
    method.__doc__ = f"In-place ``{name[:-1]}`` (recorded in the graph as torch's in-place ops are)."
    return method


_METHODS = (
    "flip fliplr flipud roll rot90 repeat tile repeat_interleave scatter scatter_add scatter_reduce index_add "
    "index_copy index_fill index_put index_reduce masked_fill masked_scatter masked_select put take take_along_dim "
    "tril triu diag diag_embed trace"
).split()
_INPLACE = (
    "scatter scatter_add scatter_reduce index_add index_copy index_fill index_put index_reduce masked_fill "
    "masked_scatter put tril triu"
).split()
# what ``from ad.ops.shape_index import *`` (ad/__init__.py) exports: the functions torch has
__all__ = [n for n in _METHODS if n != "repeat"] + ["broadcast_shapes", "clone"]


def _masked_fill_inplace(out_of_place):
    def fn(self, mask, value):
        m = _mask_array(mask, "masked_fill_")
        shape = _broadcast_shape(self.shape, m.shape)  # (torch's error where they do not broadcast)
        if shape != tuple(self.shape):
            raise RuntimeError(f"output with shape {list(self.shape)} doesn't match the broadcast shape {list(shape)}")
        return out_of_place(self, mask, value)

    return fn


def bind_methods(T):
    """Bind the shape/index ops to ``Tensor`` (called from ``ad.methods.bind``)."""
    from . import sorting

    g = globals()
    for name in _METHODS:
        fn = g[name]
        setattr(T, name, getattr(fn, "__wrapped__", fn))
    for name in sorting.METHODS:
        fn = getattr(sorting, name)
        setattr(T, name, getattr(fn, "method", fn))
    for name in _INPLACE:
        fn = getattr(g[name], "__wrapped__", g[name])
        if name in ("masked_fill", "masked_scatter"):
            fn = _masked_fill_inplace(fn)
        setattr(T, name + "_", _make_inplace(name + "_", fn))
