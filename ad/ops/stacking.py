"""Broadcasting and stacking: broadcast_tensors, meshgrid, atleast_1d/2d/3d, hstack, vstack (row_stack), dstack,
column_stack.

All are composites of ``reshape``, ``expand`` and ``cat`` (``ad/ops/__init__.py``): no rules of their own, and
their gradients (sums over broadcast dims, slices of the concatenation) come from those rows.
"""

import warnings

from ..tensor import Tensor
from . import cat, expand, reshape
from .out import with_out
from .shape_index import broadcast_shapes


def broadcast_tensors(*tensors):
    """The tensors expanded to their common shape (differentiable: the adjoint sums)."""
    if len(tensors) == 1 and isinstance(tensors[0], (tuple, list)):
        tensors = tuple(tensors[0])
    shape = broadcast_shapes(*(t_.shape for t_ in tensors))
    return tuple(t_ if t_.shape == shape else expand(t_, shape) for t_ in tensors)


def meshgrid(*tensors, indexing=None):
    """Coordinate grids from 1-D tensors; ``indexing="ij"`` (the default) or ``"xy"`` (first two swapped)."""
    if len(tensors) == 1 and isinstance(tensors[0], (tuple, list)):
        tensors = tuple(tensors[0])
    if indexing is None:
        warnings.warn(
            "torch.meshgrid: in an upcoming release, it will be required to pass the indexing argument.",
            UserWarning,
            stacklevel=2,
        )
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise RuntimeError(f'torch.meshgrid: indexing must be one of "xy" or "ij", but received: {indexing}')
    if len(tensors) == 0:
        raise RuntimeError("torch.meshgrid expects a non-empty TensorList")
    for t_ in tensors:
        if t_.ndim > 1:
            raise RuntimeError(f"torch.meshgrid: Expected 0D or 1D tensor in the tensor list but got: {t_.ndim}D")
    if any(t_.dtype != tensors[0].dtype for t_ in tensors):
        raise RuntimeError("torch.meshgrid: expects all tensors to have the same dtype")
    vecs = [reshape(t_, -1) for t_ in tensors]
    swap = indexing == "xy" and len(vecs) >= 2
    order = [1, 0, *range(2, len(vecs))] if swap else list(range(len(vecs)))
    shape = tuple(vecs[k].shape[0] for k in order)
    grids = []
    for k, v in enumerate(vecs):
        pos = order.index(k)
        view = [1] * len(vecs)
        view[pos] = v.shape[0]
        grids.append(expand(reshape(v, view), shape))
    return tuple(grids)


def atleast_1d(*tensors):
    """Each tensor with at least 1 dim (0-d becomes shape (1,))."""
    return _atleast(tensors, lambda t_: reshape(t_, 1) if t_.ndim == 0 else t_)


def atleast_2d(*tensors):
    """Each tensor with at least 2 dims (1-D of n becomes (1, n))."""
    return _atleast(tensors, lambda t_: reshape(t_, (1,) * (2 - t_.ndim) + t_.shape) if t_.ndim < 2 else t_)


def _to_3d(t_):
    if t_.ndim == 0:
        return reshape(t_, 1, 1, 1)
    if t_.ndim == 1:
        return reshape(t_, 1, t_.shape[0], 1)
    if t_.ndim == 2:
        return reshape(t_, *t_.shape, 1)
    return t_


def atleast_3d(*tensors):
    """Each tensor with at least 3 dims (1-D of n becomes (1, n, 1), 2-D (m, n) becomes (m, n, 1))."""
    return _atleast(tensors, _to_3d)


def _atleast(tensors, fn):
    if len(tensors) == 1 and isinstance(tensors[0], (tuple, list)):
        return tuple(fn(t_) for t_ in tensors[0])
    if len(tensors) == 1:
        return fn(tensors[0])
    return tuple(fn(t_) for t_ in tensors)


def _tensor_seq(tensors, fn):
    if isinstance(tensors, Tensor) or not isinstance(tensors, (tuple, list)):
        raise TypeError(f"{fn}(): argument 'tensors' must be tuple of Tensors, not {type(tensors).__name__}")
    if len(tensors) == 0:
        raise RuntimeError(f"{fn} expects a non-empty TensorList")
    return list(tensors)


@with_out
def hstack(tensors):
    """Concatenate along dim 1 (along dim 0 when every tensor is 1-D); 0-d tensors count as 1-D."""
    ts = [atleast_1d(t_) for t_ in _tensor_seq(tensors, "hstack")]
    return cat(ts, 0 if ts[0].ndim == 1 else 1)


@with_out
def vstack(tensors):
    """Concatenate along dim 0 after making each tensor at least 2-D."""
    return cat([atleast_2d(t_) for t_ in _tensor_seq(tensors, "vstack")], 0)


row_stack = vstack


@with_out
def dstack(tensors):
    """Concatenate along dim 2 after making each tensor at least 3-D."""
    return cat([atleast_3d(t_) for t_ in _tensor_seq(tensors, "dstack")], 2)


@with_out
def column_stack(tensors):
    """Stack 0-d and 1-D tensors as columns (shape (n, 1)) and concatenate along dim 1."""
    ts = _tensor_seq(tensors, "column_stack")
    return cat([reshape(t_, t_.numel(), 1) if t_.ndim <= 1 else t_ for t_ in ts], 1)


__all__ = (
    "broadcast_tensors meshgrid atleast_1d atleast_2d atleast_3d hstack vstack row_stack dstack column_stack"
).split()
