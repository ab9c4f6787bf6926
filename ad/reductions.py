"""Issue 13's reductions, scans and special functions: median, nanmean, nansum, cumsum, cumprod, cummax,
cummin, logcumsumexp, count_nonzero, all, any, aminmax, norm, dist, lgamma, digamma, polygamma.

Two kinds of op live here:

- Python-swept primitives (``ad.autograd.Function`` subclasses named as torch's nodes, ``CumsumBackward0``):
  ``forward`` computes with numpy/scipy on the arrays, ``backward`` and ``jvp`` are written with ``ad`` ops
  (and call these same Functions), so ``create_graph=True``, second order and nested forward levels work.
  The compiled sweep stops at their row and calls ``backward`` (``ad/autograd/function.py``). Scans and the
  special functions (no formula for scipy's digamma in the kernels) are such primitives.
- Composites of existing ops (median and cummax pick elements by index, so their gradient is a gather;
  nansum masks NaN with ``where``; norm is built from abs, pow, sum, amax).

Non-differentiable results (indices, counts, bools) are plain tensors.

On CUDA tensors: nansum's NaN mask, logcumsumexp's line maxima and cummax / cummin's indices (a scan carrying
(value, index) pairs, ``kernels/cuda/scan.py``) are computed on the device; median's index, like sort's, from
a host copy of the values (``ad.cuda.host_copy``); the values are gathered on the device.
"""

import builtins
import collections
import math
import numbers

import numpy as np
import scipy.special

from . import ops
from .autograd.function import Function
from .cuda import host_copy, index_tensor
from .grad_mode import is_grad_enabled
from .ops.linalg import lapack_svd
from .ops.pointwise_ops import with_out
from .ops.structural import _keep_dtype
from .saved import guard
from .tensor import Node, Tensor, _wrap_dim, wrap_array

_values_indices = collections.namedtuple("values_indices", ["values", "indices"])
aminmax_result = collections.namedtuple("aminmax", ["min", "max"])


def _check_tensor(x, fn):
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn}(): argument 'input' (position 1) must be Tensor, not {type(x).__name__}")
    return x


def _dim1(x, dim):
    """``dim`` wrapped for a scan over ``x`` (a 0-d tensor scans as one element, as torch)."""
    return _wrap_dim(dim, builtins.max(x.ndim, 1))


def _reversed(t, dim):
    """``t`` reversed along ``dim`` (a strided view: differentiable)."""
    key = (slice(None),) * dim + (slice(None, None, -1),)
    return t[key]


# --- special functions --------------------------------------------------------------------------------------


def _polygamma_np(n, x):
    if n == 0:
        return scipy.special.psi(x)
    return scipy.special.polygamma(n, x)


def _special(grad_fn_name, forward_np, derivative):
    """A Function ``f(x)`` computed by ``forward_np(array)``, with ``f'(x) = derivative(x)`` (an ad op)."""

    class Special(Function):
        _grad_fn_name = grad_fn_name
        _backward_carries_tangents = True  # (backward reads the saved input, dual in forward over reverse)

        @staticmethod
        def forward(ctx, x, n=0):
            ctx.save_for_backward(x)
            ctx.n = n
            d = x._data if x._data.dtype.kind == "f" else x._data.astype(np.float64)
            return wrap_array(np.asarray(forward_np(n, d), dtype=d.dtype))

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * derivative(ctx.n, x), None

        @staticmethod
        def jvp(ctx, t, _=None):
            (x,) = ctx.saved_tensors
            return t * derivative(ctx.n, x)

    Special.__name__ = Special.__qualname__ = grad_fn_name[: -len("Backward0")]
    return Special


def _lgamma_np(n, x):
    # (scipy: -inf at -inf; torch and C's lgamma: |Gamma| -> inf)
    return np.where(np.isneginf(x), np.inf, scipy.special.gammaln(x)).astype(x.dtype, copy=False)


_Lgamma = _special("LgammaBackward0", _lgamma_np, lambda n, x: digamma(x))
_Digamma = _special("DigammaBackward0", _polygamma_np, lambda n, x: polygamma(1, x))
_Polygamma = _special("PolygammaBackward0", _polygamma_np, lambda n, x: polygamma(n + 1, x))


def lgamma(input):  # noqa: A002 - torch's name
    """``log |Gamma(input)|``; its derivative is ``digamma``."""
    return _Lgamma.apply(_check_tensor(input, "lgamma"))


def digamma(input):  # noqa: A002
    """``d/dx log Gamma(x)``; its derivative is ``polygamma(1, x)``."""
    return _Digamma.apply(_check_tensor(input, "digamma"))


def polygamma(n, input):  # noqa: A002
    """The ``n``-th derivative of ``digamma``."""
    if not isinstance(n, int) or n < 0:
        raise RuntimeError("polygamma(n, x) does not support negative n.")
    x = _check_tensor(input, "polygamma")
    return _Digamma.apply(x) if n == 0 else _Polygamma.apply(x, n)


def polygamma_method(self, n):
    """``Tensor.polygamma(n)`` (torch's method takes ``n`` after ``self``)."""
    return polygamma(n, self)


# --- scans ---------------------------------------------------------------------------------------------------


class _Cumsum(Function):
    _grad_fn_name = "CumsumBackward0"
    _backward_carries_tangents = True  # (linear: the tangent is the cotangent's)
    _cuda_forward = True  # (a device scan: no host round trip)

    @staticmethod
    def forward(ctx, x, dim):
        ctx.dim = dim
        if x._dev is not None:
            from .cuda.ops import cumsum as device_cumsum

            return device_cumsum(x, dim)
        return wrap_array(np.cumsum(x._data.reshape(x.shape or (1,)), axis=dim).reshape(x.shape))

    @staticmethod
    def backward(ctx, g):
        if g.ndim == 0:
            return g, None
        return _reversed(cumsum(_reversed(g, ctx.dim), ctx.dim), ctx.dim), None

    @staticmethod
    def jvp(ctx, t, _):
        return cumsum(t, ctx.dim)


def cumsum(input, dim, *, dtype=None):  # noqa: A002
    """Cumulative sum along ``dim``."""
    x = _check_tensor(input, "cumsum")
    if dtype is None and x.dtype.kind == "u" and x.dtype.itemsize < 8:
        dtype = np.int64  # torch's accumulator of unsigned bytes (numpy's is uint64)
    if dtype is not None:
        x = x.to(dtype)
    return _keep_dtype(_Cumsum.apply(x, _dim1(x, dim)), dtype)


class _Cumprod(Function):
    _grad_fn_name = "CumprodBackward0"
    _backward_carries_tangents = True  # (backward recomputes the result from the saved, dual input)

    @staticmethod
    def forward(ctx, x, dim):
        ctx.dim = dim
        ctx.save_for_backward(x)
        return wrap_array(np.cumprod(x._data.reshape(x.shape or (1,)), axis=dim).reshape(x.shape))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        # under create_graph, the recorded result (torch's node saves it: double backward goes through its node)
        out = ctx._result_guards[0][0] if ctx._result_guards and is_grad_enabled() else None
        return _cumprod_vjp(g, x, ctx.dim, out), None

    @staticmethod
    def jvp(ctx, t, _):
        (x,) = ctx.saved_tensors
        # d out_i = sum_{j <= i} t_j * d out_i / d x_j: the transpose of the VJP, by linearity in t
        return _cumprod_jvp(t, x, ctx.dim)


def _rev_cumsum(t, dim):
    return _reversed(cumsum(_reversed(t, dim), dim), dim)


def _cumprod_vjp(g, x, dim, out=None):
    """``sum_{i >= j} g_i * d out_i / d x_j``, written with ad ops (so it is itself differentiable).

    Without zeros it is ``rev_cumsum(g * out) / x``. With zeros, that formula still holds wherever ``x_j`` is
    not 0 (the products past the first zero of a line are 0 and have no gradient there); at a line's first
    zero ``z`` the gradient is ``sum_{i >= z} g_i * P_i``, ``P`` the cumulative product with ``x_z`` set to 1;
    later zeros get 0, as torch."""
    if x.ndim == 0:
        return g
    xd = x._data
    zero = xd == 0
    if out is None or zero.any():  # (torch's formula at zeros does not go through the saved result)
        out = cumprod(x, dim)
    if not zero.any():
        return _rev_cumsum(g * out, dim) / x
    if is_grad_enabled() or x._tangents or g._tangents:
        # create_graph, or tangents (forward over reverse): the masked formula below treats the zero pattern as
        # constant, so its derivative misses how later zeros' gradients move with earlier entries (wrong second
        # derivative with two zeros in a line). As torch, take the exact O(n^2) form:
        # grad_j = sum_{i >= j} g_i * prod_{m <= i, m != j} x_m.
        return _sum_over_omitted(lambda onehot: cumprod(ops.where(onehot, ops.ones_like(x), x), dim) * g, x, dim)
    first = zero & (np.cumsum(zero, axis=dim) == 1)
    after = np.cumsum(first, axis=dim) > 0
    safe = ops.where(wrap_array(zero), ops.ones_like(x), x)
    part = ops.where(wrap_array(zero), ops.zeros_like(x), _rev_cumsum(g * out, dim) / safe)
    p = cumprod(ops.where(wrap_array(first), ops.ones_like(x), x), dim)
    at_zero = ops.sum(g * p * wrap_array(after.astype(xd.dtype)), dim, keepdim=True)
    return part + ops.where(wrap_array(first), ops.expand(at_zero, x.shape), ops.zeros_like(x))


def _cumprod_jvp(t, x, dim):
    """Forward mode of cumprod: ``out_i * sum_{j <= i} t_j / x_j`` without zeros; with zeros, through the
    same masks as ``_cumprod_vjp`` (a product with one factor replaced by its tangent)."""
    if x.ndim == 0:
        return t
    out = cumprod(x, dim)
    xd = x._data
    zero = xd == 0
    if not zero.any():
        return out * cumsum(t / x, dim)
    # exact and simple: sum over j of cumprod with x_j replaced by t_j (n products of the line length)
    return _sum_over_omitted(lambda onehot: cumprod(ops.where(onehot, t, x), dim), x, dim, reduce=False)


def _sum_over_omitted(term, x, dim, reduce=True):
    """Sum over the positions ``j`` of a line of ``term(onehot_j)`` restricted to ``i >= j``: with
    ``reduce`` (the VJP) each ``j`` keeps the sum over ``i`` at position ``j``; without (the JVP) the terms add
    up elementwise. n ops of the line's length each, exact at zeros and differentiable to any order."""
    n = x.shape[dim]
    total = None
    for j in range(n):
        onehot = np.zeros(x.shape, bool)
        idx = [slice(None)] * x.ndim
        idx[dim] = j
        onehot[tuple(idx)] = True
        later = wrap_array((np.cumsum(onehot, axis=dim) > 0).astype(x._data.dtype))
        part = term(wrap_array(onehot)) * later
        if reduce:
            part = ops.expand(ops.sum(part, dim, keepdim=True), x.shape) * wrap_array(onehot.astype(x._data.dtype))
        total = part if total is None else total + part
    return total


def cumprod(input, dim, *, dtype=None):  # noqa: A002
    """Cumulative product along ``dim``; the gradient is exact at zeros, as torch's."""
    x = _check_tensor(input, "cumprod")
    if dtype is None and x.dtype.kind == "u" and x.dtype.itemsize < 8:
        dtype = np.int64  # torch's accumulator of unsigned bytes (numpy's is uint64)
    if dtype is not None:
        x = x.to(dtype)
    return _keep_dtype(_Cumprod.apply(x, _dim1(x, dim)), dtype)


def _cum_extreme(x, dim, is_max):
    """Running max/min along ``dim`` and the index it came from, as torch: a later equal value takes over,
    and NaN propagates (each new NaN takes over)."""
    d = host_copy(x._data).reshape(x.shape or (1,))  # (CUDA integer tensors: on a host copy)
    moved = np.moveaxis(d, dim, -1)
    idx = np.zeros(moved.shape, np.int64)
    if moved.shape[-1] == 0:
        return idx.reshape(x.shape)
    best = moved[..., 0].copy()
    bi = np.zeros(best.shape, np.int64)
    for k in range(moved.shape[-1]):
        v = moved[..., k]
        better = (v >= best) if is_max else (v <= best)
        if d.dtype.kind == "f":
            better = np.isnan(v) | (~np.isnan(best) & better)
        best = np.where(better, v, best)
        bi = np.where(better, k, bi)
        idx[..., k] = bi
    return np.moveaxis(idx, -1, dim).reshape(x.shape)


def _cummax_min(x, dim, is_max, fn):
    x = _check_tensor(x, fn)
    dim = _dim1(x, dim)
    if x._dev is not None and x._data.dtype.kind == "f" and x.ndim:
        from .cuda.ops import cum_extreme

        idx = cum_extreme(x, dim, is_max)  # (a device scan carrying (value, index) pairs)
    else:
        idx = index_tensor(_cum_extreme(x, dim, is_max), x)
    if x.ndim == 0:
        return _values_indices(x * 1 if x._data.dtype.kind == "f" else index_tensor(host_copy(x._data).copy(), x), idx)
    if x._data.dtype.kind != "f":
        values = np.take_along_axis(host_copy(x._data), host_copy(idx._data), dim)
        return _values_indices(index_tensor(values, x), idx)
    values = guard(ops.gather(x, dim, idx), "CummaxBackward0" if is_max else "CumminBackward0", x)
    return _values_indices(values, idx)  # (torch's node saves the input: the gather reads none)


def cummax(input, dim):  # noqa: A002
    """``(values, indices)``: the running maximum along ``dim``; the gradient goes to the element chosen."""
    return _cummax_min(input, dim, True, "cummax")


def cummin(input, dim):  # noqa: A002
    return _cummax_min(input, dim, False, "cummin")


def logcumsumexp(input, dim):  # noqa: A002
    """``log(cumsum(exp(input), dim))``, shifted by the line's maximum for stability (a composite)."""
    x = _check_tensor(input, "logcumsumexp")
    dim = _dim1(x, dim)
    if x.dtype.kind == "b":
        raise NotImplementedError("\"logcumsumexp_out_cpu\" not implemented for 'Bool'")
    if x.ndim == 0:  # (torch's node saves its input and result here too)
        return guard(x * 1.0, "LogcumsumexpBackward0", x)
    d = x._data
    if x._dev is not None and d.size:  # on CUDA: the lines' maxima by a device reduction (finite: m - m == 0)
        m = ops.amax(x.detach(), dim, keepdim=True)
        m = ops.where(m - m == 0, m, ops.zeros_like(m))
    else:  # (the largest number of each line: a NaN in it spoils the sums from there on only, as torch's values)
        m = np.fmax.reduce(d, axis=dim, keepdims=True) if d.size else np.zeros([1] * x.ndim, d.dtype)
        m = wrap_array(np.where(np.isfinite(m), m, 0.0).astype(d.dtype))
    # (exp(-inf - m) is 0 and log(0) is -inf, the answer: no numpy warning, as torch gives none)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        shifted = ops.log(cumsum(ops.exp(x - m), dim))
        if x._tangents and d.size:
            shifted = _tangent_as_torch(x, shifted, dim)
        return guard(shifted + m, "LogcumsumexpBackward0", x)  # torch's node saves its input and result


def _tangent_as_torch(x, out, dim):
    """``out`` (logcumsumexp's, shifted by a finite amount) with torch's tangent at two corners (forward mode
    only: values and the reverse rule stay the composite's).

    Where ``out`` is -inf in a line of ``x`` that holds a number (or +inf), every input so far is -inf: moved by
    any finite tangent it stays -inf and contributes nothing, so the output does not move (torch's tangent, 0;
    the composite's log would divide a zero tangent by a zero sum, NaN). A line that holds a NaN has torch's
    tangent NaN at every position, also before the NaN (its rule shifts by the line's maximum, NaN)."""
    top = ops.amax(x.detach(), dim, keepdim=True)
    stuck = (out.detach() == -math.inf) & (top > -math.inf)
    out = ops.where(stuck, out.detach(), out)
    return _nan_tangent_where(out, ops.isnan(top))


@ops.forward_rule(lambda tan, out, x, spoiled: None if tan(x) is None else ops.where(spoiled, math.nan, tan(x)))
def _nan_tangent_where(x, spoiled):
    """``x`` (a new tensor) whose tangent is NaN where ``spoiled`` (a bool constant, broadcast) is True."""
    return x * 1.0


# --- reductions -----------------------------------------------------------------------------------------------


def _dims(x, dim):
    return ops._reduce_dims(x, dim)


def nansum(input, dim=None, keepdim=False, *, dtype=None):  # noqa: A002
    """Sum treating NaN as 0 (no gradient to NaN elements)."""
    x = _check_tensor(input, "nansum")
    if dtype is not None:
        x = x.to(dtype)
    if x._dev is not None and x._data.dtype.kind == "f":  # on CUDA: the NaN mask (x != x) on the device, always
        x = ops.where(x != x, ops.zeros_like(x), x)
    nan = np.isnan(x._data) if x._dev is None and x._data.dtype.kind == "f" else None
    if nan is not None and nan.any():
        x = ops.where(wrap_array(nan), ops.zeros_like(x), x)
    return guard(
        _keep_dtype(ops.sum(x, dim, keepdim=keepdim), dtype), "NansumBackward0", _check_tensor(input, "nansum")
    )


def nanmean(input, dim=None, keepdim=False, *, dtype=None):  # noqa: A002
    """Mean over the elements that are not NaN."""
    x = _check_tensor(input, "nanmean")
    if dtype is not None:
        x = x.to(dtype)
    if x._data.dtype.kind != "f":
        raise RuntimeError(
            "nanmean(): expected input to have floating point or complex dtype but got "
            f"{ops._torch_dtype(x.dtype).capitalize()}"
        )
    dims = _dims(x, dim)
    if x._dev is not None:  # (the count of non-NaN elements as a device sum of the mask x == x)
        count = ops.sum((x == x).to(x.dtype), dims, keepdim=keepdim)
    else:
        count = wrap_array(np.sum(~np.isnan(x._data), axis=dims, keepdims=keepdim).astype(x._data.dtype))
    return guard(nansum(x, dim, keepdim) / count, "NansumBackward0", x)  # torch: nansum's node saves x


def _median(x, dim, keepdim, ignore_nan, fn):
    x = _check_tensor(x, fn)
    if x.dtype.kind == "b":
        raise NotImplementedError("\"median_out\" not implemented for 'Bool'")
    d = host_copy(x._data)  # (on CUDA: the index of the median from a host copy, as sort's; values gathered there)
    if dim is None:
        flat = d.reshape(-1)
        if flat.size == 0:  # torch: NaN (and for integers, its empty-reduction error)
            if d.dtype.kind != "f":
                raise IndexError(f"{fn}() input tensor cannot be empty")
            return ops.sum(x) * 0.0 + float("nan")
        i = int(_median_index(flat[None, :], ignore_nan)[0])
        if d.dtype.kind != "f":
            return x.reshape(-1)[i]
        # the members equal to the median (its NaNs if it is NaN) share the gradient evenly, and the tangent is
        # their mean tangent (NaN for a NaN median), as torch's MedianBackward0: max() over those members
        ties = np.flatnonzero(np.isnan(flat) if math.isnan(flat[i]) else flat == flat[i])
        out = ops.max_all(ops.reshape(x, (-1,))[index_tensor(ties, x)])
        if out._op is not None:  # (torch's node name)
            out._node = Node("NanmedianBackward0" if ignore_nan else "MedianBackward0", out._inputs, out._op)
        return out
    dim = _dim1(x, dim)
    if x.ndim == 0:
        return _values_indices(x * 1 if d.dtype.kind == "f" else index_tensor(d.copy(), x), index_tensor(0, x))
    if x.shape[dim] == 0:
        raise IndexError(f"median(): Expected reduction dim {dim} to have non-zero size.")
    moved = np.moveaxis(d, dim, -1)
    idx = _median_index(moved.reshape(-1, moved.shape[-1]), ignore_nan).reshape(moved.shape[:-1])
    idx = np.expand_dims(idx, dim)
    if d.dtype.kind == "f":
        values = ops.gather(x, dim, index_tensor(idx, x))
    else:
        values = index_tensor(np.take_along_axis(d, idx, dim), x)
    if not keepdim:
        values = ops.squeeze(values, dim)
        idx = np.squeeze(idx, dim)
    return _values_indices(values, index_tensor(idx, x))


def _median_index(rows, ignore_nan):
    """Index of the lower median of each row; NaN: the first NaN's (median) or skipped (nanmedian)."""
    order = np.argsort(rows, axis=1, kind="stable")  # NaN sort last
    nan = np.isnan(rows) if rows.dtype.kind == "f" else np.zeros(rows.shape, bool)
    valid = rows.shape[1] - nan.sum(axis=1)
    k = np.maximum((valid - 1) // 2, 0) if ignore_nan else np.full(rows.shape[0], (rows.shape[1] - 1) // 2)
    idx = order[np.arange(rows.shape[0]), k]
    if not ignore_nan:
        has_nan = nan.any(axis=1)
        idx = np.where(has_nan, np.argmax(nan, axis=1), idx)
    return idx


def median(input, dim=None, keepdim=False):  # noqa: A002
    """The lower median (of all elements, or ``(values, indices)`` along ``dim``); NaN if there is one."""
    return _median(input, dim, keepdim, False, "median")


def nanmedian(input, dim=None, keepdim=False):  # noqa: A002
    """``median`` ignoring NaN."""
    return _median(input, dim, keepdim, True, "nanmedian")


def count_nonzero(input, dim=None):  # noqa: A002
    x = _check_tensor(input, "count_nonzero")
    axis = None if dim is None else tuple(_dims(x, dim))
    # (a CUDA tensor: counted on a host copy, the count put back on its device)
    return index_tensor(np.asarray(np.count_nonzero(host_copy(x._data), axis=axis), dtype=np.int64), x)


def _bool_reduce(np_fn, fn):
    def reduce(input, dim=None, keepdim=False):  # noqa: A002
        x = _check_tensor(input, fn)
        axis = None if dim is None else tuple(_dims(x, dim))
        data = host_copy(x._data)  # (a CUDA tensor: reduced on a host copy, the result put back on its device)
        result = np.asarray(np_fn(data, axis=axis, keepdims=keepdim if dim is not None else False))
        return index_tensor(result.astype(np.uint8) if data.dtype == np.uint8 else result, x)  # (torch's uint8 rule)

    reduce.__name__ = fn
    reduce.__doc__ = f"Whether {'all' if fn == 'all' else 'any'} elements (along ``dim``) are nonzero (bool)."
    return reduce


all = _bool_reduce(np.all, "all")  # noqa: A001 - torch's name
any = _bool_reduce(np.any, "any")  # noqa: A001


def aminmax(input, *, dim=None, keepdim=False):  # noqa: A002
    """``(min, max)`` over ``dim`` (all elements if None); gradients as amin and amax."""
    x = _check_tensor(input, "aminmax")
    if x._data.size == 0:
        raise RuntimeError(
            "aminmax(): cannot compute aminmax over an empty dimension as the operation has no identity."
        )
    if dim is None and keepdim:
        dims = tuple(range(x.ndim))
        return aminmax_result(ops.amin(x, dims, keepdim=True), ops.amax(x, dims, keepdim=True))
    return aminmax_result(ops.amin(x, dim, keepdim=keepdim), ops.amax(x, dim, keepdim=keepdim))


# --- norms ------------------------------------------------------------------------------------------------------


class _NuclearNorm(Function):
    """Sum of the singular values of a matrix (LAPACK through numpy); its gradient is ``U V^T``."""

    _grad_fn_name = "LinalgMatrixNormBackward0"

    @staticmethod
    def forward(ctx, x, keepdim):
        u, s, vt = lapack_svd(x._data, full_matrices=False)
        ctx.save_for_backward(x)
        ctx.uvt = u @ vt
        ctx.keepdim = keepdim
        return wrap_array(np.asarray(s.sum()).reshape((1, 1) if keepdim else ()))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return ops.reshape(g, ()) * _NuclearNormGrad.apply(x, ctx.uvt), None

    @staticmethod
    def jvp(ctx, t, _):
        out = ops.sum(t * wrap_array(ctx.uvt))
        return ops.reshape(out, (1, 1)) if ctx.keepdim else out


class _NuclearNormGrad(Function):
    """``U V^T`` as a node, so that a second derivative raises instead of taking it as a constant (the
    derivative of the SVD factors belongs to ``ad.linalg``)."""

    _grad_fn_name = "LinalgSvdBackward0"

    @staticmethod
    def forward(ctx, x, uvt):
        return wrap_array(uvt.copy())

    @staticmethod
    def backward(ctx, g):
        raise NotImplementedError("the second derivative of norm(p='nuc') is not implemented in ad")

    @staticmethod
    def jvp(ctx, t, _):
        raise NotImplementedError("the second derivative of norm(p='nuc') is not implemented in ad")


def _safe_root(s, p):
    """``s ** (1 / p)`` with a zero gradient where ``s`` is 0 (torch's norm backward masks those)."""
    zero = s._data == 0
    if not zero.any():
        return ops.sqrt(s) if p == 2 else ops.pow(s, 1.0 / p)
    z = wrap_array(zero)
    safe = ops.where(z, ops.ones_like(s), s)
    root = ops.sqrt(safe) if p == 2 else ops.pow(safe, 1.0 / p)
    return ops.where(z, ops.zeros_like(s), root)


def _abs_pow(x, p):
    """``|x| ** p`` with a zero gradient at ``x = 0`` (for ``p < 1`` the power's derivative is infinite)."""
    a = ops.abs(x)
    zero = x._data == 0
    if not zero.any():
        return ops.pow(a, p)
    z = wrap_array(zero)
    return ops.where(z, ops.zeros_like(a), ops.pow(ops.where(z, ops.ones_like(a), a), p))


def norm(input, p="fro", dim=None, keepdim=False, dtype=None):  # noqa: A002
    """torch.norm: the vector ``p``-norm over ``dim`` (all elements if None) for a number ``p`` (inf, -inf,
    0, 1, 2, any other), ``'fro'`` (the 2-norm of the elements), ``'nuc'`` (sum of singular values, 2-D)."""
    x = _check_tensor(input, "norm")
    if dtype is not None:
        x = x.to(dtype)
    if x._data.dtype.kind != "f":
        raise RuntimeError(
            f"linalg.vector_norm: Expected a floating point or complex tensor as input. Got "
            f"{ops._torch_dtype(x.dtype).capitalize()}"
        )
    if p is None:
        p = "fro"
    if p == "nuc":
        if dim is not None and x.ndim == 2 and sorted(_dims(x, dim)) == [0, 1]:
            dim = None  # both dims of a matrix: the same norm
        if dim is not None:
            raise NotImplementedError("norm(p='nuc') of a batch of matrices (dim given) is not implemented in ad")
        if x.ndim != 2:
            raise RuntimeError("linalg.matrix_norm: The input tensor A must have at least 2 dimensions.")
        return _NuclearNorm.apply(x, keepdim)
    if isinstance(p, str):
        if p != "fro":
            raise RuntimeError(f"norm(): unsupported p={p!r} (expected a number, 'fro' or 'nuc')")
        p = 2
    # torch's node is linalg.vector_norm's (LinalgVectorNormBackward0, saving the input and the result): its
    # primitive, whose create_graph rules read the recorded result as torch's (a hook on it runs in every order)
    from .linalg import vector_norm

    if not isinstance(p, numbers.Real):  # (a tuple of dims given as p: torch's error, not float()'s)
        raise TypeError(f"linalg_vector_norm(): argument 'ord' (position 2) must be Number, not {type(p).__name__}")
    return vector_norm(x, float(p), dim, keepdim)


def _vector_norm(x, p, dims, keepdim):
    if p == 2:
        return _safe_root(ops.sum(x * x, dims, keepdim=keepdim), 2)
    if p == 1:
        return ops.sum(ops.abs(x), dims, keepdim=keepdim)
    if p == math.inf:
        return ops.amax(ops.abs(x), dims, keepdim=keepdim)
    if p == -math.inf:
        return ops.amin(ops.abs(x), dims, keepdim=keepdim)
    if p == 0:
        count = np.sum(x._data != 0, axis=tuple(dims), keepdims=keepdim).astype(x._data.dtype)
        return ops.sum(ops.overwritten(x, 0.0), dims, keepdim=keepdim) + wrap_array(count)  # zero gradient, connected
    return _safe_root(ops.sum(_abs_pow(x, p), dims, keepdim=keepdim), p)


def dist(input, other, p=2):  # noqa: A002
    """``norm(input - other, p)`` over all elements."""
    x = _check_tensor(input, "dist")
    return guard(norm(x - other, p), "DistBackward0", x, other)


_OUT = (
    "lgamma digamma polygamma cumsum cumprod cummax cummin logcumsumexp nansum nanmean median nanmedian all any "
    "aminmax norm dist"
).split()
for _name in _OUT:
    globals()[_name] = with_out(globals()[_name])
