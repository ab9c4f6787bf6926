"""``ad.linalg``: torch.linalg's functions, names, signatures and returns (named tuples where torch has them).

The differentiable primitives (inverse, solve, determinants, Cholesky, eigh, SVD, QR, matrix_exp, pinv,
triangular solve, vector norm) live in ``ad/ops/linalg.py``; this module checks arguments as torch does,
broadcasts batches, and builds the rest as composites of those primitives (matrix norms, lstsq,
matrix_power, multi_dot, vander, cross, ...). Functions that read values on the host (pivots, ``info``
codes, ranks) take CUDA operands through the recorded host round trip (``@on_host``, ``ad/cuda/solver.py``).
"""

import collections
import math
import numbers

import numpy as np

from . import ops
from .cuda.solver import on_host
from .ops import linalg as P
from .ops.linalg import (
    LinAlgError,
    check_float,
    check_matrix,
    check_square,
    check_tensor,
    lapack_svd,
    mT,
    torch_dtype_name,
)
from .ops.out import write_result
from .saved import guard
from .tensor import Tensor, _wrap_dim, wrap_array

__all__ = [
    "LinAlgError",
    "cholesky",
    "cholesky_ex",
    "cond",
    "cross",
    "det",
    "eigh",
    "eigvalsh",
    "inv",
    "inv_ex",
    "lstsq",
    "matmul",
    "matrix_exp",
    "matrix_norm",
    "matrix_power",
    "matrix_rank",
    "multi_dot",
    "norm",
    "pinv",
    "qr",
    "slogdet",
    "solve",
    "solve_triangular",
    "svd",
    "svdvals",
    "vander",
    "vecdot",
    "vector_norm",
]

# torch.return_types.*
InvEx = collections.namedtuple("linalg_inv_ex", ["inverse", "info"])
CholeskyEx = collections.namedtuple("linalg_cholesky_ex", ["L", "info"])
Slogdet = collections.namedtuple("linalg_slogdet", ["sign", "logabsdet"])
Eigh = collections.namedtuple("linalg_eigh", ["eigenvalues", "eigenvectors"])
Svd = collections.namedtuple("linalg_svd", ["U", "S", "Vh"])
Qr = collections.namedtuple("linalg_qr", ["Q", "R"])
Lstsq = collections.namedtuple("linalg_lstsq", ["solution", "residuals", "rank", "singular_values"])


def _common_batch(A, B, name):
    """Expand ``A`` (..., m, n) and ``B`` (..., p, k) to one broadcast batch (differentiable)."""
    ba, bb = tuple(A.shape[:-2]), tuple(B.shape[:-2])
    if ba == bb:
        return A, B
    try:
        batch = tuple(np.broadcast_shapes(ba, bb))
    except ValueError:
        raise RuntimeError(
            f"{name}: The size of tensor a ({ba[-1] if ba else 1}) must match the size of tensor b "
            f"({bb[-1] if bb else 1}) at non-singleton dimension"
        ) from None
    return ops.expand(A, batch + tuple(A.shape[-2:])), ops.expand(B, batch + tuple(B.shape[-2:]))


def _same_dtype(name, A, B):
    if A.dtype != B.dtype:
        raise RuntimeError(
            f"{name}: Expected A and B to have the same dtype, but found A of type {torch_dtype_name(A.dtype)} "
            f"and B of type {torch_dtype_name(B.dtype)} instead"
        )


# ---------------------------------------------------------------------------------------------------------
# inverses and solves


def inv(A, *, out=None):
    """Inverse of (batches of) square matrices.

    Raises:
        LinAlgError: ``A`` is singular (names the batch element and the zero pivot, as torch).

    Example:
        >>> ad.linalg.inv(ad.tensor([[2.0, 0.0], [0.0, 4.0]]))
        tensor([[0.5 , 0.  ],
                [0.  , 0.25]])
    """
    check_square("linalg.inv", A)
    return write_result("linalg_inv_ex", P.inv(A), out, same_dtype=True)


@on_host
def inv_ex(A, *, check_errors=False, out=None):
    """``(inverse, info)``: ``info`` is the first zero pivot (1-based) per matrix, 0 where ``A`` is invertible;
    singular matrices give NaN inverses unless ``check_errors`` (then LinAlgError)."""
    check_square("linalg.inv_ex", A)
    a = A._data
    info = np.zeros(a.shape[:-2], np.int32)
    for idx in np.ndindex(a.shape[:-2]):
        info[idx] = P._first_zero_pivot(a[idx])
    if not info.any():
        result = InvEx(P.inv(A), wrap_array(info))
    elif check_errors:
        raise P._singular_inv_error("linalg.inv_ex", a)
    else:
        good = np.where((info == 0)[..., None, None], a, np.eye(a.shape[-1], dtype=a.dtype))
        inverse = np.where((info == 0)[..., None, None], np.linalg.inv(good), np.nan).astype(a.dtype)
        result = InvEx(wrap_array(inverse), wrap_array(info))
    return write_result("linalg_inv_ex", result, out, same_dtype=True)


def _vector_rhs(A, B):
    """torch.linalg.solve's rule: ``B`` is a (batch of) vector(s) when it has one dimension less than ``A``
    and matches A's batch, or when it is 1-D."""
    return B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1]))


def solve(A, B, *, left=True, out=None):
    """``X`` with ``A X = B`` (``X A = B`` when ``left=False``); batches broadcast; ``B`` may be a vector."""
    check_square("linalg.solve", A)
    check_tensor("linalg.solve", B, "B")
    _same_dtype("linalg.solve", A, B)
    vector = _vector_rhs(A, B)
    if vector:
        B = ops.unsqueeze(B, -1 if left else -2)
    if B.shape[-2 if left else -1] != A.shape[-1]:
        raise RuntimeError(
            f"linalg.solve: Incompatible shapes of A and B for the equation {'AX = B' if left else 'XA = B'} "
            f"({A.shape[-2]}x{A.shape[-1]} and {B.shape[-2]}x{B.shape[-1]})"
        )
    if not left:
        A, B = mT(A), mT(B)
    A, B = _common_batch(A, B, "linalg.solve")
    X = P.solve_matrix(A, B)
    if not left:
        X = mT(X)
    if vector:
        X = ops.squeeze(X, -1 if left else -2)
    return write_result("linalg_solve", X, out, same_dtype=True)


def solve_triangular(input, B, *, upper, left=True, unitriangular=False, out=None):
    """``X`` with ``A X = B`` (or ``X A = B``), reading only the ``upper`` or lower triangle of ``A``."""
    check_matrix("linalg.solve_triangular", input)
    check_matrix("linalg.solve_triangular", B, "B")
    _same_dtype("linalg.solve_triangular", input, B)
    if input.shape[-1] != input.shape[-2]:
        raise RuntimeError(
            f"linalg.solve_triangular: A must be batches of square matrices, but they are {input.shape[-2]} by "
            f"{input.shape[-1]} matrices"
        )
    n = input.shape[-1]
    if B.shape[-2 if left else -1] != n:
        raise RuntimeError(
            f"linalg.solve_triangular: Incompatible shapes of A and B for the equation "
            f"{'AX = B' if left else 'XA = B'} ({n}x{n} and {B.shape[-2]}x{B.shape[-1]})"
        )
    if not left:  # X A = B  <=>  A^T X^T = B^T, with the other triangle
        input, B, upper = mT(input), mT(B), not upper
    input, B = _common_batch(input, B, "linalg.solve_triangular")
    X = P.solve_tri(input, B, upper, unitriangular)
    return write_result("linalg_solve_triangular", X if left else mT(X), out, same_dtype=True)


def cholesky(input, *, upper=False, out=None):
    """Cholesky factor of symmetric positive-definite ``A`` (lower; ``upper=True`` gives ``L^T``)."""
    check_square("linalg.cholesky", input)
    L = P.cholesky_lower(input)
    return write_result("linalg_cholesky", mT(L) if upper else L, out, same_dtype=True)


@on_host
def cholesky_ex(input, *, upper=False, check_errors=False, out=None):
    """``(L, info)``: ``info`` is the order of the first leading minor that is not positive-definite (0: none)."""
    check_square("linalg.cholesky_ex", input)
    a = input._data
    info = np.zeros(a.shape[:-2], np.int32)
    for idx in np.ndindex(a.shape[:-2]):
        info[idx] = max(P._not_pd_order(a[idx]), 0)
    if not info.any():
        L = P.cholesky_lower(input)
        result = CholeskyEx(mT(L) if upper else L, wrap_array(info))
    elif check_errors:
        raise P.not_pd_error("linalg.cholesky_ex", a)
    else:
        eye = np.eye(a.shape[-1], dtype=a.dtype)
        good = np.where((info == 0)[..., None, None], a, eye)
        L = np.where((info == 0)[..., None, None], np.linalg.cholesky(good), np.nan).astype(a.dtype)
        result = CholeskyEx(wrap_array(np.swapaxes(L, -1, -2).copy() if upper else L), wrap_array(info))
    return write_result("linalg_cholesky_ex", result, out, same_dtype=True)


def cholesky_solve(B, L, upper=False, *, out=None):
    """``X`` with ``(L L^T) X = B`` given the Cholesky factor ``L`` (``upper``: ``U^T U``); batches broadcast."""
    check_matrix("cholesky_solve", B, "B")
    check_matrix("cholesky_solve", L, "L")
    _same_dtype("cholesky_solve", L, B)
    if L.shape[-1] != L.shape[-2]:
        raise RuntimeError(
            f"cholesky_solve: A must be batches of square matrices, but they are {L.shape[-2]} by "
            f"{L.shape[-1]} matrices"
        )
    Lb, Bb = _common_batch(L, B, "cholesky_solve")
    if upper:
        Y = P.solve_tri(mT(Lb), Bb, False)
        X = P.solve_tri(Lb, Y, True)
    else:
        Y = P.solve_tri(Lb, Bb, False)
        X = P.solve_tri(mT(Lb), Y, True)
    return write_result("cholesky_solve", guard(X, "CholeskySolveBackward0", B, L), out, same_dtype=True)


def pinv(input, rcond=None, hermitian=False, *, atol=None, rtol=None, out=None):
    """Moore-Penrose pseudo-inverse; singular values below ``max(atol, rtol * s_max)`` are dropped (default
    ``rtol = max(m, n) * eps`` when neither is given, as torch). torch's older form ``pinv(A, rcond)`` is
    ``rtol=rcond, atol=0``."""
    if rcond is not None:
        atol, rtol = _legacy_tolerance("pinv", "rcond", atol, rtol, 0.0, rcond)
    check_matrix("linalg.pinv", input)
    m, n = input.shape[-2:]
    a_tol = atol._data if isinstance(atol, Tensor) else (0.0 if atol is None else atol)
    if rtol is None:
        r_tol = max(m, n) * np.finfo(input.dtype).eps if (atol is None or np.all(np.asarray(a_tol) <= 0)) else 0.0
    else:
        r_tol = rtol._data if isinstance(rtol, Tensor) else rtol
    return write_result("linalg_pinv", P.pinv(input, a_tol, r_tol, hermitian), out, same_dtype=True)


@on_host
def lstsq(input, b, rcond=None, *, driver=None):
    """Least-squares solution of ``A X = B`` as ``(solution, residuals, rank, singular_values)``.

    The solution is ``pinv(A) @ B`` (differentiable, as torch's derivative is). ``rank`` is given by every
    driver but ``gels``, ``singular_values`` by ``gelsd`` and ``gelss``, ``residuals`` (squared residual norms)
    when m > n, ``A`` has full rank and the driver is not ``gelsy`` (torch's CPU default).
    """
    check_matrix("linalg.lstsq", input)
    check_tensor("linalg.lstsq", b, "B")
    _same_dtype("linalg.lstsq", input, b)
    drivers = ("gels", "gelsy", "gelsd", "gelss")
    if driver is None:
        driver = "gelsy"
    if driver not in drivers:
        raise RuntimeError(
            f"torch.linalg.lstsq: parameter `driver` should be one of (gels, gelsy, gelsd, gelss), but got {driver}"
        )
    vector = b.ndim == input.ndim - 1
    Bm = ops.unsqueeze(b, -1) if vector else b
    if Bm.shape[-2] != input.shape[-2]:
        raise RuntimeError(
            f"torch.linalg.lstsq: input.size(-2) should match other.size(-2) ({input.shape[-2]} != {Bm.shape[-2]})"
        )
    m, n = input.shape[-2:]
    eps = np.finfo(input.dtype).eps
    rc = max(m, n) * eps if rcond is None else rcond
    Ab, Bb = _common_batch(input, Bm, "linalg.lstsq")
    X = guard(P.pinv(Ab, 0.0, rc, False) @ Bb, "LinalgLstsqBackward0", input, b)
    s = np.linalg.svd(input._data, compute_uv=False)
    smax = s[..., :1] if s.shape[-1] else np.zeros(s.shape[:-1] + (1,), s.dtype)
    rank = np.sum(s > rc * smax, axis=-1).astype(np.int64)
    empty = wrap_array(np.empty((0,), input.dtype))
    residuals = empty
    if m > n and driver != "gelsy" and np.all(rank == n):
        r = Ab._data @ X._data - Bb._data
        residuals = wrap_array(np.sum(r * r, axis=-2))
        if vector:
            residuals = wrap_array(residuals._data[..., 0])
    rank_t = wrap_array(np.empty((0,), np.int64)) if driver == "gels" else wrap_array(rank)
    sv = wrap_array(s) if driver in ("gelsd", "gelss") else empty
    return Lstsq(ops.squeeze(X, -1) if vector else X, residuals, rank_t, sv)


# ---------------------------------------------------------------------------------------------------------
# determinants


def det(A, *, out=None):
    check_square("linalg.det", A)
    return write_result("linalg_det", P.det(A), out, same_dtype=True)


def slogdet(A, *, out=None):
    """``(sign, logabsdet)`` with ``det(A) = sign * exp(logabsdet)``; differentiable in ``logabsdet``."""
    check_square("linalg.slogdet", A)
    return write_result("linalg_slogdet", Slogdet(*P.slogdet(A)), out, same_dtype=True)


@on_host
def logdet(A):
    """``log(det(A))``: NaN where the determinant is negative, -inf where it is 0 (as torch)."""
    check_square("logdet", A)
    sign, logabsdet = P.slogdet(A)
    neg = wrap_array(sign._data < 0)
    return ops.where(neg, wrap_array(np.full(neg.shape, np.nan, A.dtype)), logabsdet)


# ---------------------------------------------------------------------------------------------------------
# decompositions


def _check_uplo(UPLO):
    if not isinstance(UPLO, str) or UPLO.upper() not in ("L", "U") or len(UPLO) != 1:
        raise RuntimeError(f"Expected UPLO argument to be 'L' or 'U', but got {UPLO}")
    return UPLO.upper()


def eigh(input, UPLO="L", *, out=None):
    """Eigenvalues (ascending) and orthonormal eigenvectors of symmetric ``A`` (reading its ``UPLO`` triangle).

    The gradient is torch's: it assumes a symmetric input and is not finite for repeated eigenvalues.
    """
    check_square("linalg.eigh", input)
    return write_result("linalg_eigh", Eigh(*P.eigh(input, _check_uplo(UPLO))), out, same_dtype=True)


def eigvalsh(input, UPLO="L", *, out=None):
    check_square("linalg.eigvalsh", input)
    return write_result("linalg_eigvalsh", P.eigh(input, _check_uplo(UPLO))[0], out, same_dtype=True)


def svd(A, full_matrices=True, *, driver=None, out=None):
    """``(U, S, Vh)`` with ``A = U diag(S) Vh``; ``S`` descending. ``driver`` (CUDA only in torch) is ignored."""
    check_matrix("linalg.svd", A)
    return write_result("linalg_svd", Svd(*P.svd(A, full_matrices)), out, same_dtype=True)


def svdvals(A, *, driver=None, out=None):
    check_matrix("linalg.svdvals", A)
    return write_result("linalg_svdvals", P.svd(A, False)[1], out, same_dtype=True)


def qr(A, mode="reduced", *, out=None):
    """``(Q, R)`` with ``A = Q R``; ``mode`` is ``'reduced'``, ``'complete'`` or ``'r'`` (then Q is empty)."""
    check_matrix("linalg.qr", A)
    if mode not in ("reduced", "complete", "r"):
        raise RuntimeError(
            f"qr received unrecognized mode '{mode}' but expected one of 'reduced' (default), 'r', or 'complete'"
        )
    return write_result("linalg_qr", Qr(*P.qr(A, mode)), out, same_dtype=True)


def _legacy_tolerance(fn, name, atol, rtol, new_atol, new_rtol):
    """``(atol, rtol)`` of torch's older one-tolerance form (``pinv(A, rcond)``, ``matrix_rank(A, tol)``)."""
    if atol is not None or rtol is not None:
        raise TypeError(f"linalg.{fn}(): give either {name} or atol/rtol, not both")
    return new_atol, new_rtol


@on_host
def matrix_rank(input, tol=None, hermitian=False, *, atol=None, rtol=None, out=None):
    """Number of singular values above ``max(atol, rtol * s_max)`` (torch's defaults); int64, not differentiable.
    torch's older form ``matrix_rank(A, tol)`` is ``atol=tol, rtol=0``."""
    if tol is not None:
        atol, rtol = _legacy_tolerance("matrix_rank", "tol", atol, rtol, tol, 0.0)
    check_matrix("linalg.matrix_rank", input)
    a = input._data
    s = np.abs(np.linalg.eigvalsh(a)) if hermitian else lapack_svd(a, compute_uv=False)
    a_tol = np.asarray(atol._data if isinstance(atol, Tensor) else (0.0 if atol is None else atol))
    if rtol is None:
        rtol = max(a.shape[-2:]) * np.finfo(a.dtype).eps if (atol is None or np.all(a_tol <= 0)) else 0.0
    r_tol = np.asarray(rtol._data if isinstance(rtol, Tensor) else rtol)
    smax = np.max(s, axis=-1) if s.shape[-1] else np.zeros(s.shape[:-1], s.dtype)
    cut = np.maximum(a_tol, r_tol * smax)
    return write_result("linalg_matrix_rank", wrap_array(np.sum(s > cut[..., None], axis=-1).astype(np.int64)), out)


def matrix_exp(input):
    check_square("linalg.matrix_exp", input)
    return P.matrix_exp(input)


def matrix_power(input, n, *, out=None):
    """``A^n`` by repeated squaring; negative ``n`` inverts first; ``n = 0`` gives identities."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"linalg_matrix_power(): argument 'n' (position 2) must be int, not {type(n).__name__}")
    check_tensor("linalg.matrix_power", input)
    if input.ndim < 2 or input.shape[-1] != input.shape[-2]:
        raise RuntimeError(
            "linalg.matrix_power: A must be batches of square matrices, but they are "
            + (f"{input.shape[-2]} by {input.shape[-1]} matrices" if input.ndim >= 2 else f"{input.ndim}-D tensors")
        )
    if n == 0:
        result = ops.expand(wrap_array(np.eye(input.shape[-1], dtype=input.dtype)), tuple(input.shape))
        if input.requires_grad:  # torch's result stays in the graph (a zero gradient; not input * 0: inf, nan)
            result = ops.overwritten(input, result)
        else:
            result = wrap_array(np.array(result._data))
        return write_result("linalg_matrix_power", result, out, same_dtype=True)
    if n < 0:
        input = inv(input)
        n = -n
    result = None
    base = input
    while n:
        if n & 1:
            result = base if result is None else result @ base
        n >>= 1
        if n:
            base = base @ base
    return write_result("linalg_matrix_power", result, out, same_dtype=True)


# ---------------------------------------------------------------------------------------------------------
# norms


def _norm_dims(x, dim):
    if dim is None:
        return tuple(range(x.ndim))
    dims = (dim,) if isinstance(dim, numbers.Integral) else tuple(dim)
    out = tuple(sorted(_wrap_dim(d, x.ndim) for d in dims))
    if len(set(out)) != len(out):
        raise RuntimeError("linalg.vector_norm: dim appears multiple times in the list of dims")
    return out


def vector_norm(input, ord=2, dim=None, keepdim=False, *, dtype=None, out=None):
    """``(sum |x|^ord)^(1/ord)`` over ``dim`` (all by default, flattening); ``ord`` may be inf, -inf, 0.

    The gradient at 0 is torch's subgradient (0 for ord = 2).
    """
    check_tensor("linalg.vector_norm", input, "x")
    if isinstance(ord, str) or not isinstance(ord, numbers.Real):
        raise TypeError(f"linalg_vector_norm(): argument 'ord' must be Number, not {type(ord).__name__}")
    if dtype is not None:
        want = np.dtype(dtype)
        if input.dtype.kind == "f" and want.kind == "f" and want.itemsize < input.dtype.itemsize:
            raise RuntimeError(
                f"linalg.vector_norm: the dtype of the input ({torch_dtype_name(input.dtype)}) should be convertible "
                f"without narrowing to the specified dtype ({torch_dtype_name(want)})"
            )
        input = input.to(dtype)
    if input.dtype.kind != "f":
        raise RuntimeError(
            "linalg.vector_norm: Expected a floating point or complex tensor as input. Got "
            f"{torch_dtype_name(input.dtype)}"
        )
    dims = _norm_dims(input, dim)
    if input.ndim == 0:
        # the primitive over one element (torch's node saves the result also here: a hook on it runs in every
        # order of create_graph)
        r = P.vector_norm_keepdim(ops.reshape(input, (1,)), ord, (0,))
        return write_result("linalg_vector_norm", P.publish_result(r, ops.reshape(r, ())), out, same_dtype=True)
    if ord < 0 and any(input.shape[d] == 0 for d in dims):
        raise RuntimeError(
            f"linalg.vector_norm cannot compute the {ord} norm on an empty tensor because the operation does not "
            "have an identity"
        )
    r = P.vector_norm_keepdim(input, ord, dims)
    if not keepdim:
        r = P.publish_result(r, ops.reshape(r, tuple(s for k, s in enumerate(r.shape) if k not in dims)))
    return write_result("linalg_vector_norm", r, out, same_dtype=True)


def matrix_norm(input, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None, out=None):
    """Matrix norms over the two dims ``dim``: ``'fro'``, ``'nuc'``, inf, -inf, 1, -1, 2, -2."""
    check_tensor("linalg.matrix_norm", input)
    if dtype is not None:
        input = input.to(dtype)
    if input.ndim < 2:
        raise RuntimeError("linalg.matrix_norm: The input tensor A must have at least 2 dimensions.")
    check_float("linalg.matrix_norm", input)
    d0, d1 = (_wrap_dim(d, input.ndim) for d in dim)
    if d0 == d1:
        raise RuntimeError(f"linalg.matrix_norm: dims must be different. Got ({dim[0]}, {dim[1]})")
    if ord == "fro":
        r = vector_norm(input, 2, (d0, d1), keepdim)
        return write_result("linalg_matrix_norm", r, out, same_dtype=True)
    if ord not in ("nuc", 2, -2, 1, -1, math.inf, -math.inf):
        raise RuntimeError(f"linalg.matrix_norm: Order {ord} not supported.")
    if ord in ("nuc", 2, -2):
        moved = ops.permute(input, [k for k in range(input.ndim) if k not in (d0, d1)] + [d0, d1])
        s = P.svd(moved, False)[1]
        r = ops.sum(s, -1) if ord == "nuc" else ops.amax(s, -1) if ord == 2 else ops.amin(s, -1)
        if keepdim:
            r = ops.unsqueeze(ops.unsqueeze(r, min(d0, d1)), max(d0, d1))
    else:
        # inf / -inf: max / min absolute row sum; 1 / -1: max / min absolute column sum
        sum_dim, red_dim = (d1, d0) if ord in (math.inf, -math.inf) else (d0, d1)
        s = ops.sum(ops.abs(input), sum_dim, keepdim=True)
        r = ops.amax(s, red_dim, keepdim=True) if ord > 0 else ops.amin(s, red_dim, keepdim=True)
        if not keepdim:
            r = ops.squeeze(r, (d0, d1))
    return write_result("linalg_matrix_norm", r, out, same_dtype=True)


def norm(input, ord=None, dim=None, keepdim=False, *, out=None, dtype=None):  # noqa: A002 - torch's name
    """torch.linalg.norm: a vector norm or a matrix norm depending on ``ord`` and ``dim``."""
    check_tensor("linalg.norm", input)
    if dim is not None and not isinstance(dim, numbers.Integral):
        dim = tuple(dim)
    if ord is None:
        if dim is None or isinstance(dim, numbers.Integral) or len(dim) == 1:
            return vector_norm(input, 2, dim, keepdim, dtype=dtype, out=out)
        return matrix_norm(input, "fro", dim, keepdim, dtype=dtype, out=out)
    if dim is None:
        if input.ndim not in (1, 2):
            raise RuntimeError(
                f"linalg.norm: If dim is not specified but ord is, the input must be 1D or 2D. Got {input.ndim}D."
            )
        dim = (0,) if input.ndim == 1 else (0, 1)
    if isinstance(dim, numbers.Integral) or len(dim) == 1:
        if isinstance(ord, str):
            raise RuntimeError(f"linalg.vector_norm: Order {ord} not supported.")
        return vector_norm(input, ord, dim, keepdim, dtype=dtype, out=out)
    return matrix_norm(input, ord, dim, keepdim, dtype=dtype, out=out)


def cond(input, p=None):
    """Condition number ``||A||_p ||A^{-1}||_p`` (``p=None``: 2-norm, the ratio of extreme singular values)."""
    check_matrix("linalg.cond", input)
    if p in (None, 2, -2):
        s = svdvals(input)
        r = ops.amax(s, -1) / ops.amin(s, -1)
        return r if p != -2 else 1.0 / r
    return matrix_norm(input, p) * matrix_norm(inv(input), p)


# ---------------------------------------------------------------------------------------------------------
# products


def matmul(input, other, *, out=None):
    return write_result("linalg_matmul", ops.matmul(input, other), out, same_dtype=True)


def vecdot(x, y, *, dim=-1, out=None):
    """``sum(x * y, dim)`` with broadcasting (real inputs: no conjugation needed)."""
    return write_result("linalg_vecdot", ops.sum(x * y, dim), out, same_dtype=True)


def multi_dot(tensors, *, out=None):
    """``A_1 @ A_2 @ ... @ A_k`` (the first and last may be vectors), multiplied in the cheapest order."""
    tensors = list(tensors)
    if len(tensors) < 2:
        raise RuntimeError(f"multi_dot(): expected at least 2 tensors but got {len(tensors)}")
    for i, t in enumerate(tensors):
        check_tensor("multi_dot", t, "tensors")
        nd_ok = t.ndim == 2 or (t.ndim == 1 and i in (0, len(tensors) - 1))
        if not nd_ok:
            what = "first" if i == 0 else "last" if i == len(tensors) - 1 else None
            if what:
                raise RuntimeError(f"multi_dot(): the {what} tensor must be 1D or 2D but got {t.ndim}D")
            raise RuntimeError(f"multi_dot(): tensor {i} must be 2D but got {t.ndim}D")
    first_vec = tensors[0].ndim == 1
    last_vec = tensors[-1].ndim == 1
    mats = list(tensors)
    if first_vec:
        mats[0] = ops.unsqueeze(mats[0], 0)
    if last_vec:
        mats[-1] = ops.unsqueeze(mats[-1], 1)
    for i in range(1, len(mats)):
        if mats[i - 1].shape[1] != mats[i].shape[0]:
            raise RuntimeError(
                f"multi_dot(): tensors {i - 1} and {i} with shapes {list(tensors[i - 1].shape)} and "
                f"{list(tensors[i].shape)} cannot be multiplied"
            )
    result = _chain(mats, _chain_order(mats), 0, len(mats) - 1)
    if first_vec and last_vec:
        result = ops.reshape(result, ())
    elif first_vec:
        result = ops.squeeze(result, 0)
    elif last_vec:
        result = ops.squeeze(result, 1)
    return write_result("linalg_multi_dot", result, out, same_dtype=True)


def _chain_order(mats):
    """The classic matrix-chain dynamic programme: split[i][j] is where to split the product of i..j."""
    dims = [m.shape[0] for m in mats] + [mats[-1].shape[1]]
    k = len(mats)
    cost = [[0] * k for _ in range(k)]
    split = [[0] * k for _ in range(k)]
    for length in range(1, k):
        for i in range(k - length):
            j = i + length
            cost[i][j] = None
            for s in range(i, j):
                c = cost[i][s] + cost[s + 1][j] + dims[i] * dims[s + 1] * dims[j + 1]
                if cost[i][j] is None or c < cost[i][j]:
                    cost[i][j] = c
                    split[i][j] = s
    return split


def _chain(mats, split, i, j):
    if i == j:
        return mats[i]
    s = split[i][j]
    return ops.matmul(_chain(mats, split, i, s), _chain(mats, split, s + 1, j))


def vander(x, *, N=None):
    """Vandermonde matrix ``[x^0, x^1, ..., x^(N-1)]`` along a new last dim (torch.linalg's increasing powers)."""
    check_tensor("linalg.vander", x, "x")
    if x.ndim < 1:
        raise RuntimeError("linalg.vander: x must have at least one dimension")
    n = x.shape[-1] if N is None else N
    if n <= 1:
        if n < 1:
            raise RuntimeError("N must be greater than 1.")
        return ops.unsqueeze(ops.ones_like(x), -1)
    cols = [ops.ones_like(x), x]
    for _ in range(n - 2):
        cols.append(cols[-1] * x)
    return ops.stack(cols, -1)


def cross(input, other, *, dim=-1, out=None):
    from .ops.products import cross as _cross

    return write_result("linalg_cross", _cross(input, other, dim=dim, linalg=True), out, same_dtype=True)


# --- complex results (issue 13): ad has no complex dtype, so the functions whose results torch makes complex raise
_NO_COMPLEX = (
    "{name}: torch returns complex {what}, and ad has no complex dtype (complex tensors are left out on purpose: "
    "see the README's op table). For a symmetric (Hermitian) matrix use ad.linalg.{real} instead, whose results "
    "are real."
)


def eig(input, *, out=None):
    """Not available: torch's ``linalg.eig`` returns complex eigenvalues and eigenvectors, and ad has no complex
    dtype. Raises NotImplementedError (``linalg.eigh`` covers symmetric matrices)."""
    raise NotImplementedError(_NO_COMPLEX.format(name="linalg.eig", what="eigenvalues and eigenvectors", real="eigh"))


def eigvals(input, *, out=None):
    """Not available: torch's ``linalg.eigvals`` returns complex eigenvalues (see ``eig``). Raises
    NotImplementedError (``linalg.eigvalsh`` covers symmetric matrices)."""
    raise NotImplementedError(_NO_COMPLEX.format(name="linalg.eigvals", what="eigenvalues", real="eigvalsh"))


__all__ += ["eig", "eigvals"]

# LU, LDL, Householder products, tensor inverses and torch's older spellings: split by concern
from .linalg_factor import (  # noqa: E402
    diagonal,
    householder_product,
    ldl_factor,
    ldl_factor_ex,
    ldl_solve,
    lu,
    lu_factor,
    lu_factor_ex,
    lu_solve,
    solve_ex,
    tensorinv,
    tensorsolve,
)

__all__ += [
    "diagonal",
    "householder_product",
    "ldl_factor",
    "ldl_factor_ex",
    "ldl_solve",
    "lu",
    "lu_factor",
    "lu_factor_ex",
    "lu_solve",
    "solve_ex",
    "tensorinv",
    "tensorsolve",
]
