"""Distances and similarities: ``pairwise_distance``, ``cosine_similarity``, ``normalize``, ``cdist``, ``pdist``.

The p-norms are composites with a zero gradient where the norm is zero (torch's convention; the plain
``sqrt(sum(x * x))`` would give ``0 * inf = nan`` there): the square root is taken of a value that is
replaced by 1 where the sum is 0, and the result masked back to 0.
"""

import numpy as np

from ... import cuda as _cuda
from ... import ops, reductions
from ...ops.out import write_result
from ...saved import guard
from ...tensor import Tensor, wrap_array
from .activation import _part


def _zero(x):
    return wrap_array(np.zeros((), x.dtype))


def _vector_norm(x, p, dim, keepdim=False):
    """``||x||_p`` over ``dim`` (p = 0, 1, 2, inf, -inf or any positive float), 0-safe gradients."""
    p = float(p)
    if p == 2.0:
        s = ops.sum(x * x, dim, keepdim=keepdim)
        pos = ~(s <= 0)  # (NaN too: the norm of a vector with a NaN is NaN, not the 0 of the zero vector)
        return ops.where(pos, ops.sqrt(_part(pos, s, 1.0)), _zero(s))
    a = ops.abs(x)
    if p == 1.0:
        return ops.sum(a, dim, keepdim=keepdim)
    if p == float("inf"):
        return ops.amax(a, dim, keepdim=keepdim)
    if p == float("-inf"):
        return ops.amin(a, dim, keepdim=keepdim)
    if p == 0.0:  # the count of nonzeros, connected to x with a zero gradient (torch's result requires grad)
        return reductions._vector_norm(x, 0, (dim,), keepdim)
    if p < 0:
        raise RuntimeError(f"norm: p must be non-negative (got {p})")
    nz = ~(a <= 0)  # (NaN elements count: NaN, not dropped as zeros)
    s = ops.sum(ops.where(nz, _part(nz, a, 1.0) ** p, _zero(a)), dim, keepdim=keepdim)
    pos = ~(s <= 0)
    return ops.where(pos, _part(pos, s, 1.0) ** (1.0 / p), _zero(s))


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """``||x1 - x2 + eps||_p`` over the last dim (broadcasting x1 and x2), as torch."""
    for name, t in (("x1", x1), ("x2", x2)):
        if not isinstance(t, Tensor):
            raise TypeError(f"pairwise_distance(): argument '{name}' must be Tensor, not {type(t).__name__}")
    nd = max(x1.ndim, x2.ndim)
    if nd == 0:
        raise RuntimeError("pairwise_distance: inputs must have at least 1 dimension")
    return guard(_vector_norm(x1 - x2 + eps, p, -1, keepdim), "NormBackward1", result=True)  # (x1 - x2 + eps's)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """``sum(x1 * x2) / (max(||x1||, eps) * max(||x2||, eps))`` over ``dim``; the norms are clamped outside
    the graph, as torch does (the gradient is that of the unclamped quotient)."""
    shape = np.broadcast_shapes(x1.shape, x2.shape)
    if x1.shape != shape:
        x1 = ops.expand(x1, *shape)
    if x2.shape != shape:
        x2 = ops.expand(x2, *shape)
    n1 = _vector_norm(x1, 2, dim, keepdim=True)
    n2 = _vector_norm(x2, 2, dim, keepdim=True)
    n1 = n1 + _eps_shift(n1, eps)
    n2 = n2 + _eps_shift(n2, eps)
    return ops.sum((x1 / n1) * (x2 / n2), dim)


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):  # noqa: A002 - torch's names
    """``input / max(||input||_p, eps)`` over ``dim``."""
    if not isinstance(input, Tensor):
        raise TypeError(f"normalize(): argument 'input' must be Tensor, not {type(input).__name__}")
    norm = ops.clamp(_vector_norm(input, p, dim, keepdim=True), min=eps)
    return write_result("div", input / norm, out)  # (torch's: div's out=)


def cdist(x1, x2, p=2.0, compute_mode="use_mm_for_euclid_dist_if_necessary"):
    """Distances between the rows of ``x1`` (B, P, M) and ``x2`` (B, R, M): (B, P, R) (batch dims optional)."""
    for name, t in (("x1", x1), ("x2", x2)):
        if not isinstance(t, Tensor):
            raise TypeError(f"cdist(): argument '{name}' must be Tensor, not {type(t).__name__}")
    if x1.ndim < 2 or x2.ndim < 2:
        raise RuntimeError(f"cdist only supports at least 2D tensors, X1 got: {x1.ndim}D")
    if x1.shape[-1] != x2.shape[-1]:
        raise RuntimeError(
            f"X1 and X2 must have the same number of columns. X1: {x1.shape[-1]} X2: {x2.shape[-1]}"
        )
    if p < 0:
        raise RuntimeError(f"cdist only supports non-negative p values, got {p}")
    if x1.dtype.kind != "f" or x2.dtype.kind != "f":
        raise RuntimeError(f"cdist only supports floating-point dtypes, X1 got: {x1.dtype}")
    diff = ops.unsqueeze(x1, -2) - ops.unsqueeze(x2, -3)  # (B, P, R, M)
    return guard(_vector_norm(diff, p, -1), "CdistBackward0", x1, x2)


def _eps_shift(n, eps):
    """``max(n, eps) - n`` as a constant on ``n``'s device (computed on the host)."""
    nd = _cuda.host_copy(n._data)
    return _cuda.index_tensor(np.maximum(nd, eps) - nd, n)


def pdist(input, p=2):  # noqa: A002 - torch's name
    """Distances between every pair of rows ``i < j`` of ``input`` (N, M): ``(N * (N - 1) / 2,)``, in the row-major
    order of the upper triangle (torch's). The rows of each pair are gathered by index maps; the norm has a zero
    gradient where two rows coincide (torch's convention).

    Raises: RuntimeError (torch's messages) for an input that is not 2-D or not floating point, or a negative p.
    Example: ``F.pdist(ad.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]])).tolist()`` is
    ``[5.0, 1.0, 4.242640687119285]``.
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"pdist(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
    if input.ndim != 2:
        raise RuntimeError(f"pdist only supports 2D tensors, got: {input.ndim}D")
    if input.dtype.kind != "f":
        raise RuntimeError("pdist only supports floating-point dtypes")
    if p < 0:
        raise RuntimeError("pdist only supports non-negative p values")
    n, m = input.shape
    first, second = np.triu_indices(n, 1)
    rows = np.arange(m, dtype=np.int64)
    left = ops.gather_map(input, (len(first), m), first[:, None] * m + rows)
    right = ops.gather_map(input, (len(first), m), second[:, None] * m + rows)
    return _vector_norm(left - right, p, -1)  # (the differences live on the tape: in-place writes to input are safe)
