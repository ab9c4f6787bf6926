"""What the shape and indexing ops share (``shape_index.py``, ``scatter_ops.py``, ``sorting.py``): the index
map, index and mask arguments read on the host and checked as torch checks them, and the pick.

An *index map* is the data structure each of those ops builds: ``_ids(shape)`` numbers the elements of a tensor
in C order, and numpy's own function applied to those numbers (``np.flip``, ``np.roll``, ``np.tile``,
``np.take_along_axis``, ...) says which input element lands where, and the op records ``gather_map`` /
``scatter_map`` rows with it (``ad/ops/__init__.py``). ``_pick(mask, picked, x)`` is ``where(mask, picked, x)``
that keeps integer dtypes and records nothing when nothing requires grad: how ops that replace elements
(scatter, tril, masked_fill, ...) put the replacing values in.

Index arguments may be CUDA tensors: the index maps are built with numpy, so ``_host_index`` and
``_mask_array`` read them on the host.
"""

import numpy as np

from ..forward import _fw
from ..grad_mode import _grad_state
from ..tensor import Tensor, wrap_array
from . import where

_I64 = np.int64


def _ids(shape):
    """The flat C-order position of every element of a tensor of ``shape``."""
    return np.arange(int(np.prod(shape, dtype=_I64)), dtype=_I64).reshape(shape)


def _data(t):
    return t._data if isinstance(t, Tensor) else np.asarray(t)


def _needs_grad(*tensors):
    """Whether any of ``tensors`` is recorded for reverse mode or carries a forward-mode tangent."""
    for t in tensors:
        if isinstance(t, Tensor) and ((_grad_state.enabled and t._rg) or (_fw.levels and t._tangents)):
            return True
    return False


def _host_index(index):
    """An index's values on the host (a CUDA index tensor is copied: the index maps are built with numpy)."""
    if isinstance(index, Tensor) and index._dev is not None:
        return index.detach().cpu()._data
    return _data(index)


def _index_array(index, fn, what="index", kinds="iu"):
    idx = _host_index(index)
    if idx.dtype.kind not in kinds:
        raise RuntimeError(f"{fn}(): Expected dtype int64 for {what}, got {idx.dtype}")
    return idx.astype(_I64, copy=False)


def _const(value, dtype, like=None):
    """A constant tensor of ``value``; on ``like``'s device when ``like`` is a CUDA tensor."""
    if like is not None and like._dev is not None:
        from ..cuda import index_tensor

        return index_tensor(np.asarray(value, dtype=dtype), like)
    return wrap_array(np.asarray(value, dtype=dtype))


def _pick(mask, picked, x):
    """``where(mask, picked, x)`` that keeps integer dtypes (and needs no graph when nothing requires grad)."""
    if not _needs_grad(picked, x) and x._dev is None and getattr(picked, "_dev", None) is None:
        return wrap_array(np.where(mask, _data(picked), _data(x)).astype(x.dtype, copy=False))
    return where(wrap_array(np.asarray(mask)), picked, x)


def _tname(dtype):
    return {"float64": "Double", "float32": "Float", "int64": "Long", "int32": "Int", "bool": "Bool"}.get(
        np.dtype(dtype).name, np.dtype(dtype).name
    )


def _c_type_name(dtype):
    """The C++ name torch's messages give a dtype (``long int``, ``unsigned char``, ``double``)."""
    names = {"int64": "long int", "int32": "int", "int16": "short int", "int8": "signed char", "uint8": "unsigned char"}
    return names.get(np.dtype(dtype).name, {"float64": "double", "float32": "float"}.get(np.dtype(dtype).name, "float"))


def _mask_array(mask, fn):
    m = _data(mask) if not isinstance(mask, Tensor) or mask._dev is None else mask._data.copy_to_host()  # (host)
    if m.dtype != np.bool_:
        raise RuntimeError(f"{fn} only supports boolean masks, but got mask with dtype {_c_type_name(m.dtype)}")
    return m


def _flat_index_in_range(idx, input):  # noqa: A002
    """``input``'s number of elements, after checking that ``idx`` indexes its flattened form (torch's error)."""
    n = input._data.size
    bad = idx[(idx < -n) | (idx >= n)]
    if bad.size:
        raise IndexError(f"out of range: tried to access index {int(bad.reshape(-1)[0])} on a tensor of {n} elements.")
    return n
