"""torch's shape and indexing functions that are compositions of existing ops: splits into views
(``tensor_split``, ``hsplit``, ``vsplit``, ``dsplit``, ``split_with_sizes``), ``Tensor.unfold`` (a strided view of
sliding windows), ``ravel``, ``diagflat``, ``block_diag``, ``cartesian_prod``, ``combinations``, the scatters into
a copy (``select_scatter``, ``slice_scatter``, ``diagonal_scatter``), ``sum_to_size``, ``diff``,
``fill_diagonal_``, index helpers (``tril_indices``, ``triu_indices``, ``unravel_index``).

Being compositions, they need no derivative rules of their own: gradients, forward mode and higher orders come
from the ops they are built of (a scatter into a copy is a ``clone`` then a recorded write through a view).
"""

import itertools
import numbers

import numpy as np

from . import creation, ops
from .ops import linear_op, shape_index, stacking, view_ops
from .ops.out import write_result
from .ops.structural import GATHER_STRIDED
from .tensor import Tensor, _wrap_dim, wrap_array

__all__ = [
    "block_diag",
    "cartesian_prod",
    "combinations",
    "diagflat",
    "diagonal_scatter",
    "diff",
    "dsplit",
    "hsplit",
    "ravel",
    "select_scatter",
    "slice_scatter",
    "split_with_sizes",
    "tensor_split",
    "tril_indices",
    "triu_indices",
    "unravel_index",
    "vsplit",
]


def _split_method(fn):
    """``Tensor.hsplit(sections)``, ``Tensor.hsplit(indices)`` and torch's ``Tensor.hsplit(*indices)``."""

    def method(self, *indices, sections=None):
        if sections is None and len(indices) == 1:
            return fn(self, indices[0])
        return fn(self, sections if sections is not None else list(indices))

    method.__name__ = fn.__name__
    method.__doc__ = fn.__doc__
    return method


def _check_tensor(x, name):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not {type(x).__name__}")


def ravel(input):
    """The elements as a 1-D tensor (a view when the layout allows, as ``reshape``)."""
    _check_tensor(input, "ravel")
    return ops.reshape(input, (-1,))


def tensor_split(input, tensor_indices_or_sections=None, dim=0, *, sections=None, indices=None):
    """Views of ``input`` along ``dim``: ``n`` near-equal pieces (the first ``size % n`` one longer) for an int,
    or pieces cut before each of the indices for a list (or a 1-D integer tensor)."""
    _check_tensor(input, "tensor_split")
    if input.ndim == 0:
        raise RuntimeError("tensor_split expected at least a 1-dimensional tensor, but got a tensor with 0 dims")
    d = _wrap_dim(dim, input.ndim)
    size = input.shape[d]
    cuts = next((c for c in (tensor_indices_or_sections, sections, indices) if c is not None), None)
    if cuts is None:
        raise TypeError("tensor_split() missing required argument 'indices_or_sections'")
    if isinstance(cuts, Tensor):
        data = cuts.detach().cpu()._data
        if data.dtype.kind not in "iu" or data.ndim > 1:
            raise RuntimeError(
                "tensor_split expected tensor_indices_or_sections to be a zero-dimensional or one-dimensional tensor "
                f"with integral type, but got a tensor of dtype {data.dtype} with {data.ndim} dims"
            )
        cuts = int(data) if data.ndim == 0 else [int(v) for v in data]
    if isinstance(cuts, numbers.Integral):
        n = int(cuts)
        if n <= 0:
            raise RuntimeError(f"number of sections must be larger than 0, got {n}")
        base, extra = divmod(size, n)
        bounds = [0]
        for k in range(n):
            bounds.append(bounds[-1] + base + (1 if k < extra else 0))
    else:
        bounds = [0] + [min(max(int(i) + (size if int(i) < 0 else 0), 0), size) for i in cuts] + [size]
    return tuple(
        view_ops.narrow(input, d, lo, max(hi - lo, 0)) if hi > lo else view_ops.narrow(input, d, min(lo, size), 0)
        for lo, hi in zip(bounds[:-1], bounds[1:])
    )


def _directional_split(name, dim, min_dims):
    def fn(input, sections=None, *, indices=None):
        _check_tensor(input, name)
        indices_or_sections = sections if sections is not None else indices
        if input.ndim < min_dims:
            raise RuntimeError(
                f"torch.{name} requires a tensor with at least {min_dims} dimension, but got a tensor with "
                f"{input.ndim} dimensions!"
            )
        d = dim if input.ndim > 1 or name != "hsplit" else 0
        if isinstance(indices_or_sections, numbers.Integral):
            n = int(indices_or_sections)
            if n == 0 or input.shape[d] % n:
                raise RuntimeError(
                    f"torch.{name} attempted to split along dimension {d}, but the size of the dimension "
                    f"{input.shape[d]} is not divisible by the split_size {n}!"
                )
        return tensor_split(input, indices_or_sections, d)

    fn.__name__ = name
    fn.__doc__ = f"``tensor_split`` along dim {dim} (an int must divide the size evenly)."
    return fn


hsplit = _directional_split("hsplit", 1, 1)
vsplit = _directional_split("vsplit", 0, 2)
dsplit = _directional_split("dsplit", 2, 3)


def split_with_sizes(input, split_sizes, dim=0):
    """``split`` into pieces of the given sizes, which must add up to the size of ``dim``."""
    _check_tensor(input, "split_with_sizes")
    d = _wrap_dim(dim, input.ndim)
    sizes = [int(s) for s in split_sizes]
    if sum(sizes) != input.shape[d]:
        raise RuntimeError(
            f"split_with_sizes expects split_sizes to sum exactly to {input.shape[d]} (input tensor's size at "
            f"dimension {dim}), but got split_sizes={sizes}"
        )
    return ops.split(input, sizes, d)


def _windows(a, d, size, step):
    w = np.lib.stride_tricks.sliding_window_view(a, size, axis=d, writeable=a.flags.writeable)
    key = (slice(None),) * d + (slice(None, None, step),)
    return w[key]


@linear_op
def unfold(self, dimension, size, step):
    """Every slice of ``size`` elements along ``dimension``, ``step`` apart, as a new last dimension: a view."""
    nd = max(self.ndim, 1)
    d = _wrap_dim(dimension, nd)
    length = self.shape[d] if self.ndim else 1
    if size > length:
        raise RuntimeError(f"maximum size for tensor at dimension {d} is {length} but size is {size}")
    if step <= 0:
        raise RuntimeError(f"step is {step} but must be > 0")
    if self.ndim == 0:
        return ops.reshape(self, (1,))
    return ops._view(GATHER_STRIDED, self, lambda a: _windows(a, d, int(size), int(step)), name=("Unfold", 0))


def diagflat(input, offset=0):
    """A square matrix with the flattened ``input`` on its ``offset``-th diagonal."""
    _check_tensor(input, "diagflat")
    return shape_index.diag(ops.reshape(input, (-1,)), offset)


def block_diag(*tensors):
    """The tensors (0-, 1- or 2-D) as blocks along the diagonal of one matrix, zeros elsewhere."""
    mats = []
    for k, t in enumerate(tensors):
        _check_tensor(t, "block_diag")
        if t.ndim > 2:
            raise RuntimeError(
                f"torch.block_diag: Input tensors must have 2 or fewer dimensions. Input {k} has {t.ndim} dimensions"
            )
        mats.append(ops.reshape(t, (1, 1)) if t.ndim == 0 else ops.reshape(t, (1, -1)) if t.ndim == 1 else t)
    if not mats:
        return wrap_array(np.zeros((1, 0)))
    dtype = np.result_type(*(m.dtype for m in mats))
    cols = sum(m.shape[1] for m in mats)
    rows, left = [], 0
    for m in mats:
        r, c = m.shape
        zeros_left, zeros_right = np.zeros((r, left), dtype), np.zeros((r, cols - left - c), dtype)
        zl, zr = wrap_array(zeros_left).to(m.device), wrap_array(zeros_right).to(m.device)
        rows.append(ops.cat([zl, m.to(dtype), zr], 1))
        left += c
    return ops.cat(rows, 0)


def cartesian_prod(*tensors):
    """Every combination of one element of each 1-D tensor, as rows (a single tensor is returned as is)."""
    for t in tensors:
        _check_tensor(t, "cartesian_prod")
        if t.ndim != 1:
            raise RuntimeError(f"Expect a 1D vector, but got shape {list(t.shape)}")
    if len(tensors) == 1:
        return tensors[0]
    grids = stacking.meshgrid(*tensors, indexing="ij")
    return ops.stack([ops.reshape(g, (-1,)) for g in grids], 1)


def combinations(input, r=2, with_replacement=False):
    """The length-``r`` combinations of the elements of a 1-D tensor, as rows (``itertools.combinations``)."""
    _check_tensor(input, "combinations")
    if input.ndim != 1:
        raise RuntimeError(f"Expect a 1D vector, but got shape {list(input.shape)}")
    if r < 0:
        raise RuntimeError(f"Expect a non-negative number, but got {r}")
    if r == 0:
        return wrap_array(np.zeros((0,), input.dtype))
    pick = itertools.combinations_with_replacement if with_replacement else itertools.combinations
    idx = np.array(list(pick(range(input.shape[0]), r)), np.int64).reshape(-1, r)
    if idx.size == 0:
        return wrap_array(np.zeros((0, r), input.dtype))
    return ops.reshape(ops.index_select(input, 0, wrap_array(idx.reshape(-1))), idx.shape)


def _scatter_into_copy(input, src, view_of):
    out = input.clone()
    view_of(out).copy_(src)
    return out


def select_scatter(input, src, dim, index):
    """A copy of ``input`` with ``src`` written at ``input.select(dim, index)`` (differentiable in both)."""
    _check_tensor(input, "select_scatter")
    target = view_ops.select(input, dim, index)
    if tuple(src.shape) != tuple(target.shape):
        raise RuntimeError(f"expected src to have a size equal to the slice of self. src size = {list(src.shape)}, "
                           f"slice size = {list(target.shape)}")
    return _scatter_into_copy(input, src, lambda t: view_ops.select(t, dim, index))


def slice_scatter(input, src, dim=0, start=None, end=None, step=1, *, out=None):
    """A copy of ``input`` with ``src`` written at ``input[start:end:step]`` along ``dim``."""
    _check_tensor(input, "slice_scatter")
    d = _wrap_dim(dim, input.ndim)
    key = (slice(None),) * d + (slice(start, end, step),)
    target_shape = np.empty(input.shape, np.int8)[key].shape
    if tuple(src.shape) != target_shape:
        raise RuntimeError(f"expected src to have a size equal to the slice of self. src size = {list(src.shape)}, "
                           f"slice size = {list(target_shape)}")
    return write_result("slice_scatter", _scatter_into_copy(input, src, lambda t: t[key]), out, same_dtype=True)


def diagonal_scatter(input, src, offset=0, dim1=0, dim2=1):
    """A copy of ``input`` with ``src`` written on its diagonal (``input.diagonal(offset, dim1, dim2)``)."""
    _check_tensor(input, "diagonal_scatter")
    target = view_ops.diagonal(input, offset, dim1, dim2)
    if tuple(src.shape) != tuple(target.shape):
        raise RuntimeError(f"expected src to have a size equal to the slice of self. src size = {list(src.shape)}, "
                           f"slice size = {list(target.shape)}")
    return _scatter_into_copy(input, src, lambda t: view_ops.diagonal(t, offset, dim1, dim2))


def sum_to_size(self, *size):
    """Sum over the dimensions that ``size`` broadcasts (``self`` must be expandable from ``size``)."""
    size = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else tuple(size)
    shape = tuple(self.shape)
    lead = len(shape) - len(size)
    if lead < 0 or any(s != 1 and s != n for s, n in zip(size, shape[lead:])):
        raise RuntimeError(f"size {{{list(size)}}} is not expandable to size {{{list(shape)}}}.")
    dims = list(range(lead)) + [lead + k for k, s in enumerate(size) if s == 1 and shape[lead + k] != 1]
    out = ops.sum(self, dims, keepdim=True) if dims else self
    return ops.reshape(out, size) if tuple(out.shape) != size else out


def diff(input, n=1, dim=-1, prepend=None, append=None, *, out=None):
    """The ``n``-th forward difference along ``dim`` (``prepend`` / ``append`` joined first)."""
    _check_tensor(input, "diff")
    if input.ndim == 0:
        raise RuntimeError("diff expects input to be at least one-dimensional")
    if n < 0:
        raise RuntimeError(f"order must be non-negative but got {n}")
    d = _wrap_dim(dim, input.ndim)
    parts = [t for t in (prepend, input, append) if t is not None]
    x = ops.cat(parts, d) if len(parts) > 1 else input
    for _ in range(n):
        m = x.shape[d]
        if m == 0:
            break
        x = view_ops.narrow(x, d, 1, m - 1) - view_ops.narrow(x, d, 0, m - 1) if x.dtype != np.bool_ else wrap_array(
            np.logical_xor(x._data.take(range(1, m), d), x._data.take(range(m - 1), d)))
    return write_result("diff", x, out)


def fill_diagonal_(self, fill_value, wrap=False):
    """Write ``fill_value`` on the main diagonal (all dims equal, or a 2-D matrix; ``wrap``: a tall matrix's
    diagonal restarts every ``columns + 1`` rows), in place."""
    if self.ndim < 2:
        raise RuntimeError("dimensions must larger than 1")
    if self.ndim > 2 and len(set(self.shape)) != 1:
        raise RuntimeError("all dimensions of input must be of equal length")
    mask = np.zeros(self.shape, np.bool_)
    if self.ndim == 2:
        rows, cols = self.shape
        flat = mask.reshape(-1)
        limit = rows * cols if wrap else min(rows, cols) * cols
        flat[: limit : cols + 1] = True
    else:
        idx = np.arange(self.shape[0])
        mask[(idx,) * self.ndim] = True
    return self.masked_fill_(wrap_array(mask).to(self.device), fill_value)


def _index_pairs(name, row, col, offset, dtype, device, np_fn):
    if row < 0 or col < 0:
        raise RuntimeError(f"{name}: row and col must be non-negative, got {row} and {col}")
    r, c = np_fn(row, offset, col)
    out = wrap_array(np.stack([r, c]).astype(np.dtype(dtype) if dtype is not None else np.int64).reshape(2, -1))
    device = creation.or_default_device(device)
    return out.to(device) if device is not None else out


def tril_indices(row, col, offset=0, *, dtype=None, device=None, layout=None, requires_grad=False):
    """The (row, column) indices of the lower triangle of a ``row`` x ``col`` matrix, as a 2 x N tensor."""
    return _index_pairs("tril_indices", row, col, offset, dtype, device, np.tril_indices)


def triu_indices(row, col, offset=0, *, dtype=None, device=None, layout=None, requires_grad=False):
    """The (row, column) indices of the upper triangle of a ``row`` x ``col`` matrix, as a 2 x N tensor."""
    return _index_pairs("triu_indices", row, col, offset, dtype, device, np.triu_indices)


def unravel_index(indices, shape):
    """The coordinates of flat ``indices`` in an array of ``shape``, as a tuple of int64 tensors."""
    data = indices.detach().cpu()._data if isinstance(indices, Tensor) else np.asarray(indices)
    if data.dtype.kind not in "iu":
        raise TypeError("expected 'indices' to be integer dtype, but got " + str(data.dtype))
    shape = (int(shape),) if isinstance(shape, numbers.Integral) else tuple(int(s) for s in shape)
    total = int(np.prod(shape))
    if data.size and (data.min() < -total or data.max() >= total):
        raise RuntimeError("index out of bounds in unravel_index")
    coords = np.unravel_index(np.where(data < 0, data + total, data), shape)
    return tuple(wrap_array(np.asarray(c, np.int64)) for c in coords)


def bind():
    T = Tensor
    for fn in (ravel, tensor_split, split_with_sizes, diagflat, select_scatter, slice_scatter, diagonal_scatter, diff):
        setattr(T, fn.__name__, fn)
    for fn in (hsplit, vsplit, dsplit):
        setattr(T, fn.__name__, _split_method(fn))
    T.unfold = unfold
    T.sum_to_size = sum_to_size
    T.fill_diagonal_ = fill_diagonal_
