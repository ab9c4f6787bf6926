"""Sorting and searching: sort, argsort, msort, topk, kthvalue, unique, unique_consecutive, nonzero, argwhere,
searchsorted, bucketize.

The permutation comes from numpy's stable argsort (descending: a stable sort of the reversed data, reversed
back, so equal elements keep their order and NaN counts as the largest value, as torch). Values are a gather
with that permutation (``gather_map`` with the ``SORT`` / ``TOPK`` / ``KTHVALUE`` entries: torch's grad_fn
names over the GATHER_MAP opcode), so their gradient is a scatter and needs no rule of its own. Everything
else here returns integer tensors or constants (torch's ``unique`` has no backward either).
"""

import numpy as np

from kernels import opcodes as K

from .. import cuda as _cuda
from ..observe import value_read
from ..tensor import Tensor, _wrap_dim, wrap_array
from . import Op, _gather_map_vjp, gather_map
from .index_maps import _I64, _data, _ids, _index_array, _tname
from .out import with_out, write_result

SORT = Op("sort", K.GATHER_MAP, "SortBackward0", _gather_map_vjp)
TOPK = Op("topk", K.GATHER_MAP, "TopkBackward0", _gather_map_vjp)
KTHVALUE = Op("kthvalue", K.GATHER_MAP, "KthvalueBackward0", _gather_map_vjp)

# ---------------------------------------------------------------------------------------------------------
# sort / argsort / topk / kthvalue / msort: a stable permutation from numpy, values by a gather


class _ValuesIndices(tuple):
    """``(values, indices)``, as torch's ``torch.return_types.sort`` / ``topk`` / ``kthvalue``."""

    __slots__ = ()

    @property
    def values(self):
        return self[0]

    @property
    def indices(self):
        return self[1]


def _argsort(a, axis, descending):
    """Stable ascending argsort, or stable descending (equal elements keep their order; NaN counts as largest)."""
    if not descending:
        return np.argsort(a, axis=axis, kind="stable")
    n = a.shape[axis]
    rev = np.argsort(np.flip(a, axis), axis=axis, kind="stable")
    return n - 1 - np.flip(rev, axis)


def _take_values(input, order, axis, op):
    ids = _ids(input.shape) if input.ndim else _ids((1,))
    index_map = np.take_along_axis(ids, order, axis=axis)
    out_shape = index_map.shape if input.ndim else ()
    return gather_map(input, out_shape, index_map.reshape(out_shape), op)


def _sort_args(input, dim):
    """The wrapped ``dim`` and the data as an array of at least 1 dim (a 0-d tensor sorts as one element)."""
    d = _wrap_dim(dim, input.ndim)
    a = _cuda.host_copy(input._data if input.ndim else input._data.reshape(1))  # (index map: on the host)
    return d, a


def sort(input, *args, **kwargs):  # noqa: A002
    """``(values, indices)`` sorted along ``dim``; always stable here (``stable`` is accepted for torch).

    torch's two forms: ``sort(input, dim=-1, descending=False, *, out=None)`` and, when ``stable`` is given,
    ``sort(input, *, stable, dim=-1, descending=False, out=None)`` (dim and descending by keyword only).

    Args: input (Tensor); dim (int); descending (bool): equal elements keep their order either way, and NaN
    sorts as the largest value; stable (bool or None). Returns: ``(values, indices)`` (``.values`` /
    ``.indices``); the gradient of ``values`` goes back through ``indices``. ``out=(values, indices)`` writes into
    given tensors. Raises: TypeError for arguments that fit neither form (torch's message), IndexError for a dim
    out of range. Example: ``ad.sort(ad.tensor([3., 1., 2.])).indices`` is ``[1, 2, 0]``.
    """
    dim, descending, out = _sort_form("sort", False, input, args, kwargs)
    return _sort(input, dim, descending, out)


def _sort(input, dim, descending, out=None):  # noqa: A002
    d, a = _sort_args(input, dim)
    order = _argsort(a, d, descending)
    values = _take_values(input, order, d, SORT)
    result = _ValuesIndices((values, _cuda.index_tensor(order.reshape(values.shape), input)))
    return write_result("sort", result, out, same_dtype=True)


def argsort(input, *args, **kwargs):  # noqa: A002
    """The indices that sort ``input`` along ``dim`` (stable): torch's forms ``argsort(input, dim=-1,
    descending=False)`` and ``argsort(input, *, stable, dim=-1, descending=False)``."""
    dim, descending, _ = _sort_form("argsort", False, input, args, kwargs)
    return _argsort_tensor(input, dim, descending)


def _argsort_tensor(input, dim, descending):  # noqa: A002
    d, a = _sort_args(input, dim)
    return _cuda.index_tensor(_argsort(a, d, descending).reshape(input.shape), input)


def _sort_method(self, *args, **kwargs):
    dim, descending, out = _sort_form("sort", True, self, args, kwargs)
    return _sort(self, dim, descending, out)


def _argsort_method(self, *args, **kwargs):
    dim, descending, _ = _sort_form("argsort", True, self, args, kwargs)
    return _argsort_tensor(self, dim, descending)


sort.method = _sort_method
argsort.method = _argsort_method

# torch's forms of sort / argsort, as its argument parser lists them (function, method)
_SORT_FORMS = {
    "sort": (
        "(Tensor input, *, bool stable, int dim = -1, bool descending = False, tuple of Tensors out = None)",
        "(Tensor input, int dim = -1, bool descending = False, *, tuple of Tensors out = None)",
    ),
    "argsort": (
        "(Tensor input, *, bool stable, int dim = -1, bool descending = False, Tensor out = None)",
        "(Tensor input, int dim = -1, bool descending = False)",
    ),
}


def _type_name(v):
    if isinstance(v, Tensor):
        return "Tensor"
    if isinstance(v, (bool, np.bool_)):
        return "bool"
    if isinstance(v, (int, np.integer)):
        return "int"
    return type(v).__name__


def _sort_form(name, method, input, args, kwargs):
    """``(dim, descending, out)`` of a call of sort / argsort (``method``: ``Tensor.sort``), checked against
    torch's two forms: positional ``dim`` and ``descending`` only without ``stable``; ``dim`` an int, ``descending``
    a bool, ``stable`` a bool (sort: or None); anything else raises torch's TypeError."""
    if not isinstance(input, Tensor):
        args, input = (input, *args), None
    stable_form = "stable" in kwargs
    keywords = {"dim", "descending", "stable", "out"} if name == "sort" else {"dim", "descending", "stable"}
    if (name == "argsort" or method) and (len(args) > 2 or (stable_form and args)):
        # (torch's parser counts the positional arguments of the form that has ``stable``)
        lead = 0 if method else 1
        raise TypeError(
            f"{name}() takes from {lead + 1} to {lead} positional arguments but {len(args) + lead} were given"
        )
    dim = kwargs.get("dim", args[0] if args else -1)
    descending = kwargs.get("descending", args[1] if len(args) > 1 else False)
    stable = kwargs.get("stable", False)
    fits = (
        input is not None
        and len(args) <= 2
        and not (stable_form and args)
        and set(kwargs) <= keywords
        and not (len(args) > 0 and "dim" in kwargs)
        and not (len(args) > 1 and "descending" in kwargs)
        and isinstance(dim, (int, np.integer))
        and not isinstance(dim, (bool, np.bool_))
        and isinstance(descending, (bool, np.bool_))
        and (isinstance(stable, (bool, np.bool_)) or (stable is None and name == "sort"))
    )
    if not fits:
        got = [_type_name(v) for v in ((() if method or input is None else (input,)) + tuple(args))]
        got += [f"{k}={_type_name(v)}" for k, v in reversed(kwargs.items())]  # (torch lists them last first)
        listed = ", ".join(got) + (", " if method and kwargs and not args else "")
        forms = _SORT_FORMS[name]
        if method:
            forms = [f.replace("Tensor input, ", "").replace(", Tensor out = None", "") for f in forms]
            forms = [
                f.replace(", *, tuple of Tensors out = None", "").replace(", tuple of Tensors out = None", "")
                for f in forms
            ]
        raise TypeError(
            f"{name}() received an invalid combination of arguments - got ({listed}), but expected one of:\n"
            + "".join(f" * {f}\n" for f in forms)
        )
    return int(dim), bool(descending), kwargs.get("out")


@with_out(same_dtype=True)
def msort(input):  # noqa: A002
    """``sort(input, dim=0).values``."""
    return _sort(input, 0, False).values


def _msort_method(self, *args, **kwargs):
    if args or kwargs:
        raise TypeError(f"TensorBase.msort() takes no arguments ({len(args) + len(kwargs)} given)")
    return _sort(self, 0, False).values


msort.method = _msort_method


def topk(input, k, dim=-1, largest=True, sorted=True, *, out=None):  # noqa: A002
    """The ``k`` largest (``largest=False``: smallest) elements along ``dim``, as ``(values, indices)``.

    Ties keep their input order; NaN counts as larger than every number (as torch).

    Args: input (Tensor); k (int, 0 to the size of ``dim``); dim (int); largest (bool); sorted (bool: the
    result is always sorted here). Returns: ``(values, indices)``. Raises: RuntimeError for k out of range.
    Example: ``ad.topk(ad.tensor([1., 5., 3.]), 2).values`` is ``[5, 3]``.
    """
    d, a = _sort_args(input, dim)
    size = a.shape[d]
    if k < 0 or k > size:
        raise RuntimeError("selected index k out of range")
    order = np.take(_argsort(a, d, largest), np.arange(k), axis=d)
    values = _take_values(input, order, d, TOPK)
    result = _ValuesIndices((values, _cuda.index_tensor(order.reshape(values.shape), input)))
    return write_result("topk", result, out, same_dtype=True)


def kthvalue(input, k, dim=-1, keepdim=False, *, out=None):  # noqa: A002
    """The ``k``-th smallest element along ``dim`` (1-based), as ``(values, indices)``."""
    d, a = _sort_args(input, dim)
    size = a.shape[d]
    if k < 1 or k > size:
        raise RuntimeError(f"kthvalue(): selected number k out of range for dimension {d}")
    order = np.take(_argsort(a, d, False), [k - 1], axis=d)
    if input.ndim == 0:
        values = _take_values(input, order, d, KTHVALUE)
        indices = wrap_array(np.asarray(0, _I64))
    else:
        if not keepdim:
            order = np.squeeze(order, d)
            ids = np.take_along_axis(_ids(input.shape), np.expand_dims(order, d), axis=d)
            values = gather_map(input, order.shape, np.squeeze(ids, d), KTHVALUE)
        else:
            values = _take_values(input, order, d, KTHVALUE)
        indices = _cuda.index_tensor(order, input)
    result = _ValuesIndices((values, indices))
    return write_result("kthvalue", result, out, same_dtype=True)


# ---------------------------------------------------------------------------------------------------------
# unique / unique_consecutive / nonzero / argwhere / searchsorted / bucketize: integer results or constants


def _unique_result(values, inverse, counts, return_inverse, return_counts, like):
    """The results as tensors on ``like``'s device (computed on a host copy of a CUDA tensor's values, as
    torch's CUDA unique synchronizes for its data-dependent size)."""
    out = [_cuda.index_tensor(values, like)]
    if return_inverse:
        out.append(_cuda.index_tensor(inverse.astype(_I64), like))
    if return_counts:
        out.append(_cuda.index_tensor(counts.astype(_I64), like))
    return out[0] if len(out) == 1 else tuple(out)


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):  # noqa: A002
    """The distinct elements (sorted), with the inverse map and counts on request; ``dim``: distinct slices.

    The result is a constant (torch's backward of unique is not implemented either).

    Args: input (Tensor); sorted (bool: the result is always sorted, as torch's CPU unique); return_inverse
    and return_counts (bool); dim (int or None). Returns: the unique values, then the inverse indices and the
    counts if asked for (a tuple). Example: ``ad.unique(ad.tensor([3, 1, 3]), return_counts=True)`` is
    ``([1, 3], [1, 2])``.
    """
    value_read("unique() (a data-dependent shape)")
    a = _cuda.host_copy(input._data)
    if dim is None:
        values, inverse, counts = np.unique(a, return_inverse=True, return_counts=True)
        inverse = inverse.reshape(a.shape)
    else:
        d = _wrap_dim(dim, input.ndim)
        values, inverse, counts = np.unique(a, return_inverse=True, return_counts=True, axis=d)
        inverse = inverse.reshape(-1)
    return _unique_result(values, inverse, counts, return_inverse, return_counts, input)


def unique_consecutive(input, return_inverse=False, return_counts=False, dim=None):  # noqa: A002
    """Collapse runs of equal consecutive elements (or slices along ``dim``) to one."""
    value_read("unique_consecutive() (a data-dependent shape)")
    a = _cuda.host_copy(input._data)
    if dim is None:
        flat = a.reshape(-1)
        starts = np.ones(flat.size, dtype=bool)
        starts[1:] = flat[1:] != flat[:-1]
        values = flat[starts]
        inverse = (np.cumsum(starts) - 1).reshape(a.shape)
    else:
        d = _wrap_dim(dim, input.ndim)
        moved = np.moveaxis(a, d, 0).reshape(a.shape[d], -1)
        starts = np.ones(moved.shape[0], dtype=bool)
        starts[1:] = (moved[1:] != moved[:-1]).any(axis=1)
        values = np.compress(starts, a, axis=d)
        inverse = np.cumsum(starts) - 1
    counts = np.diff(np.append(np.flatnonzero(starts), starts.size))
    return _unique_result(values, inverse, counts, return_inverse, return_counts, input)


def nonzero(input, *, out=None, as_tuple=False):  # noqa: A002
    """Indices of the non-zero elements: an (n, ndim) int64 tensor, or one 1-D tensor per dim (``as_tuple``)."""
    value_read("nonzero() (a data-dependent shape)")
    a = _cuda.host_copy(input._data)  # (CUDA: indices from a host copy, as torch's nonzero synchronizes)
    if as_tuple:
        return tuple(_cuda.index_tensor(i.astype(_I64), input) for i in np.nonzero(np.atleast_1d(a)))
    result = _cuda.index_tensor(np.argwhere(a).astype(_I64), input)
    if out is not None and out.dtype != np.int64:
        raise RuntimeError(
            f"nonzero: Expected out tensor to have scalar type Long but got scalar type{_tname(out.dtype)}"
        )
    return write_result("nonzero", result, out, same_dtype=True)


def argwhere(input):  # noqa: A002
    """``nonzero(input)``: an (n, ndim) tensor of the indices of the non-zero elements."""
    return nonzero(input)


def _search(seq, values, right, sorter):
    side = "right" if right else "left"
    if seq.ndim == 1:
        return np.searchsorted(seq, values, side=side, sorter=sorter)
    lead = seq.shape[:-1]
    s2 = seq.reshape(-1, seq.shape[-1])
    v2 = values.reshape(-1, values.shape[-1])
    so2 = sorter.reshape(-1, seq.shape[-1]) if sorter is not None else None
    out = np.empty(v2.shape, dtype=_I64)
    for r in range(s2.shape[0]):
        out[r] = np.searchsorted(s2[r], v2[r], side=side, sorter=None if so2 is None else so2[r])
    return out.reshape(lead + values.shape[-1:])


def searchsorted(sorted_sequence, input, *, out_int32=False, right=False, side=None, sorter=None, out=None):  # noqa: A002
    """Indices into the innermost dim of ``sorted_sequence`` that keep it sorted when ``input`` is inserted.

    ``right`` / ``side="right"``: the last such index. ``sorter``: indices that sort an unsorted sequence.

    Args: sorted_sequence (1-D Tensor, or N-D with the leading dims of ``input``); input (Tensor or number);
    out_int32 (bool: int32 result); right (bool); side ("left" / "right"); sorter (int64 Tensor).
    Returns: int64 (or int32) indices of ``input``'s shape. Raises: RuntimeError for mismatched shapes or
    contradicting ``right`` and ``side``. Example: ``ad.searchsorted(ad.tensor([1., 2.]), 1.5)`` is ``1``.
    """
    if side is not None:
        if side not in ("left", "right"):
            raise RuntimeError(f"torch.searchsorted(): side can only be 'left' or 'right' but got {side}")
        if right and side == "left":
            raise RuntimeError(
                "torch.searchsorted(): side and right can't be set to opposites, got side of left while right was True"
            )
        right = side == "right"
    seq = _cuda.host_copy(_data(sorted_sequence))  # (CUDA operands: searched on host copies, as sort is)
    scalar = not isinstance(input, Tensor)
    vals = np.asarray(_cuda.host_copy(_data(input)))
    srt = None if sorter is None else _index_array(sorter, "searchsorted", "sorter")
    if srt is not None and srt.shape != seq.shape:
        raise RuntimeError(
            "torch.searchsorted(): boundary and sorter must have the same size, but got boundary "
            f"tensor {list(seq.shape)}and got sorter tensor {list(srt.shape)}"
        )
    if seq.ndim == 0:
        raise RuntimeError(
            "torch.searchsorted(): boundaries tensor should have positive dimension, but got 0 dimension"
        )
    if seq.ndim > 1 and (scalar or vals.ndim != seq.ndim or vals.shape[:-1] != seq.shape[:-1]):
        raise RuntimeError(
            "torch.searchsorted(): boundaries tensor should be 1 dimension or the first N-1 dimensions of boundaries "
            f"tensor and input value tensor must match, but we got boundaries tensor {list(seq.shape)} and input "
            f"value tensor {list(vals.shape)}"
        )
    result = _search(seq, vals, right, srt).astype(np.int32 if out_int32 else _I64)
    like = next((t for t in (sorted_sequence, input) if isinstance(t, Tensor) and t._dev is not None), None)
    result = wrap_array(np.asarray(result)) if like is None else _cuda.index_tensor(result, like)
    return write_result("searchsorted", result, out, same_dtype=True)


def bucketize(input, boundaries, *, out_int32=False, right=False, out=None):  # noqa: A002
    """The bucket of each element of ``input`` in the 1-D sorted ``boundaries`` (``right``: as searchsorted)."""
    b = _data(boundaries)
    if b.ndim != 1:
        raise RuntimeError(f"boundaries tensor must be 1 dimension, but got dim({b.ndim})")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right, out=out)


# Tensor methods (bound by shape_index.bind_methods) and what ``from ad.ops.sorting import *`` exports
METHODS = "sort argsort msort topk kthvalue unique unique_consecutive nonzero argwhere".split()
__all__ = [*METHODS, "searchsorted", "bucketize"]
