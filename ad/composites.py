"""Composite ops: built from primitives of ``ops.py``, so they need no rules of their own.

Their derivatives (first, second, forward mode) follow from the primitives they are made of; the generic
tests check them like primitives. One exception: ``var``'s result takes torch's forward rule (its own tangent
would be NaN where a tangent entry is infinite; the inner values keep the composite's tangents).
"""

import numpy as np

from . import cuda as _cuda
from . import forward, ops
from .ops import _reduce_dims, outer  # noqa: F401 - re-exported
from .saved import guard
from .tensor import Tensor, _wrap_dim


def var(input, dim=None, unbiased=True, keepdim=False, *, correction=None):
    """Variance over ``dim`` with Bessel's correction by default (``correction=1``), as torch."""
    if isinstance(dim, bool):  # torch's ``var(input, unbiased)`` overload
        dim, unbiased = None, dim
    if isinstance(input, Tensor) and input.dtype.kind not in "fc":
        raise RuntimeError("std and var only support floating point and complex dtypes")
    if correction is None:
        correction = 1 if unbiased else 0
    dims = _reduce_dims(input, dim)
    count = 1
    for d in dims:
        count *= input.shape[d]
    denom = count - correction
    levels = forward.visible_levels_of(input) if input._tangents and denom > 0 else None
    if not levels:
        return _var(input, dims, keepdim, denom)

    def jvp(tan, base):
        # torch's rule, 2 sum((x - mean) t) / denom: the composite's own tangent, sum(2 (x - mean)(t - mean(t))),
        # is the same number but NaN where t has an infinite entry (inf - mean(t)); torch's gives +-inf there
        t = tan(input)
        if t is None:
            return None
        centered = input - ops.mean(input, dims, keepdim=True)
        return ops.sum(centered * t, dims, keepdim=keepdim) * (2.0 / denom)

    # the primal keeps its tangents inside (forward over reverse reads them); only the result's is replaced
    return forward.apply_dual(lambda: _var(input, dims, keepdim, denom), jvp, (input,), levels)


def _var(input, dims, keepdim, denom):
    if input._dev is None and denom > 0 and not np.isfinite(input._data).all():
        total = _nonfinite_groups_apart(input, dims, keepdim)
    else:
        total = _centered_squares(input, dims, keepdim)
    if denom <= 0:
        out = total * float("nan") if denom < 0 else total * float("inf")  # torch: nan/inf, with a warning
    else:
        out = total * (1.0 / denom)
    return guard(out, "VarBackward0", input)  # torch's var saves its input


def _centered_squares(input, dims, keepdim):
    centered = input - ops.mean(input, dims, keepdim=True)
    return ops.sum(centered * centered, dims, keepdim=keepdim)


def _nonfinite_groups_apart(input, dims, keepdim):
    """``sum((x - mean)^2)`` where a group (the members reduced together) holds an infinite or NaN member, by the
    form ``sum(x^2) - n mean^2`` for those groups (their variance is NaN either way) and the centered form for the
    others (exact there: the other form cancels).

    torch's rule, ``2 (x - mean) / denom``, leaves out the mean's own term (``-mean(2 (x - mean))``, zero in
    exact arithmetic); with an infinite member that term is NaN, and the centered chain gave every member NaN.
    The other form's chain gives ``2 x - 2 mean`` as two terms: torch's values, NaN at the infinite member and
    +-inf at the others. Each form reads its groups only (``where``: the other form sees zeros), so no NaN of one
    crosses to the other's gradient. (The members are checked on the host: CPU tensors only.)"""
    bad = np.any(~np.isfinite(input._data), axis=dims, keepdims=True)
    members = np.broadcast_to(bad, input.shape)
    n = 1
    for d in dims:
        n *= input.shape[d]
    x = ops.where(members, input, 0.0)
    mean = ops.mean(x, dims, keepdim=keepdim)
    sum_of_squares = ops.sum(x * x, dims, keepdim=keepdim) - mean * mean * float(n)
    centered = _centered_squares(ops.where(members, 0.0, input), dims, keepdim)
    return ops.where(bad if keepdim else np.squeeze(bad, axis=dims), sum_of_squares, centered)


def std(input, dim=None, unbiased=True, keepdim=False, *, correction=None):
    v = var(input, dim, unbiased, keepdim, correction=correction)  # checks x (torch's std saves it)
    # at zero variance sqrt's slope is infinite and var's is 0: torch masks the 0 * inf to 0. Taking the
    # sqrt of 1 there and selecting 0 gives 0 in every derivative (reverse, forward, higher order).
    zero = v._data == 0
    if not np.any(zero):
        return ops.sqrt(v)  # sqrt saves its output: std's result is checked as torch's
    out = ops.where(zero, ops.zeros_like(v), ops.sqrt(ops.where(zero, ops.ones_like(v), v)))
    return guard(out, "StdBackward0", result=True)


def logsumexp(input, dim, keepdim=False):
    """``log(sum(exp(x), dim))`` computed stably; its gradient is ``softmax(x, dim)``."""
    dims = _reduce_dims(input, dim)
    if input.dtype.kind != "f":  # (integers and bool: float64, numpy's promotion; torch's default float)
        input = input.to(np.float64)
    xd = input._data if input._dev is None else _cuda.host_copy(input._data)  # (the shift: computed on the host)
    m = np.max(xd, axis=dims, keepdims=True) if xd.size else np.zeros([1] * input.ndim)
    m = np.where(np.isfinite(m), m, 0.0).astype(input.dtype)
    shifted = input - _cuda.index_tensor(m, input)
    keep = keepdim or not dims  # (reduced without a squeeze: the result is no view, as torch's)
    shift = _cuda.index_tensor(m if keep else np.squeeze(m, dims), input)
    out = ops.log(ops.sum(ops.exp(shifted), dims, keepdim=keep)) + shift
    return guard(out, "LogsumexpBackward0", input, result=True)  # torch's logsumexp saves its input and result


def softmax(input, dim=None, dtype=None):
    if dtype is not None:
        input = input.to(dtype)
    if dim is None:
        dim = -1 if input.ndim != 0 else 0
    d = _wrap_dim(dim, input.ndim)
    if input.dtype.kind != "f":
        raise NotImplementedError(
            f"\"softmax_lastdim_kernel_impl\" not implemented for '{ops._torch_dtype(input.dtype).capitalize()}'"
        )
    # exp of the one-row log_softmax: exp saves its output, so writing into the result in place makes the
    # backward raise, as torch's softmax (which saves its result) does
    return ops.exp(ops.log_softmax_dim(input, d if input.ndim else 0))


def log_softmax(input, dim=None, dtype=None):
    if dtype is not None:
        input = input.to(dtype)
    if dim is None:
        dim = -1 if input.ndim != 0 else 0
    d = _wrap_dim(dim, input.ndim)  # a 0-d tensor accepts dim 0 and -1 only
    return ops.log_softmax_dim(input, d if input.ndim else 0)


def argmax(input, dim=None, keepdim=False):
    return _arg(np.argmax, "argmax", input, dim, keepdim)


def argmin(input, dim=None, keepdim=False):
    return _arg(np.argmin, "argmin", input, dim, keepdim)


def _arg(fn, name, x, dim, keepdim):
    """argmax / argmin: torch's errors for empty and bool inputs; a 0-d input accepts dim 0 and -1. A CUDA
    tensor's indices come from a host copy of its values (as max over a dim's: ``ad.cuda.host_copy``) and are
    returned on its device."""
    xd = x._data
    if xd.dtype.kind == "b":
        raise RuntimeError(f"{name}(): does not support bool input")
    if dim is None:
        if xd.size == 0:
            raise IndexError(f"{name}(): Expected reduction dim to be specified for input.numel() == 0.")
        return _cuda.index_tensor(np.asarray(fn(_cuda.host_copy(xd)), np.int64), x)
    d = _wrap_dim(dim, x.ndim)
    if xd.ndim == 0:
        return _cuda.index_tensor(np.asarray(0, np.int64), x)
    if xd.shape[d] == 0:
        raise IndexError(f"{name}(): Expected reduction dim {d} to have non-zero size.")
    return _cuda.index_tensor(np.asarray(fn(_cuda.host_copy(xd), axis=d, keepdims=keepdim), np.int64), x)


def sign(input):  # noqa: A002 - torch's name
    """torch.sign: connected to the graph with a zero gradient (``ops.sign``)."""
    return ops.sign(input)


def reciprocal(input):
    from .ops.elementwise import reciprocal as _reciprocal

    return _reciprocal(input)


def norm(input, p="fro", dim=None, keepdim=False, out=None, dtype=None):  # noqa: A002 - torch's names
    """torch.norm (see ``reductions.norm``: every p, with dim)."""
    from .reductions import norm as _norm

    return _norm(input, p, dim, keepdim, dtype=dtype, out=out)


def is_tensor(obj):
    return isinstance(obj, Tensor)
