"""Composite ops: built from primitives of ``ops.py``, so they need no rules of their own.

Their derivatives (first, second, forward mode) follow from the primitives they are made of; the generic
tests check them like primitives.
"""

import numpy as np

from . import ops
from .ops import _reduce_dims, outer  # noqa: F401 - re-exported
from .tensor import Tensor, _wrap_dim, wrap_array


def var(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Variance over ``dim`` with Bessel's correction by default (``correction=1``), as torch."""
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    dims = _reduce_dims(x, dim)
    count = 1
    for d in dims:
        count *= x.shape[d]
    centered = x - ops.mean(x, dims, keepdim=True)
    total = ops.sum(centered * centered, dims, keepdim=keepdim)
    denom = count - correction
    if denom <= 0:
        return total * float("nan") if denom < 0 else total * float("inf")  # torch: nan/inf, with a warning
    return total * (1.0 / denom)


def std(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return ops.sqrt(var(x, dim, unbiased, keepdim, correction=correction))


def logsumexp(x, dim, keepdim=False):
    """``log(sum(exp(x), dim))`` computed stably; its gradient is ``softmax(x, dim)``."""
    dims = _reduce_dims(x, dim)
    m = np.max(x._data, axis=dims, keepdims=True) if x._data.size else np.zeros([1] * x.ndim)
    m = np.where(np.isfinite(m), m, 0.0).astype(x.dtype)
    shifted = x - wrap_array(m)
    out = ops.log(ops.sum(ops.exp(shifted), dims, keepdim=True)) + wrap_array(m)
    return out if keepdim else ops.squeeze(out, dims) if dims else out


def softmax(x, dim=None, dtype=None):
    if dtype is not None:
        x = x.to(dtype)
    if dim is None:
        dim = -1 if x.ndim != 0 else 0
    d = _wrap_dim(dim, x.ndim)
    if x.dtype.kind != "f":
        raise NotImplementedError(
            f"softmax_lastdim_kernel_impl not implemented for '{ops._torch_dtype(x.dtype).capitalize()}'"
        )
    m = np.max(x._data, axis=d, keepdims=True) if x.ndim else x._data
    m = np.where(np.isfinite(m), m, 0.0).astype(x.dtype)
    e = ops.exp(x - wrap_array(m))
    return e / ops.sum(e, d, keepdim=True)


def log_softmax(x, dim=None, dtype=None):
    if dtype is not None:
        x = x.to(dtype)
    if dim is None:
        dim = -1 if x.ndim != 0 else 0
    return ops.log_softmax_dim(x, _wrap_dim(dim, x.ndim) if x.ndim else 0)


def argmax(x, dim=None, keepdim=False):
    if dim is None:
        return wrap_array(np.asarray(np.argmax(x._data)))
    return wrap_array(np.argmax(x._data, axis=_wrap_dim(dim, x.ndim), keepdims=keepdim))


def argmin(x, dim=None, keepdim=False):
    if dim is None:
        return wrap_array(np.asarray(np.argmin(x._data)))
    return wrap_array(np.argmin(x._data, axis=_wrap_dim(dim, x.ndim), keepdims=keepdim))


def sign(x):
    """torch.sign: connected to the graph with a zero gradient (``ops.sign``)."""
    return ops.sign(x)


def reciprocal(x):
    return ops.rdiv(x, 1.0)


def norm(input, p="fro", dim=None, keepdim=False, out=None, dtype=None):  # noqa: A002 - torch's names
    """torch.norm (see ``reductions.norm``: every p, with dim)."""
    from .reductions import norm as _norm

    return _norm(input, p, dim, keepdim, dtype=dtype, out=out)


def is_tensor(obj):
    return isinstance(obj, Tensor)
