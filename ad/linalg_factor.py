"""``ad.linalg``'s LU, LDL and Householder functions, tensor inverses and torch's older top-level spellings
(``ad.lu``, ``ad.lu_solve``, ``ad.orgqr``, ``ad.lu_unpack``).

Split from ``ad/linalg.py`` by concern; ``ad.linalg`` re-exports every public name here. The differentiable
primitives (LU with its pivots, triangular solves, LDL) live in ``ad/ops/linalg_lu.py``; this module checks
arguments as torch does, packs and unpacks factorisations and builds the solves as composites.
"""

import collections
import math
import numbers
import warnings

import numpy as np

from . import ops
from .cuda.solver import on_host
from .linalg import _common_batch, _same_dtype, inv, solve
from .ops import linalg as P
from .ops import linalg_lu as PL
from .ops.linalg import LinAlgError, check_square, check_tensor, mT, torch_dtype_name
from .ops.out import write_result
from .ops.view_ops import diagonal as view_diagonal
from .saved import guard
from .tensor import wrap_array

__all__ = [
    "diagonal",
    "geqrf",
    "householder_product",
    "ldl_factor",
    "ldl_factor_ex",
    "ldl_solve",
    "lu",
    "lu_factor",
    "lu_factor_ex",
    "lu_solve",
    "lu_unpack",
    "orgqr",
    "ormqr",
    "solve_ex",
    "tensorinv",
    "tensorsolve",
    "torch_lu",
    "torch_lu_solve",
]


# LU, LDL, Householder products and tensor inverses (primitives in ad/ops/linalg_lu.py)

LU = collections.namedtuple("linalg_lu", ["P", "L", "U"])
LUFactor = collections.namedtuple("linalg_lu_factor", ["LU", "pivots"])
LUFactorEx = collections.namedtuple("linalg_lu_factor_ex", ["LU", "pivots", "info"])
LDLFactor = collections.namedtuple("linalg_ldl_factor", ["LD", "pivots"])
LDLFactorEx = collections.namedtuple("linalg_ldl_factor_ex", ["LD", "pivots", "info"])
SolveEx = collections.namedtuple("linalg_solve_ex", ["result", "info"])
LuUnpack = collections.namedtuple("lu_unpack", ["P", "L", "U"])
LuWithInfo = collections.namedtuple("_lu_with_info", ["LU", "pivots", "info"])


def _check_lapack_dtype(A, kernel):
    """torch raises NotImplementedError from the LAPACK kernel itself for a non-float input of these."""
    if A.dtype.kind != "f":
        raise NotImplementedError(f"\"{kernel}_cpu\" not implemented for '{torch_dtype_name(A.dtype)}'")


def _check_pivot(pivot):
    if not pivot:
        raise RuntimeError("linalg.lu_factor: LU without pivoting is not implemented on the CPU")


def lu(A, *, pivot=True, out=None):
    """``(P, L, U)`` with ``A = P L U`` (partial pivoting; any m x n); differentiable in L and U."""
    check_tensor("linalg.lu", A)
    if A.ndim < 2:
        raise RuntimeError("linalg.lu: The input tensor A must have at least 2 dimensions.")
    _check_lapack_dtype(A, "lu")
    _check_pivot(pivot)
    Pm, L, U, _, _ = PL.lu(A)
    return write_result("linalg_lu", LU(Pm, L, U), out, same_dtype=True)


def _pack_lu(L, U):
    """The packed factorisation (..., m, n): L's strictly lower part over U (differentiable)."""
    m, k = L.shape[-2:]
    n = U.shape[-1]
    if m > k:
        U = ops.cat([U, ops.zeros_like(L[..., k:, :])], -2)
    if n > k:
        L = ops.cat([L, ops.zeros_like(U[..., :, k:])], -1)
    return P.tril(L, -1) + U


def _zero_pivot_error(name, info):
    idx = next(i for i in np.ndindex(info.shape) if info[i])
    k = int(info[idx])
    prefix = f"(Batch element {int(np.ravel_multi_index(idx, info.shape))}): " if info.ndim else ""
    return RuntimeError(
        f"{name}: {prefix}U[{k},{k}] is zero and using it on lu_solve would result in a division by zero. If you "
        "still want to perform the factorization, consider calling linalg.lu(A, pivot) or linalg.lu_factor_ex(A, "
        "pivot)"
    )


def _lu_factor(name, A, pivot, check_errors):
    check_tensor(name, A)
    if A.ndim < 2:
        raise RuntimeError(
            f"torch.lu_factor: Expected tensor with 2 or more dimensions. Got size: {list(A.shape)} instead"
        )
    _check_lapack_dtype(A, "lu")
    _check_pivot(pivot)
    _, L, U, piv, info = PL.lu(A)
    if check_errors and info._data.any():
        raise _zero_pivot_error(f"torch.{name}", info._data)
    return _pack_lu(L, U), piv, info


@on_host
def lu_factor(A, *, pivot=True, out=None):
    """``(LU, pivots)``: the packed LU factorisation (LAPACK getrf) and the 1-based int32 row interchanges;
    raises RuntimeError where U has an exactly zero diagonal element (as torch)."""
    LU_, piv, _ = _lu_factor("linalg.lu_factor", A, pivot, True)
    return write_result("linalg_lu_factor", LUFactor(LU_, piv), out, same_dtype=True)


@on_host
def lu_factor_ex(A, *, pivot=True, check_errors=False, out=None):
    """``(LU, pivots, info)``: ``info`` is the first zero diagonal element of U (1-based), 0 if none."""
    result = LUFactorEx(*_lu_factor("linalg.lu_factor_ex", A, pivot, check_errors))
    return write_result("linalg_lu_factor_ex", result, out, same_dtype=True)


def _permutation(pivots, m, batch, dtype):
    piv = np.broadcast_to(pivots._data, tuple(batch) + pivots.shape[-1:])
    return wrap_array(PL.permutation_from_pivots(piv, m, dtype))


def _lu_solve_left(LU_, Pm, B, adjoint):
    if adjoint:  # A^T X = B: U^T L^T P^T X = B
        Z = P.solve_tri(mT(LU_), P.solve_tri(mT(LU_), B, False), True, True)
        return Pm @ Z
    return P.solve_tri(LU_, P.solve_tri(LU_, mT(Pm) @ B, False, True), True)


@on_host
def lu_solve(LU, pivots, B, *, left=True, adjoint=False, out=None):  # noqa: N803 (torch's name)
    """``X`` with ``A X = B`` (``X A = B`` if not ``left``; ``A^H`` if ``adjoint``) for ``A`` given by
    ``lu_factor``; differentiable in ``LU`` (its two triangles) and ``B``."""
    check_square("linalg.lu_solve", LU, "LU")
    check_tensor("linalg.lu_solve", B, "B")
    _same_dtype("linalg.lu_solve", LU, B)
    n = LU.shape[-1]
    if B.ndim < 2 or B.shape[-2 if left else -1] != n:
        eq = ("A^HX = B" if adjoint else "AX = B") if left else ("XA^H = B" if adjoint else "XA = B")
        bshape = "x".join(str(s) for s in B.shape[-2:])
        raise RuntimeError(
            f"linalg.lu_solve: Incompatible shapes of A and B for the equation {eq} ({n}x{n} and {bshape})"
        )
    LU_, B = _common_batch(LU, B, "linalg.lu_solve")
    Pm = _permutation(pivots, n, LU_.shape[:-2], LU.dtype)
    if left:
        X = _lu_solve_left(LU_, Pm, B, adjoint)
    else:  # X A = B  <=>  A^T X^T = B^T
        X = mT(_lu_solve_left(LU_, Pm, mT(B), not adjoint))
    return write_result("linalg_lu_solve", guard(X, "LinalgLuSolveBackward0", LU), out, same_dtype=True)


@on_host
def lu_unpack(LU_data, LU_pivots, unpack_data=True, unpack_pivots=True, *, out=None):  # noqa: N803
    """``(P, L, U)`` of a packed LU factorisation (``torch.lu_unpack``); L and U are differentiable in LU."""
    check_tensor("lu_unpack", LU_data, "LU_data")
    if LU_data.ndim < 2:
        raise RuntimeError(
            f"torch.lu_unpack: Expected tensor with 2 or more dimensions. Got size: {list(LU_data.shape)} instead"
        )
    m, n = LU_data.shape[-2:]
    k = min(m, n)
    empty = wrap_array(np.empty((0,), LU_data.dtype))
    L = U = Pm = empty
    if unpack_data:
        L = P.tril(LU_data[..., :, :k], -1) + wrap_array(np.eye(m, k, dtype=LU_data.dtype))
        U = P.triu(LU_data[..., :k, :])
    if unpack_pivots:
        Pm = _permutation(LU_pivots, m, LU_data.shape[:-2], LU_data.dtype)
    return write_result("lu_unpack", LuUnpack(Pm, L, U), out, same_dtype=True)


@on_host
def solve_ex(A, B, *, left=True, check_errors=False, out=None):
    """``(result, info)``: ``solve`` that reports singular matrices in ``info`` (first zero pivot, 1-based)
    instead of raising (NaN results there), unless ``check_errors``."""
    check_square("linalg.solve", A)
    a = A._data
    info = np.zeros(a.shape[:-2], np.int32)
    for idx in np.ndindex(a.shape[:-2]):
        info[idx] = P._first_zero_pivot(a[idx])
    if not info.any() or check_errors:
        result = solve(A, B, left=left)
    else:
        good = wrap_array((info == 0)[..., None, None])
        eye = wrap_array(np.eye(a.shape[-1], dtype=a.dtype))
        X = solve(ops.where(good, A, eye), B, left=left)
        good = wrap_array((info == 0).reshape(info.shape + (1,) * (X.ndim - info.ndim)))
        result = ops.where(good, X, wrap_array(np.full((), np.nan, a.dtype)))
    return write_result("linalg_solve_ex", SolveEx(result, wrap_array(info)), out, same_dtype=True)


def householder_product(input, tau, *, out=None):
    """The first n columns of ``H_1 ... H_k``, ``H_i = I - tau_i v_i v_i^T`` with ``v_i`` column i of ``A``
    below the diagonal and 1 on it (LAPACK orgqr; ``A`` m x n with m >= n >= k)."""
    name = "torch.linalg.householder_product"
    check_tensor("linalg.householder_product", input, "input")
    check_tensor("linalg.householder_product", tau, "tau")
    if input.ndim < 2:
        raise RuntimeError(f"{name}: input must have at least 2 dimensions.")
    _check_lapack_dtype(input, "orgqr")
    if input.shape[-2] < input.shape[-1]:
        raise RuntimeError(f"{name}: input.shape[-2] must be greater than or equal to input.shape[-1]")
    if input.shape[-1] < tau.shape[-1]:
        raise RuntimeError(f"{name}: input.shape[-1] must be greater than or equal to tau.shape[-1]")
    if tau.ndim != input.ndim - 1 or tuple(tau.shape[:-1]) != tuple(input.shape[:-2]):
        raise RuntimeError(
            f"{name}: Expected batch dimensions of tau to be equal to input.shape[:-2], but got {list(tau.shape[:-1])}"
        )
    _same_dtype(name, input, tau)
    if tau.shape[-1] == 0:  # the product of no reflectors: a constant, as in torch (A is not used)
        result = wrap_array(np.broadcast_to(np.eye(*input.shape[-2:], dtype=input.dtype), input.shape).copy())
    else:
        result = PL.householder_product(input, tau)
    return write_result("linalg_householder_product", result, out, same_dtype=True)


def _ldl_factor(name, A, hermitian, check_errors):
    check_square("torch.linalg.ldl_factor_ex", A)
    ld, piv, info = PL.sytrf_batched(A._data)
    if check_errors and info.any():
        raise LinAlgError(f"torch.linalg.{name}: The factorization could not be completed: D is singular.")
    return PL.underivable("linalg_ldl_factor_ex", ld, A), wrap_array(piv), wrap_array(info)


@on_host
def ldl_factor_ex(input, *, hermitian=False, check_errors=False, out=None):
    """``(LD, pivots, info)``: LAPACK sytrf's Bunch-Kaufman ``A = L D L^T`` (lower triangle of ``A``); not
    differentiable (as torch)."""
    result = LDLFactorEx(*_ldl_factor("ldl_factor_ex", input, hermitian, check_errors))
    return write_result("linalg_ldl_factor_ex", result, out, same_dtype=True)


@on_host
def ldl_factor(input, *, hermitian=False, out=None):
    LD, piv, _ = _ldl_factor("ldl_factor", input, hermitian, True)
    return write_result("linalg_ldl_factor", LDLFactor(LD, piv), out, same_dtype=True)


@on_host
def ldl_solve(LD, pivots, B, *, hermitian=False, out=None):  # noqa: N803
    """``X`` with ``A X = B`` for ``A`` given by ``ldl_factor`` (LAPACK sytrs); not differentiable (as torch)."""
    check_square("torch.linalg.ldl_solve", LD, "LD")
    check_tensor("linalg.ldl_solve", B, "B")
    _same_dtype("torch.linalg.ldl_solve", LD, B)
    if B.ndim < 2 or B.shape[-2] != LD.shape[-1]:
        raise RuntimeError(
            f"torch.linalg.ldl_solve: Incompatible shapes of A and B for the equation AX = B "
            f"({LD.shape[-2]}x{LD.shape[-1]} and {B.shape[-2] if B.ndim > 1 else 1}x{B.shape[-1]})"
        )
    x = PL.sytrs_batched(LD._data, pivots._data, B._data)
    return write_result("linalg_ldl_solve", PL.underivable("linalg_ldl_solve", x, LD, B), out, same_dtype=True)


def tensorinv(input, ind=2, *, out=None):
    """The inverse of ``A`` seen as a linear map from its first ``ind`` dims to the others (through ``inv``)."""
    check_tensor("linalg.tensorinv", input)
    if not isinstance(ind, numbers.Integral) or ind <= 0:
        raise RuntimeError(f"Expected a strictly positive integer for 'ind', but got {ind}")
    rows, cols = math.prod(input.shape[:ind]), math.prod(input.shape[ind:])
    if rows != cols:
        raise RuntimeError(
            "Expected self to satisfy the requirement prod(self.shape[ind:]) == prod(self.shape[:ind]), but got "
            f"{cols} != {rows}"
        )
    result = inv(ops.reshape(input, (rows, cols)))
    result = ops.reshape(result, tuple(input.shape[ind:]) + tuple(input.shape[:ind]))
    return write_result("linalg_tensorinv", result, out, same_dtype=True)


def tensorsolve(input, other, dims=None, *, out=None):
    """``X`` with ``tensordot(A, X, X.ndim) = B`` (through ``solve``); ``dims``: A's dims moved to the end first."""
    check_tensor("linalg.tensorsolve", input)
    check_tensor("linalg.tensorsolve", other, "B")
    if dims is not None:
        dims = [d % input.ndim for d in dims]
        input = ops.permute(input, [d for d in range(input.ndim) if d not in dims] + dims)
    result_shape = tuple(input.shape[other.ndim :])
    rows, cols = math.prod(other.shape), math.prod(result_shape)
    if math.prod(input.shape) != rows * cols or rows != cols:
        raise RuntimeError(
            "Expected self to satisfy the requirement prod(self.shape[other.ndim:]) == prod(self.shape[:other.ndim]), "
            f"but got {cols} != {math.prod(input.shape[: other.ndim])}"
        )
    X = solve(ops.reshape(input, (rows, cols)), ops.reshape(other, (rows,)))
    return write_result("linalg_tensorsolve", ops.reshape(X, result_shape), out, same_dtype=True)


def diagonal(A, *, offset=0, dim1=-2, dim2=-1):
    """``torch.linalg.diagonal``: ``A.diagonal(offset, dim1, dim2)`` with matrix defaults."""
    check_tensor("linalg.diagonal", A)
    return view_diagonal(A, offset, dim1, dim2)


# torch's older top-level spellings (exported as ``ad.lu``, ``ad.lu_solve``, ``ad.orgqr``; ``ad.lu_unpack`` above)


@on_host
def torch_lu(A, pivot=True, get_infos=False, out=None):
    """``torch.lu`` (deprecated in torch, with a warning): ``(LU, pivots)``, or ``(LU, pivots, infos)`` with
    ``get_infos`` (then it does not raise)."""
    warnings.warn(
        "torch.lu is deprecated in favor of torch.linalg.lu_factor / torch.linalg.lu_factor_ex and will be removed "
        "in a future PyTorch release.",
        UserWarning,
        stacklevel=2,
    )
    LU_, piv, info = _lu_factor("linalg.lu_factor", A, pivot, not get_infos)
    result = LuWithInfo(LU_, piv, info) if get_infos else (LU_, piv)
    return write_result("lu", result, out, same_dtype=True)


@on_host
def torch_lu_solve(input, LU_data, LU_pivots, *, out=None):  # noqa: N803
    """``torch.lu_solve`` (deprecated in torch, with a warning): ``linalg.lu_solve(LU_data, LU_pivots, b)``."""
    warnings.warn(
        "torch.lu_solve is deprecated in favor of torch.linalg.lu_solve and will be removed in a future PyTorch "
        "release. Note that torch.linalg.lu_solve has its arguments reversed.",
        UserWarning,
        stacklevel=2,
    )
    return lu_solve(LU_data, LU_pivots, input, out=out)


def orgqr(input, input2):  # noqa: A002
    """``torch.orgqr``: ``linalg.householder_product``."""
    return householder_product(input, input2)


Geqrf = collections.namedtuple("geqrf", ["a", "tau"])


@on_host
def geqrf(input, *, out=None):
    """``torch.geqrf``: LAPACK geqrf's QR in Householder form over the leading dims: ``a`` holds R on and above
    the diagonal and the reflectors' vectors below it, ``tau`` their scales (``householder_product(a, tau)`` is
    Q, ``ormqr`` multiplies by it). Not differentiable (torch's backward raises too).

    Raises:
        RuntimeError: ``input`` has fewer than 2 dims. NotImplementedError: an integer input (torch's).
    """
    check_tensor("geqrf", input, "input")
    if input.ndim < 2:
        raise RuntimeError("torch.geqrf: input must have at least 2 dimensions.")
    _check_lapack_dtype(input, "geqrf")
    a = np.array(input.detach()._data, copy=True)
    m, n = a.shape[-2:]
    tau = np.zeros(a.shape[:-2] + (min(m, n),), a.dtype)
    if min(m, n) > 0:
        geqrf_ = PL._lapack("geqrf", a)
        for idx in np.ndindex(a.shape[:-2]):
            qr, t, _, _ = geqrf_(a[idx])
            a[idx], tau[idx] = qr, t
    result = Geqrf(PL.underivable("geqrf", a, input), PL.underivable("geqrf", tau, input))
    return write_result("geqrf", result, out, same_dtype=True)


def ormqr(input, input2, input3, left=True, transpose=False, *, out=None):
    """``torch.ormqr(a, tau, other, left, transpose)``: ``other`` multiplied by the Q of ``geqrf``'s Householder
    form, ``Q @ other`` (``left``) or ``other @ Q``, with ``Q^T`` when ``transpose``. Q is the full square product
    of the reflectors, built by ``householder_product`` on the reflectors padded with identities, so the result
    differentiates in all three inputs.

    Raises:
        RuntimeError: the shapes do not fit (torch's checks).
    """
    name = "torch.ormqr"
    for arg, t in (("input", input), ("input2", input2), ("input3", input3)):
        check_tensor("ormqr", t, arg)
    if input.ndim < 2:
        raise RuntimeError(f"{name}: input must have at least 2 dimensions.")
    if input3.ndim < 2:
        raise RuntimeError(f"{name}: other must have at least 2 dimensions.")
    size = input3.shape[-2] if left else input3.shape[-1]
    if input.shape[-2] != size:
        raise RuntimeError(
            f"{name}: input.shape[-2] must be equal to other.shape[{-2 if left else -1}]"
        )
    if input2.shape[-1] > input.shape[-1]:
        raise RuntimeError(f"{name}: input.shape[-1] must be greater than or equal to tau.shape[-1]")
    if input2.shape[-1] > size:
        raise RuntimeError(f"{name}: other.shape[{-2 if left else -1}] must be greater than or equal to "
                           "tau.shape[-1]")
    k = input2.shape[-1]
    reflectors = input[..., :, :k]
    if size > k:  # zero reflectors with zero scales are identities: Q becomes size x size
        pad = ops.zeros_like(reflectors[..., :, :1]).expand(*reflectors.shape[:-1], size - k)
        reflectors = ops.cat([reflectors, pad], -1)
        input2 = ops.cat([input2, ops.zeros_like(input2[..., :1]).expand(*input2.shape[:-1], size - k)], -1)
    Q = householder_product(reflectors, input2)
    if transpose:
        Q = mT(Q)
    result = ops.matmul(Q, input3) if left else ops.matmul(input3, Q)
    return write_result("ormqr", result, out)
