"""torch's statistics that are compositions of existing ops: ``quantile`` / ``nanquantile`` (a sort, a gather of
the two neighbours and their interpolation, so differentiable as torch's), ``mode``, ``cov`` and ``corrcoef``,
``std_mean`` / ``var_mean``, ``trapezoid`` / ``trapz`` / ``cumulative_trapezoid``, ``renorm``, and the counting
functions ``bincount``, ``histc``, ``histogram`` (not differentiable, as in torch).
"""

import collections
import numbers

import numpy as np

from . import composites, ops
from .ops import view_ops
from .ops.out import write_result
from .tensor import Tensor, _wrap_dim, wrap_array

__all__ = [
    "bincount",
    "corrcoef",
    "cov",
    "cumulative_trapezoid",
    "histc",
    "histogram",
    "mode",
    "nanquantile",
    "quantile",
    "renorm",
    "std_mean",
    "trapezoid",
    "trapz",
    "var_mean",
]

Mode = collections.namedtuple("mode", ["values", "indices"])
Histogram = collections.namedtuple("histogram", ["hist", "bin_edges"])
_INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def _check_tensor(x, name):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not {type(x).__name__}")


def _host(x):
    return x.detach().cpu()._data


def _to(arr, like):
    """Host array ``arr`` as a tensor on ``like``'s device."""
    t = wrap_array(arr)
    return t.to(like.device) if like._dev is not None else t


def _quantile(name, input, q, dim, keepdim, interpolation, ignore_nan):
    _check_tensor(input, name)
    if input.dtype.kind != "f":
        raise RuntimeError(f"{name}() input tensor must be either float or double dtype")
    if interpolation not in _INTERPOLATIONS:
        raise RuntimeError(
            f"{name}() interpolation must be one of linear, lower, higher, midpoint or nearest, but got "
            f"{interpolation}"
        )
    if isinstance(q, Tensor) and q.dtype != input.dtype:
        raise RuntimeError(f"{name}() q tensor must be same dtype as the input tensor")
    qs = _host(q).astype(np.float64) if isinstance(q, Tensor) else np.asarray(float(q))
    if qs.ndim > 1:
        raise RuntimeError(f"{name}() q must be a scalar or 1D tensor")
    if qs.size and (qs.min() < 0 or qs.max() > 1):
        bad = float(qs.max() if qs.max() > 1 else qs.min())
        raise RuntimeError(f"{name}() q must be in the range [0, 1] but got {bad}")
    x = ops.reshape(input, (-1,)) if dim is None else input
    d = 0 if dim is None else _wrap_dim(dim, max(input.ndim, 1))
    if x.ndim == 0:
        x = ops.reshape(x, (1,))
    if x.shape[d] == 0:
        raise RuntimeError(f"{name}() input tensor must be non-empty")
    x = view_ops.movedim(x, d, -1)
    from .ops.sorting import sort  # (imported on use, as ad's other users of the sorting ops do)

    values = sort(x, -1).values  # NaN sorts last
    n = x.shape[-1]
    nan = np.isnan(_host(x))
    valid = (n - nan.sum(-1)) if ignore_nan else np.full(x.shape[:-1], n)
    out = []
    for qv in qs.reshape(-1):
        pos = qv * (np.maximum(valid, 1) - 1).astype(np.float64)
        lo = np.floor(pos).astype(np.int64)
        hi = np.ceil(pos).astype(np.int64)
        if interpolation == "lower":
            hi = lo
        elif interpolation == "higher":
            lo = hi
        elif interpolation == "nearest":
            lo = hi = np.round(pos).astype(np.int64)  # half to even, as torch
        lo_v = ops.gather(values, -1, _to(lo[..., None], input))
        hi_v = ops.gather(values, -1, _to(hi[..., None], input))
        if interpolation == "linear":
            # torch's lerp: from the nearer end (lo + (hi - lo) w below w = 0.5, hi - (hi - lo) (1 - w) from
            # there), so an infinite end gives that end where the other form gives inf - inf, NaN
            frac = (pos - lo)[..., None].astype(input.dtype)
            step = hi_v - lo_v
            near_lo = lo_v + step * _to(frac, input)
            near_hi = hi_v - step * _to((1 - frac).astype(input.dtype), input)
            r = ops.where(_to(frac < 0.5, input), near_lo, near_hi)
        elif interpolation == "midpoint":
            r = (lo_v + hi_v) * 0.5
        else:
            r = lo_v
        # a row with a NaN (quantile) or only NaNs (nanquantile) gives NaN: as torch, the sorted element it reads
        # then (the last, a NaN; the first of an all-NaN row) gets the gradient
        bad = (nan.any(-1) if not ignore_nan else valid == 0)[..., None]
        if bad.any():
            picked = values[..., :1] if ignore_nan else values[..., n - 1 :]
            r = ops.where(_to(bad, input), picked, r)
        out.append(ops.squeeze(r, -1))
    result = ops.stack(out, 0) if qs.ndim == 1 else out[0]
    if keepdim:
        if dim is None:
            lead = (len(qs),) if qs.ndim == 1 else ()
            result = ops.reshape(result, lead + (1,) * input.ndim)
        else:
            result = ops.unsqueeze(result, d + (1 if qs.ndim == 1 else 0))
    return result


def quantile(input, q, dim=None, keepdim=False, *, interpolation="linear", out=None):
    """The ``q``-quantiles (a number or a 1-D tensor of them, in [0, 1]) along ``dim`` (all elements when None);
    a row with a NaN gives NaN. Differentiable as torch's (through the sorted neighbours)."""
    result = _quantile("quantile", input, q, dim, keepdim, interpolation, False)
    return write_result("quantile", result, out, same_dtype=True)


def nanquantile(input, q, dim=None, keepdim=False, *, interpolation="linear", out=None):
    """``quantile`` ignoring NaNs (a row of NaNs only gives NaN)."""
    result = _quantile("nanquantile", input, q, dim, keepdim, interpolation, True)
    return write_result("nanquantile", result, out, same_dtype=True)


def mode(input, dim=-1, keepdim=False, *, out=None):
    """``(values, indices)``: the most frequent value along ``dim`` (the smallest of those tied) and the index of
    its last occurrence; differentiable in the values (a gather)."""

    _check_tensor(input, "mode")
    x = input if input.ndim else ops.reshape(input, (1,))
    d = _wrap_dim(dim, x.ndim)
    if x.shape[d] == 0:
        raise IndexError(f"mode(): Expected reduction dim {d} to have non-zero size.")
    a = np.moveaxis(_host(x), d, -1)
    rows = a.reshape(-1, a.shape[-1])
    idx = np.empty(rows.shape[0], np.int64)
    for k, row in enumerate(rows):
        vals, counts = np.unique(row, return_counts=True)  # sorted: ties go to the smallest value
        best = vals[np.argmax(counts)]
        idx[k] = np.flatnonzero((row == best) | (np.isnan(row) & np.isnan(best)))[-1]
    idx = np.moveaxis(idx.reshape(a.shape[:-1] + (1,)), -1, d)
    values = ops.gather(x, d, _to(idx, x))
    indices = _to(idx, x)
    if not keepdim:
        values, indices = ops.squeeze(values, d), ops.squeeze(indices, d)
    if input.ndim == 0:
        values, indices = ops.reshape(values, ()), ops.reshape(indices, ())
    return write_result("mode", Mode(values, indices), out, same_dtype=True)


def cov(input, *, correction=1, fweights=None, aweights=None):
    """The covariance matrix of the rows of ``input`` (variables) over its columns (observations), with
    optional integer frequency and float observation weights, as ``numpy.cov``; differentiable."""
    _check_tensor(input, "cov")
    if input.ndim > 2:
        raise RuntimeError(
            f"cov(): expected input to have two or fewer dimensions but got an input with {input.ndim} dimensions"
        )
    x = ops.reshape(input, (1, -1)) if input.ndim < 2 else input
    if x.dtype.kind != "f":  # integers and bool: float64 (numpy's promotion; torch's default float)
        x = x.to(np.float64)
    n = x.shape[1]
    w = None
    if fweights is not None:
        if _host(fweights).dtype.kind not in "iu":
            raise RuntimeError(
                f"cov(): expected fweights to have integral dtype but got fweights with {fweights.dtype} dtype"
            )
        if (_host(fweights) < 0).any():
            raise RuntimeError("cov(): fweights cannot be negative")
        w = fweights.to(x.dtype)
    if aweights is not None:
        if (_host(aweights) < 0).any():
            raise RuntimeError("cov(): aweights cannot be negative")
        w = aweights.to(x.dtype) if w is None else w * aweights.to(x.dtype)
    if w is None:
        w_sum = float(n)
        avg = ops.mean(x, 1, keepdim=True)
        norm = w_sum - correction
        centered = x - avg
        c = ops.matmul(centered, ops.transpose(centered, 0, 1))
    else:
        w_sum = ops.sum(w)
        avg = ops.sum(x * w, 1, keepdim=True) / w_sum
        if correction == 0:
            norm = w_sum
        elif aweights is None:
            norm = w_sum - correction
        else:
            norm = w_sum - correction * ops.sum(w * aweights.to(x.dtype)) / w_sum
        centered = x - avg
        c = ops.matmul(centered * w, ops.transpose(centered, 0, 1))
    c = c / (ops.clamp(norm, min=0.0) if isinstance(norm, Tensor) else max(norm, 0.0))
    return ops.reshape(c, ()) if input.ndim < 2 else c


def corrcoef(input):
    """Pearson correlation coefficients of the rows of ``input`` (clipped to [-1, 1]); differentiable."""
    c = cov(input)
    if c.ndim == 0:
        return c / c
    d = ops.sqrt(view_ops.diagonal(c))
    r = c / ops.unsqueeze(d, 1) / ops.unsqueeze(d, 0)
    return ops.clamp(r, -1.0, 1.0)


def std_mean(input, dim=None, unbiased=True, keepdim=False, *, correction=None):
    """``(std, mean)`` over ``dim``."""
    return (composites.std(input, dim, unbiased, keepdim, correction=correction),
            _mean(input, dim, keepdim))


def var_mean(input, dim=None, unbiased=True, keepdim=False, *, correction=None):
    """``(var, mean)`` over ``dim``."""
    return (composites.var(input, dim, unbiased, keepdim, correction=correction),
            _mean(input, dim, keepdim))


def _mean(input, dim, keepdim):
    return ops.mean(input) if dim is None else ops.mean(input, dim, keepdim=keepdim)


def _trapezoid_pieces(y, x, dx, dim, name):
    _check_tensor(y, name)
    d = _wrap_dim(dim, y.ndim)
    n = y.shape[d]
    if n == 0:
        return None, None, d
    from .ops.view_ops import narrow

    left, right = narrow(y, d, 0, n - 1), narrow(y, d, 1, n - 1)
    if x is None:
        widths = dx if dx is not None else 1.0
    else:
        if x.ndim == 1:
            if x.shape[0] != n:
                raise RuntimeError(f"{name}: There must be one `x` value for each sample point")
            shape = [1] * y.ndim
            shape[d] = n - 1
            widths = ops.reshape(narrow(x, 0, 1, n - 1) - narrow(x, 0, 0, n - 1), tuple(shape))
        else:
            xd = _wrap_dim(dim, x.ndim)
            widths = narrow(x, xd, 1, n - 1) - narrow(x, xd, 0, n - 1)
    return (left + right) * widths * 0.5, n, d


def trapezoid(y, x=None, *, dx=1, dim=-1):
    """The trapezoidal rule along ``dim``: sample points ``x`` (or spacing ``dx``, default 1)."""
    if isinstance(x, numbers.Number):
        x, dx = None, x
    areas, n, d = _trapezoid_pieces(y, x, dx, dim, "trapezoid")
    if areas is None:
        return ops.sum(ops.reshape(y, tuple(y.shape)), d)
    return ops.sum(areas, d)


def trapz(y, x=None, *, dx=1, dim=-1):
    """``trapezoid`` (torch's older name)."""
    return trapezoid(y, x, dx=dx, dim=dim)


def cumulative_trapezoid(y, x=None, *, dx=1, dim=-1):
    """The running trapezoidal integral along ``dim`` (one element shorter than ``y`` there)."""
    if isinstance(x, numbers.Number):
        x, dx = None, x
    areas, n, d = _trapezoid_pieces(y, x, dx, dim, "cumulative_trapezoid")
    if areas is None:
        return y
    from .reductions import cumsum

    return cumsum(areas, d)


def renorm(input, p, dim, maxnorm, *, out=None):
    """Each slice along ``dim`` whose ``p``-norm exceeds ``maxnorm`` scaled down to norm ``maxnorm`` (torch's
    ``maxnorm / (norm + 1e-7)``); differentiable."""
    from .linalg import vector_norm

    _check_tensor(input, "renorm")
    if p <= 0:
        raise RuntimeError("renorm: non-positive-norm not supported")
    if maxnorm < 0:
        raise RuntimeError(f"renorm: expected maxnorm to be >= 0 but got {maxnorm}")
    d = _wrap_dim(dim, input.ndim)
    others = [k for k in range(input.ndim) if k != d]
    norms = vector_norm(input, float(p), others, keepdim=True) if others else ops.abs(input)
    over = _host(norms) > maxnorm
    scale = ops.where(_to(over, input), maxnorm / (norms + 1e-7), _to(np.ones(over.shape, input.dtype), input))
    return write_result("renorm", input * scale, out, same_dtype=True)


def bincount(input, weights=None, minlength=0):
    """How often each value 0, 1, ... occurs in a 1-D non-negative integer tensor (summed ``weights`` instead of
    counts when given); not differentiable."""
    _check_tensor(input, "bincount")
    a = _host(input)
    if a.dtype.kind not in "iu":
        from .ops.linalg import torch_dtype_name

        raise NotImplementedError(f"\"bincount_cpu\" not implemented for '{torch_dtype_name(a.dtype)}'")
    if a.ndim != 1 or a.dtype.kind not in "iu" or (a.size and a.min() < 0):
        raise RuntimeError("bincount only supports 1-d non-negative integral inputs.")
    if minlength < 0:
        raise RuntimeError("minlength should be >= 0")
    if weights is None:
        return wrap_array(np.bincount(a, minlength=minlength).astype(np.int64)).to(input.device)
    w = _host(weights)
    if w.shape != a.shape:
        raise RuntimeError("weights should be 1-d and have the same length as input")
    dt = w.dtype if w.dtype.kind == "f" else np.float64
    return wrap_array(np.bincount(a, w, minlength).astype(dt)).to(input.device)


def histc(input, bins=100, min=0, max=0, *, out=None):  # noqa: A002 - torch's names
    """Counts of ``input`` in ``bins`` equal bins over [min, max] (the data's range when both are 0); elements
    outside are ignored; not differentiable."""

    _check_tensor(input, "histc")
    a = _host(input)
    if a.dtype.kind != "f":
        from .ops.linalg import torch_dtype_name

        raise NotImplementedError(f"\"histogram_cpu\" not implemented for '{torch_dtype_name(a.dtype)}'")
    if bins <= 0:
        raise RuntimeError("torch.histc: bins must be > 0")
    lo, hi = float(min), float(max)
    if lo == hi and a.size:
        lo, hi = float(a.min()), float(a.max())
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    if lo > hi:
        raise RuntimeError("torch.histc: max must be larger than min")
    counts, _ = np.histogram(a[np.isfinite(a)], bins=int(bins), range=(lo, hi))
    return write_result("histc", wrap_array(counts.astype(a.dtype)).to(input.device), out, same_dtype=True)


def histogram(input, bins=100, *, range=None, weight=None, density=False, out=None):  # noqa: A002
    """``(hist, bin_edges)`` of ``input`` over ``bins`` (a count or a 1-D tensor of edges), as
    ``numpy.histogram``; not differentiable."""

    _check_tensor(input, "histogram")
    a = _host(input)
    if a.dtype.kind != "f":  # (numpy would truncate the bin edges to the integer dtype)
        from .ops.linalg import torch_dtype_name

        raise NotImplementedError(f"\"histogramdd\" not implemented for '{torch_dtype_name(a.dtype)}'")
    edges = _host(bins) if isinstance(bins, Tensor) else int(bins)
    w = _host(weight) if weight is not None else None
    hist, bin_edges = np.histogram(a, bins=edges, range=range, weights=w, density=density)
    dev = input.device  # (a CUDA input: counted on a host copy, as histc; the results on its device)
    result = Histogram(wrap_array(hist.astype(a.dtype)).to(dev), wrap_array(bin_edges.astype(a.dtype)).to(dev))
    return write_result("histogram", result, out, same_dtype=True)


def bind():
    T = Tensor
    for fn in (quantile, nanquantile, mode, cov, corrcoef, renorm, bincount, histc, histogram):
        setattr(T, fn.__name__, fn)
    T.renorm_ = lambda self, p, dim, maxnorm: self.copy_(renorm(self, p, dim, maxnorm))
