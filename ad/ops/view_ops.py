"""View ops that torch has and that are compositions of a numpy view: narrow, select, diagonal, unbind,
movedim/moveaxis, swapaxes/swapdims, unflatten, mT/mH/H, view_as, expand_as.

Each result is a real view (``ops._view``: a numpy view of the input's storage, recorded as one strided gather
whose layout comes from applying the same numpy view to a probe; see ad/views.py), so in-place writes through
it reach the base, as torch's do. Ops with a torch ``grad_fn`` name of their own (select, diagonal, unbind) are
entries of the op table sharing the ``GATHER_STRIDED`` kernel branch; the others reuse permute, transpose and
view.
"""

import warnings

import numpy as np

from kernels import opcodes as K

from ..tensor import _wrap_dim
from . import (
    Op,
    _gather_strided_vjp,
    _reshape,
    _size,
    _view,
    expand,
    linear_op,
    permute,
    transpose,
    view,
)

SELECT_DIM = Op("select", K.GATHER_STRIDED, "SelectBackward0", _gather_strided_vjp)
DIAGONAL = Op("diagonal", K.GATHER_STRIDED, "DiagonalBackward0", _gather_strided_vjp)
UNBIND = Op("unbind", K.GATHER_STRIDED, "UnbindBackward0", _gather_strided_vjp)
NARROW = Op("narrow", K.GATHER_STRIDED, "SliceBackward0", _gather_strided_vjp, register=False)


def _index(d, k):
    return (slice(None),) * d + (k, Ellipsis)


@linear_op
def select(input, dim, index):
    """``input`` indexed by ``index`` along ``dim`` (that dimension removed): a view."""
    if input.ndim == 0:
        raise IndexError("select() cannot be applied to a 0-dim tensor.")
    d = _wrap_dim(dim, input.ndim)
    size = input.shape[d]
    index = int(index)
    if index < -size or index >= size:
        raise IndexError(
            f"select(): index {index} out of range for tensor of size {list(input.shape)} at dimension {d}"
        )
    key = _index(d, index % size)
    return _view(SELECT_DIM, input, lambda a: a[key])


@linear_op
def narrow(input, dim, start, length):
    """``length`` elements of ``input`` along ``dim`` from ``start``: a view."""
    if input.ndim == 0:
        raise RuntimeError("narrow() cannot be applied to a 0-dim tensor.")
    d = _wrap_dim(dim, input.ndim)
    size = input.shape[d]
    start = int(start)
    length = int(length)
    if start < -size or start > size:
        raise IndexError(f"start out of range (expected to be in range of [{-size}, {size}], but got {start})")
    if start < 0:
        start += size
    if length < 0:
        raise RuntimeError("narrow(): length must be non-negative.")
    if start + length > size:
        raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size ({size}).")
    key = _index(d, slice(start, start + length))
    return _view(NARROW, input, lambda a: a[key])


def _writable_diagonal(a, offset, d1, d2):
    v = np.diagonal(a, offset, d1, d2)
    if a.flags.writeable:
        v.flags.writeable = True  # numpy returns read-only diagonals of writable arrays; torch's are views
    return v


@linear_op
def diagonal(input, offset=0, dim1=0, dim2=1):
    """The diagonal of ``input`` over ``dim1``, ``dim2`` (moved last), ``offset`` above it: a view."""
    nd = input.ndim
    d1 = _wrap_dim(dim1, nd)
    d2 = _wrap_dim(dim2, nd)
    if nd < 2 and nd != 0:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-nd}, {nd - 1}], but got {dim2})")
    if nd == 0:
        raise IndexError("Dimension out of range (expected to be in range of [-1, 0], but got 1)")
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    offset = int(offset)
    return _view(DIAGONAL, input, lambda a: _writable_diagonal(a, offset, d1, d2))


def unbind(input, dim=0):
    """The slices of ``input`` along ``dim``, as a tuple of views (which torch refuses to write into)."""
    if input.ndim == 0:
        raise IndexError("Dimension specified as 0 but tensor has no dimensions")
    d = _wrap_dim(dim, input.ndim)
    return tuple(_unbind_piece(input, _index(d, k), k) for k in range(input.shape[d]))


@linear_op
def _unbind_piece(x, key, k):
    return _view(UNBIND, x, lambda a: a[key], multi=True, name=("Unbind", k))


def _dims(dims, nd, what):
    dims = list(dims) if isinstance(dims, (tuple, list)) else [dims]
    return [_wrap_dim(d, nd) for d in dims]


def movedim(input, source, destination):
    """Move dims ``source`` to positions ``destination`` (the others keep their order): a permuted view."""
    nd = input.ndim
    src = _dims(source, nd, "source")
    dst = _dims(destination, nd, "destination")
    if len(src) != len(dst):
        raise RuntimeError(
            f"movedim: Invalid source or destination dims: source ({src} dims) should contain the same number of "
            f"dims as destination ({dst} dims)"
        )
    if len(set(src)) != len(src):
        raise RuntimeError(f"movedim: repeated dim in `source` ({src})")
    if len(set(dst)) != len(dst):
        raise RuntimeError(f"movedim: repeated dim in `destination` ({dst})")
    order = [None] * nd
    for s, d in zip(src, dst):
        order[d] = s
    rest = iter(k for k in range(nd) if k not in src)
    order = [o if o is not None else next(rest) for o in order]
    return permute(input, order)


moveaxis = movedim


def swapaxes(input, axis0, axis1):
    return transpose(input, axis0, axis1)


def swapdims(input, dim0, dim1):
    return transpose(input, dim0, dim1)


@linear_op
def unflatten(input, dim, sizes):
    """Split dim ``dim`` of ``input`` into ``sizes`` (one may be -1): a view."""
    d = _wrap_dim(dim, input.ndim)
    sizes = tuple(int(s) for s in sizes)
    if not sizes:
        raise RuntimeError("unflatten: sizes must be non-empty")
    if sum(1 for s in sizes if s == -1) > 1:
        raise RuntimeError("only one dimension can be inferred")
    size = input.shape[d] if input.ndim else 1
    known = _size([s for s in sizes if s != -1])
    if -1 in sizes:
        if known == 0 or size % known:
            raise RuntimeError(
                f"unflatten: Provided sizes {list(sizes)} don't multiply up to the size of dim {dim} ({size}) in "
                "the input tensor"
            )
        sizes = tuple(size // known if s == -1 else s for s in sizes)
    elif known != size:
        raise RuntimeError(
            f"unflatten: Provided sizes {list(sizes)} don't multiply up to the size of dim {dim} ({size}) in the "
            "input tensor"
        )
    shape = input.shape[:d] + sizes + input.shape[d + 1 :]
    return _reshape(input, shape, True)


def mT(x):  # noqa: N802 - torch's name
    if x.ndim == 0:
        warnings.warn(
            "Tensor.mT is deprecated on 0-D tensors. This function is the identity in these cases.",
            UserWarning,
            stacklevel=2,
        )
        return transpose(x, 0, 0)
    if x.ndim < 2:
        raise RuntimeError(f"tensor.mT is only supported on matrices or batches of matrices. Got {x.ndim}-D tensor.")
    return transpose(x, -2, -1)


def mH(x):  # noqa: N802 - torch's name
    if x.ndim == 0:
        warnings.warn("Tensor.mH is deprecated on 0-D tensors. Consider using x.conj().", UserWarning, stacklevel=2)
        return transpose(x, 0, 0)
    if x.ndim < 2:
        raise RuntimeError(f"tensor.mH is only supported on matrices or batches of matrices. Got {x.ndim}-D tensor.")
    return transpose(x, -2, -1)  # real tensors: the conjugate is the tensor


def H(x):  # noqa: N802 - torch's name
    if x.ndim == 0:
        warnings.warn("Tensor.H is deprecated on 0-D tensors. Consider using x.conj().", UserWarning, stacklevel=2)
        return transpose(x, 0, 0)
    if x.ndim != 2:
        hint = " For batches of matrices, consider using tensor.mH" if x.ndim > 2 else ""
        raise RuntimeError(f"tensor.H is only supported on matrices (2-D tensors). Got {x.ndim}-D tensor.{hint}")
    return transpose(x, 0, 1)


def view_as(x, other):
    return view(x, tuple(other.shape))


def expand_as(x, other):
    return expand(x, tuple(other.shape))
