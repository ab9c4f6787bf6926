"""Scatter-style ops: out-of-place writes into a copy of ``input`` at indices or mask positions (scatter,
scatter_add, scatter_reduce, index_add, index_reduce, index_copy, index_fill, index_put, put, masked_fill,
masked_scatter); ``shape_index.py`` binds them, with their in-place variants, to ``Tensor``.

Like the rest of the shape/index family they are composites over the index-map rows (``index_maps.py`` explains
the index map), so none needs a rule of its own. Ops that replace elements (scatter, index_copy, index_put,
masked_scatter) gather the replacing values onto the output's shape and pick with ``where(mask, picked, x)``.
With repeated indices the last write wins (as torch's CPU loop), and only that source element receives
gradient (``_overwrite``). Ops that add (scatter_add, index_add, ``accumulate=True``) are ``input +
scatter_map(...)``. Reductions onto repeated targets (``scatter_reduce`` with prod / amax / amin) gather each
target's contributions into a padded ``(targets, K)`` matrix and reduce it along its rows, so they inherit
amax's gradient (split evenly between ties, as torch); prod multiplies halves of the row, so its gradient needs
no division and stays exact at zeros.

Start reading at ``scatter`` (positions from ``(dim, index)``, then a pick with ``where``).
"""

import builtins

import numpy as np

from ..cuda import host_copy
from ..saved import guard
from ..tensor import Tensor, _wrap_dim, wrap_array
from . import _is_scalar, _torch_dtype, cat, expand, gather_map, reshape, scatter_map
from . import clone as _clone
from .index_maps import (
    _I64,
    _const,
    _data,
    _flat_index_in_range,
    _host_index,
    _ids,
    _index_array,
    _mask_array,
    _needs_grad,
    _pick,
    _tname,
)
from .out import with_out

# ---------------------------------------------------------------------------------------------------------
# helpers: fill values, and the last write wins


def _fill_value(value, x, fn):
    """A fill value as a tensor of ``x``'s dtype: a Python number, or a 0-d tensor (differentiable)."""
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(
                f"{fn} only supports a 0-dimensional value tensor, but got tensor with {value.ndim} dimension(s)."
            )
        return value.to(x.dtype) if value.dtype != x.dtype and x.dtype.kind == "f" else value
    if not _is_scalar(value):
        raise TypeError(f"{fn}(): argument 'value' must be Number or Tensor, not {type(value).__name__}")
    return _const(value, x.dtype)


def _last_writes(positions):
    """For flat target ``positions`` (in write order): the unique targets and, for each, the last writer."""
    rev = positions[::-1]
    targets, first_in_rev = np.unique(rev, return_index=True)
    return targets, len(positions) - 1 - first_in_rev


def _overwrite(x, positions, src, src_positions):
    """``x`` with ``x.flat[positions[i]] = src.flat[src_positions[i]]`` in order (the last write wins)."""
    if positions.size == 0:
        return _clone(x) if _needs_grad(x) else wrap_array(x._data.copy())
    targets, writer = _last_writes(positions)
    mask = np.zeros(x._data.size, dtype=bool)
    mask[targets] = True
    gmap = np.zeros(x._data.size, dtype=_I64)
    gmap[targets] = src_positions[writer]
    picked = gather_map(src, x.shape, gmap)
    return _pick(mask.reshape(x.shape), picked, x)


# ---------------------------------------------------------------------------------------------------------
# scatter family: positions from (dim, index), then an overwrite, a sum, or a padded reduction


def _scatter_positions(x, dim, index, src_shape, fn):
    """Flat target positions in ``x`` and source positions in ``src`` for each element of ``index`` (C order)."""
    d = _wrap_dim(dim, x.ndim)
    idx = _index_array(index, fn)
    xshape = x.shape if x.ndim else (1,)
    src_shape = tuple(src_shape) if len(src_shape) else (1,)
    if idx.ndim == 0:
        idx = idx.reshape(1)
    if idx.size == 0:
        return d, np.zeros(0, _I64), np.zeros(0, _I64)
    if idx.ndim != len(xshape):
        raise RuntimeError("Index tensor must have the same number of dimensions as self tensor")
    if src_shape is not None and len(src_shape) != idx.ndim:
        raise RuntimeError("Index tensor must have the same number of dimensions as src tensor")
    for k in range(idx.ndim):
        if idx.shape[k] > src_shape[k] or (k != d and idx.shape[k] > xshape[k]):
            raise RuntimeError(
                f"Expected index {list(idx.shape)} to be smaller than self {list(xshape)} apart from dimension "
                f"{d} and to be smaller size than src {list(src_shape)}"
            )
    bad = idx[(idx < 0) | (idx >= xshape[d])]
    if bad.size:
        raise RuntimeError(f"index {int(bad.reshape(-1)[0])} is out of bounds for dimension {d} with size {xshape[d]}")
    return d, _grid_positions(idx.shape, xshape, d, idx), _grid_positions(idx.shape, src_shape)


def _grid_positions(grid, shape, replace_dim=None, coord=None):
    """Flat C-order positions in a tensor of ``shape`` of every index of the box ``grid`` (each extent no
    larger than ``shape``'s), with the coordinate along ``replace_dim`` taken from the array ``coord``."""
    strides = np.ones(len(shape), dtype=_I64)
    strides[:-1] = np.cumprod(np.asarray(shape[:0:-1], dtype=_I64))[::-1]
    pos = np.zeros(grid, dtype=_I64)
    for k, (extent, stride) in enumerate(zip(grid, strides)):
        if k == replace_dim:
            pos += coord * stride
        elif extent > 1:
            view = [1] * len(grid)
            view[k] = extent
            pos += (np.arange(extent, dtype=_I64) * stride).reshape(view)
    return pos.reshape(-1)


def _src_tensor(x, src, fn):
    if not isinstance(src, Tensor):
        raise TypeError(f"{fn}(): argument 'src' must be Tensor, not {type(src).__name__}")
    if src.dtype != x.dtype:
        raise RuntimeError(f"{fn}(): Expected self.dtype to be equal to src.dtype")
    return src


@with_out(same_dtype=True)
def scatter(input, dim, index, src=None, value=None, *, reduce=None):  # noqa: A002
    """``out = input.clone(); out[...index[i][j]...] = src[i][j]`` along ``dim`` (``value``: a number instead).

    ``reduce="add"`` or ``"multiply"`` combine instead of replacing (as ``scatter_reduce`` with
    ``include_self=True``). Repeated indices: the last write wins.

    Args: input (Tensor); dim (int); index (int64 Tensor, as many dims as ``input``, no larger than ``src``
    and, apart from ``dim``, than ``input``); src (Tensor of ``input``'s dtype) or value (number); reduce.
    Returns: a new tensor of ``input``'s shape; ``out=`` writes it into a given tensor.
    Raises: RuntimeError for an index out of bounds, of the wrong dtype or shape, a dtype mismatch or an
    unknown ``reduce``. Example: ``ad.zeros(3).scatter(0, ad.tensor([2]), ad.tensor([5.]))`` is ``[0, 0, 5]``.
    """
    if src is not None and not isinstance(src, Tensor):
        src, value = None, src
    if src is None and value is None:
        raise TypeError("scatter() missing required argument: 'src' or 'value'")
    if reduce is not None and reduce not in ("add", "multiply"):
        raise RuntimeError(f"reduce argument must be either add or multiply, got {reduce}")
    if src is None:
        value = _fill_value(value, input, "scatter")
        idx_shape = _data(index).shape
        if reduce is not None:
            src = expand(value, idx_shape)
        else:
            d, out_pos, _ = _scatter_positions(input, dim, index, idx_shape, "scatter")
            mask = np.zeros(input._data.size, dtype=bool)
            mask[out_pos] = True
            return _pick(mask.reshape(input.shape), value, input)
    src = _src_tensor(input, src, "scatter")
    if reduce == "add":
        return scatter_add(input, dim, index, src)
    if reduce == "multiply":
        return scatter_reduce(input, dim, index, src, "prod")
    d, out_pos, src_pos = _scatter_positions(input, dim, index, src.shape, "scatter")
    return _overwrite(input, out_pos, src, src_pos)


def _contributions(src, src_pos, idx_shape):
    """The elements of ``src`` that ``index`` addresses, in index order (a gather, skipped when all are used)."""
    if src.shape == tuple(idx_shape) or (src.ndim == 0 and src_pos.size == 1):
        return reshape(src, -1)
    return gather_map(src, (src_pos.size,), src_pos)


@with_out(same_dtype=True)
def scatter_add(input, dim, index, src):  # noqa: A002
    """``out = input.clone(); out[...index[i][j]...] += src[i][j]`` along ``dim`` (repeated indices add up)."""
    src = _src_tensor(input, src, "scatter_add")
    d, out_pos, src_pos = _scatter_positions(input, dim, index, src.shape, "scatter_add")
    if out_pos.size == 0:
        return _overwrite(input, out_pos, src, src_pos)
    vals = _contributions(src, src_pos, _data(index).shape)
    return input + scatter_map(vals, input.shape, out_pos)


_REDUCES = ("sum", "prod", "mean", "amax", "amin")


@with_out(same_dtype=True)
def scatter_reduce(input, dim, index, src, reduce, *, include_self=True):  # noqa: A002
    """Reduce ``src`` into ``input`` at ``index`` along ``dim`` with ``reduce`` in sum, prod, mean, amax, amin.

    ``include_self=False`` leaves the values of ``input`` out of the reduction at the positions written to.
    Gradients follow torch: amax/amin split the gradient evenly between tied values; prod's is exact at zeros.
    Integer ``mean`` rounds down, as torch.

    Args: as ``scatter``, plus reduce (str) and include_self (bool). Returns: a new tensor of ``input``'s shape.
    Raises: RuntimeError for an unknown ``reduce`` and for the index errors of ``scatter``.
    Example: ``ad.zeros(2).scatter_reduce(0, ad.tensor([0, 0]), ad.tensor([1., 3.]), "mean")`` is
    ``[4/3, 0]`` (``include_self=False``: ``[2, 0]``).
    """
    if reduce not in _REDUCES:
        raise RuntimeError(f"reduce argument must be either sum, prod, mean, amax or amin, got {reduce}")
    src = _src_tensor(input, src, "scatter_reduce")
    d, out_pos, src_pos = _scatter_positions(input, dim, index, src.shape, "scatter_reduce")
    if out_pos.size == 0:
        return _overwrite(input, out_pos, src, src_pos)
    vals = _contributions(src, src_pos, _data(index).shape)
    n = input._data.size
    touched = np.zeros(n, dtype=bool)
    touched[out_pos] = True
    touched = touched.reshape(input.shape)
    if reduce in ("sum", "mean"):
        base = input if include_self else _pick(touched, _const(0, input.dtype, input), input)
        total = base + scatter_map(vals, input.shape, out_pos)
        if reduce == "sum":
            return total
        count = np.bincount(out_pos, minlength=n).reshape(input.shape) + (1 if include_self else 0)
        count = np.maximum(count, 1)
        if input.dtype.kind != "f":
            return _const(np.floor_divide(host_copy(total._data), count), input.dtype, input)
        return _pick(touched, total / _const(count, input.dtype, input), input)
    if reduce != "prod":
        return _scatter_extreme(input, vals, out_pos, touched, reduce == "amax", include_self)
    # prod: each target's contributions in one row (padded with ones to a power of two), reduced by
    # multiplying halves: log2(width) products whose gradient has no division, so it stays exact where a
    # contribution is zero (prod's rule divides by the input)
    order = np.argsort(out_pos, kind="stable")
    ordered = out_pos[order]
    first = np.ones(ordered.size, dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    starts = np.flatnonzero(first)
    targets = ordered[starts]
    counts = np.diff(np.append(starts, ordered.size))
    lead = 1 if include_self else 0
    width = int(counts.max()) + lead
    width = 1 << (width - 1).bit_length()
    pad = n + vals.shape[0]
    table = np.full((targets.size, width), pad, dtype=_I64)
    if include_self:
        table[:, 0] = targets
    group = np.repeat(np.arange(targets.size), counts)
    rank = np.arange(order.size) - starts[group]
    table[group, lead + rank] = n + order
    pool = cat([reshape(input, -1), vals, _const([1], input.dtype, input)])
    rows = gather_map(pool, table.shape, table)
    while rows.shape[1] > 1:
        half = rows.shape[1] // 2
        rows = rows[:, :half] * rows[:, half:]
    reduced = reshape(rows, -1)
    placed = scatter_map(reduced, input.shape, targets)
    return _pick(touched, placed, input)


def _scatter_extreme(input, vals, out_pos, touched, is_max, include_self):
    """``scatter_reduce`` with amax / amin: each target is the mean of its candidates that equal the extreme.

    The value is the extreme; the gradient is split evenly between tied candidates (as torch), and the graph
    holds one gather of the tied candidates, a scaling and one scatter, whatever the number of candidates.
    """
    n = input._data.size
    m = out_pos.size
    # (on CUDA: the candidates' index maps from host copies of the values, as sort's; the values are gathered on
    # the device)
    pool_data = np.concatenate([host_copy(input._data).reshape(-1), host_copy(vals._data).reshape(-1)])
    cand_target, cand_src = out_pos, np.arange(n, n + m, dtype=_I64)
    if include_self:
        own = np.flatnonzero(touched)
        cand_target, cand_src = np.concatenate([own, cand_target]), np.concatenate([own, cand_src])
    order = np.argsort(cand_target, kind="stable")
    target_sorted, src_sorted = cand_target[order], cand_src[order]
    value_sorted = pool_data[src_sorted]
    first = np.ones(order.size, dtype=bool)
    first[1:] = target_sorted[1:] != target_sorted[:-1]
    starts = np.flatnonzero(first)
    extreme = (np.maximum if is_max else np.minimum).reduceat(value_sorted, starts)
    targets = target_sorted[starts]
    if not _needs_grad(input, vals):
        out = host_copy(input._data).copy()
        out.reshape(-1)[targets] = extreme
        return _const(out, input.dtype, input)
    group = np.cumsum(first) - 1
    tied = value_sorted == extreme[group]
    if pool_data.dtype.kind == "f":
        tied |= np.isnan(value_sorted) & np.isnan(extreme[group])  # a NaN extreme is its own candidate
    count = np.bincount(group[tied], minlength=starts.size)
    pool = cat([reshape(input, -1), vals])
    picked = gather_map(pool, (int(tied.sum()),), src_sorted[tied])
    if (count > 1).any():
        picked = picked * _const(1.0 / count[group[tied]], input.dtype, input)
    placed = scatter_map(picked, input.shape, target_sorted[tied])
    return _pick(touched, placed, input)


# ---------------------------------------------------------------------------------------------------------
# index_add / index_reduce / index_copy / index_fill / index_put


# per op: (exception for a bad index, message prefix, negative indices allowed) as torch raises them
_INDEX_RULES = {
    "index_add": (RuntimeError, "", False),
    "index_copy": (IndexError, "index_copy_(): ", False),
    "index_fill": (IndexError, "", True),
    "index_reduce": (IndexError, "", False),
}


def _index_positions(x, dim, index, source_shape, fn):
    """Flat positions in ``x`` of the slices ``index`` selects along ``dim``, shaped like ``source``."""
    exc, prefix, negative_ok = _INDEX_RULES[fn]
    d = _wrap_dim(dim, x.ndim)
    idx = _index_array(index, fn)
    if idx.ndim > 1:
        if fn == "index_fill":
            raise RuntimeError("Index has to be a vector/scalar")
        raise IndexError(f"{fn}_(): Index is supposed to be a vector, but got dim: {idx.ndim}")
    idx = idx.reshape(-1)
    xshape = x.shape if x.ndim else (1,)
    size = xshape[d]
    bad = idx[(idx < (-size if negative_ok else 0)) | (idx >= size)]
    if bad.size and fn == "index_reduce":
        raise IndexError("index out of range in self")
    if bad.size:
        raise exc(f"{prefix}index {int(bad[0])} is out of bounds for dimension {d} with size {size}")
    positions = np.take(_ids(xshape), idx % size if size else idx, axis=d)
    if source_shape is not None:
        sshape = tuple(source_shape) if len(source_shape) else (1,)
        if len(sshape) != len(xshape) or sshape[d] != idx.size:
            raise (RuntimeError if fn == "index_add" else IndexError)(
                f"{fn}_(): Number of indices ({idx.size}) should be equal to source.size(dim) "
                f"({sshape[d] if len(sshape) > d else 0})"
            )
        if sshape != positions.shape:
            raise RuntimeError(
                f"{fn}_(): source tensor shape must match self tensor shape, excluding the specified dimension. "
                f"Got self.shape = {list(x.shape)} source.shape = {list(source_shape)}"
            )
    return positions.reshape(-1)


@with_out(same_dtype=True)
def index_add(input, dim, index, source, *, alpha=1):  # noqa: A002
    """``out = input.clone(); out.select(dim, index[i]) += alpha * source.select(dim, i)`` (repeats add up)."""
    source = _src_tensor(input, source, "index_add")
    positions = _index_positions(input, dim, index, source.shape, "index_add")
    vals = source if alpha == 1 else source * alpha
    return input + scatter_map(reshape(vals, -1), input.shape, positions)


@with_out(same_dtype=True)
def index_reduce(input, dim, index, source, reduce, *, include_self=True):  # noqa: A002
    """``out.select(dim, index[i])`` reduced with ``source.select(dim, i)`` by ``reduce`` in prod, mean, amax,
    amin (``include_self=False``: the indexed slices of ``input`` are left out of the reduction).

    A ``scatter_reduce`` over the flat positions, so its gradients are torch's: amax/amin split the gradient
    evenly between tied values (``input``'s included), prod's is exact at zeros, integer mean rounds down.
    Raises: RuntimeError for an unknown ``reduce``, a dtype mismatch or a ``source`` of the wrong shape;
    IndexError for an index out of range or not a vector.
    Example: ``ad.ones(2).index_reduce(0, ad.tensor([0, 0]), ad.tensor([2.0, 3.0]), "prod")`` is ``[6, 1]``.
    """
    if reduce not in ("prod", "mean", "amax", "amin"):
        raise RuntimeError(f"index_reduce(): Expected reduce to be one of prod, mean, amax or amin but got {reduce}.")
    if not isinstance(source, Tensor):
        raise TypeError(f"index_reduce(): argument 'source' must be Tensor, not {type(source).__name__}")
    idx = _host_index(index)
    if idx.dtype.kind not in "iu":
        raise RuntimeError(
            f"index_reduce_(): Expected dtype int32/int64 for index but got: {_torch_dtype(idx.dtype).capitalize()}"
        )
    if source.dtype != input.dtype:
        raise RuntimeError(
            f"index_reduce_(): self ({_torch_dtype(input.dtype).capitalize()}) and source "
            f"({_torch_dtype(source.dtype).capitalize()}) must have the same scalar type"
        )
    d = _wrap_dim(dim, input.ndim)
    if idx.ndim > 1:
        raise IndexError(
            f"index_reduce_(): Index is supposed to be a vector, but got dim: {idx.ndim} with type: "
            f"{_torch_dtype(idx.dtype).capitalize()} and size: {list(idx.shape)}"
        )
    xshape, sshape = tuple(input.shape), tuple(source.shape)
    count = sshape[d] if len(sshape) > d else 1
    if idx.size != count:
        raise RuntimeError(
            f"index_reduce_(): Number of indices ({idx.size}) should be equal to source.size(dim): ({count}), "
            f"for dim: {d}"
        )
    if len(sshape) != len(xshape) or any(a != b for k, (a, b) in enumerate(zip(xshape, sshape)) if k != d):
        raise RuntimeError(
            "source tensor shape must match self tensor shape, excluding the specified dimension. Got self.shape = "
            f"{list(input.shape)} source.shape = {list(source.shape)}"
        )
    positions = _index_positions(input, dim, index, source.shape, "index_reduce")
    flat = scatter_reduce(
        reshape(input, -1), 0, _const(positions, _I64, input), reshape(source, -1), reduce, include_self=include_self
    )
    # torch's node saves self, source and its result: a write into one of them before backward raises
    return guard(reshape(flat, input.shape), "IndexReduceBackward0", input, None, None, source)


@with_out(same_dtype=True)
def index_copy(input, dim, index, source):  # noqa: A002
    """``out = input.clone(); out.select(dim, index[i]) = source.select(dim, i)`` (the last write wins)."""
    source = _src_tensor(input, source, "index_copy")
    positions = _index_positions(input, dim, index, source.shape, "index_copy")
    return _overwrite(input, positions, source, np.arange(positions.size, dtype=_I64))


def index_fill(input, dim, index, value):  # noqa: A002
    """``out = input.clone(); out.select(dim, index[i]) = value`` (a number, or a 0-d tensor: differentiable)."""
    value = _fill_value(value, input, "index_fill_")
    positions = _index_positions(input, dim, index, None, "index_fill")
    mask = np.zeros(input._data.size, dtype=bool)
    mask[positions] = True
    return _pick(mask.reshape(input.shape), value, input)


def index_put(input, indices, values, accumulate=False):  # noqa: A002
    """``out = input.clone(); out[indices] = values`` (``+=`` with ``accumulate=True``: repeats add up).

    Args: input (Tensor); indices (tuple of int64 / bool Tensors or None, as in ``input[indices]``);
    values (Tensor of ``input``'s dtype, broadcastable to the indexed shape); accumulate (bool).
    Returns: a new tensor. Raises: IndexError for too many or bad indices, RuntimeError for a dtype or shape
    mismatch. Example: ``ad.zeros(3).index_put((ad.tensor([1, 1]),), ad.tensor(2.), True)`` is ``[0, 4, 0]``.
    """
    if not isinstance(indices, (tuple, list)):
        raise TypeError(f"index_put(): argument 'indices' must be tuple of Tensors, not {type(indices).__name__}")
    if len(indices) > builtins.max(input.ndim, 1):
        raise IndexError(f"too many indices for tensor of dimension {input.ndim} (got {len(indices)})")
    key = []
    for i in indices:
        if i is None:
            key.append(slice(None))
            continue
        a = _host_index(i)
        if a.dtype.kind not in "iub":
            raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
        key.append(a.astype(bool) if a.dtype.kind == "b" else a.astype(_I64))
    if not isinstance(values, Tensor):
        values = _const(values, input.dtype)
    try:
        positions = _ids(input.shape)[tuple(key)]
    except IndexError as e:
        # torch checks the values' shape first: the indexed shape does not depend on the indices' values
        in_range = tuple(np.zeros_like(k) if isinstance(k, np.ndarray) and k.dtype != bool else k for k in key)
        try:
            _check_broadcast(values, _ids(input.shape)[in_range].shape)
        except IndexError:
            pass
        raise IndexError(str(e).replace("axis", "dimension")) from None
    if values.dtype != input.dtype:
        raise RuntimeError(
            f"Index put requires the source and destination dtypes match, got {_tname(input.dtype)} for the "
            f"destination and {_tname(values.dtype)} for the source."
        )
    _check_broadcast(values, positions.shape)
    if values.shape != positions.shape:
        values = expand(values, positions.shape)
    positions = positions.reshape(-1)
    if accumulate:
        return input + scatter_map(reshape(values, -1), input.shape, positions)
    return _overwrite(input, positions, values, np.arange(positions.size, dtype=_I64))


def _check_broadcast(values, shape):
    try:
        np.broadcast_shapes(values.shape, shape)
    except ValueError:
        raise RuntimeError(
            f"shape mismatch: value tensor of shape {list(values.shape)} cannot be broadcast to indexing result "
            f"of shape {list(shape)}"
        ) from None


# ---------------------------------------------------------------------------------------------------------
# masked_fill / masked_scatter


def masked_fill(input, mask, value):  # noqa: A002
    """``value`` where ``mask`` holds, else ``input`` (``mask`` broadcasts; ``value``: number or 0-d tensor).

    Args: input (Tensor); mask (bool Tensor); value (number, or a 0-d Tensor, which gets the gradient of the
    filled positions). Returns: a new tensor of the broadcast shape. Raises: RuntimeError for a non-bool mask
    or a value tensor with dims. Example: ``x.masked_fill(x < 0, 0.0)`` is ``relu(x)``.
    """
    m = _mask_array(mask, "masked_fill_")
    value = _fill_value(value, input, "masked_fill_")
    shape = np.broadcast_shapes(input.shape, m.shape)
    x = input if input.shape == shape else expand(input, shape)
    return _pick(np.broadcast_to(m, shape), value, x)


def masked_scatter(input, mask, source):  # noqa: A002
    """Copy consecutive elements of ``source`` into ``input`` where ``mask`` holds (row-major order)."""
    m = _mask_array(mask, "masked_scatter_")
    source = _src_tensor(input, source, "masked_scatter")
    shape = np.broadcast_shapes(input.shape, m.shape)
    x = input if input.shape == shape else expand(input, shape)
    m = np.broadcast_to(m, shape).reshape(-1)
    count = int(m.sum())
    if count > source.numel():
        raise RuntimeError("masked_scatter: expected source to have at least as many elements as ones in mask")
    if count == 0:
        return _clone(x) if _needs_grad(x) else wrap_array(x._data.copy())
    gmap = np.zeros(m.size, dtype=_I64)
    gmap[m] = np.arange(count, dtype=_I64)
    picked = gather_map(source, shape, gmap)
    return _pick(m.reshape(shape), picked, x)


# ---------------------------------------------------------------------------------------------------------
# put


def put(input, index, source, accumulate=False):  # noqa: A002
    """``input.flatten()[index] = source.flatten()`` in a copy of ``input`` (``+=`` with ``accumulate``: repeats
    add up; without, the last write wins and only it gets a gradient, as ``index_put``)."""
    idx = _host_index(index) if isinstance(index, Tensor) else None
    if idx is None or idx.dtype.kind not in "iu":
        got = _tname(idx.dtype) if idx is not None else type(index).__name__
        raise RuntimeError(f"put_(): Expected a long tensor for index, but got {got}")
    if not isinstance(source, Tensor) or source.dtype != input.dtype:
        got = _tname(source.dtype) if isinstance(source, Tensor) else type(source).__name__
        raise RuntimeError(
            f"put_(): self and source expected to have the same dtype, but got self.dtype = {_tname(input.dtype)} "
            f"and source.dtype = {got}"
        )
    if source.numel() != idx.size:
        raise IndexError(
            "put_(): Expected source and index to have the same number of elements, but got "
            f"source.numel() = {source.numel()}, index.numel() = {idx.size}"
        )
    n = _flat_index_in_range(idx, input)
    flat = index_put(
        reshape(input, -1), (wrap_array(idx.reshape(-1) % builtins.max(n, 1)),), reshape(source, -1), accumulate
    )
    return reshape(flat, input.shape)
