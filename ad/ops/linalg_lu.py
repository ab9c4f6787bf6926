"""LU, Householder and LDL primitives: LAPACK through scipy (getrf, orgqr, sytrf, sytrs), derivatives in ``ad`` ops.

Same scheme as ``ad/ops/linalg.py`` (start reading there): each differentiable primitive is a ``_Primitive``
row whose ``forward`` runs LAPACK on the detached arrays, batched by a loop over the leading dimensions, and
whose ``backward`` / ``jvp`` are written with ``ad`` ops on the saved inputs and on outputs recomputed when
needed (``_recompute``), so second order and forward over reverse follow.

- ``_Lu``: ``A = P L U`` (partial pivoting, any m x n): outputs ``P`` (float permutation matrices), ``L``
  (m x k, unit lower), ``U`` (k x n, upper), ``pivots`` (int32, 1-based, LAPACK's ipiv) and ``info`` (int32, the
  first exactly zero diagonal element of U, 1-based, 0 if none); only ``L`` and ``U`` are differentiable.
  The packed factorisation (``lu_factor``) and ``lu_solve`` are composites over it (``ad/linalg_lu.py``).
- ``_HouseholderProduct``: the first n columns of ``H_1 ... H_k`` with ``H_i = I - tau_i v_i v_i^T`` (LAPACK
  orgqr); its derivatives walk the product ``Q_i = H_i Q_{i+1}`` in ``ad`` ops.
- LDL (sytrf / sytrs): values only; torch 2.13 has no derivative for them, and neither has ad (``_Underivable``
  rows raise torch's error at backward).
"""

import numpy as np

from .. import ops
from ..autograd.function import Function
from ..tensor import wrap_array
from .linalg import _in, _outer_dual, _Primitive, _recompute, mT, solve_tri, tril, triu


def _lapack(name, *arrays):
    import scipy.linalg  # (lazily: importing scipy.linalg costs ~50 ms at ``import ad``)

    return scipy.linalg.lapack.get_lapack_funcs(name, arrays)


# ---------------------------------------------------------------------------------------------------------
# LU with partial pivoting


def getrf_batched(a):
    """LAPACK getrf over the leading dims of ``a`` (..., m, n): (packed LU, 1-based int32 pivots, int32 info)."""
    m, n = a.shape[-2:]
    k = min(m, n)
    lu = np.empty_like(a)
    piv = np.empty(a.shape[:-2] + (k,), np.int32)
    info = np.zeros(a.shape[:-2], np.int32)
    getrf = _lapack("getrf", a)
    for idx in np.ndindex(a.shape[:-2]):
        if k == 0:
            lu[idx] = a[idx]
            continue
        lu[idx], p, inf = getrf(a[idx])
        piv[idx] = p + 1  # scipy's wrapper is 0-based; torch (and LAPACK) count from 1
        info[idx] = max(inf, 0)
    return lu, piv, info


def permutation_from_pivots(piv, m, dtype):
    """``P`` (..., m, m) with ``A = P L U`` for LAPACK's 1-based row interchanges ``piv`` (..., k)."""
    P = np.zeros(piv.shape[:-1] + (m, m), dtype)
    for idx in np.ndindex(piv.shape[:-1]):
        perm = np.arange(m)
        for i, p in enumerate(piv[idx]):
            perm[[i, p - 1]] = perm[[p - 1, i]]
        P[idx + (perm, np.arange(m))] = 1  # row j of L U is row perm[j] of A
    return P


def unpack_arrays(lu):
    """``(L, U)`` of a packed LU (..., m, n): L (..., m, k) unit lower, U (..., k, n) upper."""
    m, n = lu.shape[-2:]
    k = min(m, n)
    L = np.tril(lu[..., :, :k], -1) + np.eye(m, k, dtype=lu.dtype)
    return L, np.triu(lu[..., :k, :])


class _Lu(_Primitive):
    _grad_fn_name = "LinalgLuBackward0"

    @staticmethod
    def forward(ctx, A):
        lu, piv, info = getrf_batched(A._data)
        L, U = unpack_arrays(lu)
        Pm = permutation_from_pivots(piv, A.shape[-2], A.dtype)
        ctx.set_materialize_grads(False)
        ctx.L, ctx.U, ctx.P = L, U, Pm
        ctx.save_for_backward(A)
        outs = wrap_array(Pm), wrap_array(L), wrap_array(U), wrap_array(piv), wrap_array(info)
        ctx.mark_non_differentiable(outs[0], outs[3], outs[4])
        return outs

    @staticmethod
    def _factors(ctx, A, dual):
        if dual:
            return _Lu.apply(A)[:3]
        return wrap_array(ctx.P), wrap_array(ctx.L), wrap_array(ctx.U)

    @staticmethod
    def backward(ctx, _gP, gL, gU, _gpiv, _ginfo):
        (A,) = ctx.saved_tensors
        dual = _recompute(A)
        if dual:
            ctx.check_unsaved()  # (reads A, which torch's node does not save)
        Pm, L, U = _Lu._factors(ctx, A, dual)
        return Pm @ lu_backward(gL, gU, L, U)

    @staticmethod
    def jvp(ctx, t):
        (A,) = ctx.saved_tensors
        Pm, L, U = _Lu._factors(ctx, A, _outer_dual(A))
        dL, dU = lu_jvp(mT(Pm) @ t, L, U)
        return None, dL, dU, None, None


def lu_backward(gL, gU, L, U):
    """``P^T gA`` for ``A = P L U`` (L: m x k, U: k x n): with ``K = L1^{-1} (P^T A)_11 U1^{-1}`` (``dL1 = L1
    tril(dK, -1)``, ``dU1 = triu(dK) U1``), the pullback of K, then of the blocks that L2 (tall) or U2 (wide)
    add."""
    m, k = L.shape[-2:]
    n = U.shape[-1]
    gL = ops.zeros_like(L) if gL is None else gL
    gU = ops.zeros_like(U) if gU is None else gU
    L1, U1 = L[..., :k, :], U[..., :, :k]
    lower = mT(L1) @ gL[..., :k, :]
    upper = gU[..., :, :k] @ mT(U1)
    if n > k:
        lower = lower - gU[..., :, k:] @ mT(U[..., :, k:])
    if m > k:
        upper = upper - mT(L[..., k:, :]) @ gL[..., k:, :]
    gK = tril(lower, -1) + triu(upper)
    gA = solve_tri(mT(L1), mT(solve_tri(U1, mT(gK), True)), True, True)  # L1^{-T} gK U1^{-T}
    if n > k:
        gA = ops.cat([gA, solve_tri(mT(L1), gU[..., :, k:], True, True)], -1)
    if m > k:
        gA = ops.cat([gA, mT(solve_tri(U1, mT(gL[..., k:, :]), True))], -2)
    return gA


def lu_jvp(X, L, U):
    """``(dL, dU)`` for ``X = P^T dA`` (the pushforward of ``lu_backward``'s K)."""
    m, k = L.shape[-2:]
    n = U.shape[-1]
    L1, U1 = L[..., :k, :], U[..., :, :k]
    dK = mT(solve_tri(mT(U1), mT(solve_tri(L1, X[..., :k, :k], False, True)), False))  # L1^{-1} X11 U1^{-1}
    dL1 = L1 @ tril(dK, -1)
    dU1 = triu(dK) @ U1
    dL, dU = dL1, dU1
    if n > k:  # wide: X2 = dL U2 + L dU2
        dU = ops.cat([dU1, solve_tri(L1, X[..., :, k:] - dL1 @ U[..., :, k:], False, True)], -1)
    if m > k:  # tall: X2 = dL2 U + L2 dU
        dL2 = mT(solve_tri(mT(U1), mT(X[..., k:, :] - L[..., k:, :] @ dU1), False))
        dL = ops.cat([dL1, dL2], -2)
    return dL, dU


def lu(A):
    """``(P, L, U, pivots, info)`` of (batches of) float matrices (see ``_Lu``)."""
    return _Lu.apply(A)


# ---------------------------------------------------------------------------------------------------------
# product of Householder reflectors


class _HouseholderProduct(_Primitive):
    """``Q`` (m x n): the first n columns of ``H_1 ... H_k``, ``v_i`` = column i of ``A`` below the diagonal
    with a 1 on it (m >= n >= k)."""

    _grad_fn_name = "LinalgHouseholderProductBackward0"

    @staticmethod
    def forward(ctx, A, tau):
        a, t = A._data, tau._data
        q = np.empty_like(a)
        for idx in np.ndindex(a.shape[:-2]):
            if t.shape[-1] == 0 or a.shape[-1] == 0:  # orgqr needs k >= 1: the product of no reflectors is I
                q[idx] = np.eye(*a.shape[-2:], dtype=a.dtype)
                continue
            q[idx], _, _ = _lapack("orgqr", a[idx], t[idx])(a[idx], t[idx])
        ctx.save_for_backward(A, tau)
        return wrap_array(q)

    @staticmethod
    def backward(ctx, g):
        # Q_i = H_i Q_{i+1}, Q_{k+1} = E: with gQ_1 = g and gQ_{i+1} = H_i gQ_i, the pullback of H_i =
        # I - tau v v^T at gH = gQ_i Q_{i+1}^T is g_tau = -v^T gH v, g_v = -tau (gH + gH^T) v
        A, tau = ctx.saved_tensors
        V, taus, Qs = _reflector_chain(A, tau)
        g_taus, g_vs = [], []
        for i, (v, ti) in enumerate(zip(V, taus)):
            a = mT(g) @ v  # gQ_i^T v
            b = mT(Qs[i + 1]) @ v  # Q_{i+1}^T v
            g_taus.append(-ops.sum(a * b, (-2, -1)))
            g_vs.append(-ops.unsqueeze(ops.unsqueeze(ti, -1), -1) * (g @ b + Qs[i + 1] @ a))
            g = _reflect(g, v, ti)
        return _scatter_v(g_vs, A), ops.stack(g_taus, -1) if g_taus else ops.zeros_like(tau)

    @staticmethod
    def jvp(ctx, tA, ttau):
        # dQ_i = dH_i Q_{i+1} + H_i dQ_{i+1}, dH_i = -dtau v v^T - tau (dv v^T + v dv^T)
        A, tau = ctx.saved_tensors
        A, tau = _in(A), _in(tau)
        V, taus, Qs = _reflector_chain(A, tau)
        dV = _reflector_vectors(tA, tau.shape[-1], unit=False)
        dQ = None
        for i in reversed(range(len(V))):
            v, dv, ti, Qn = V[i], dV[i], taus[i], Qs[i + 1]
            vQ, dvQ = mT(v) @ Qn, mT(dv) @ Qn
            dti = ops.unsqueeze(ops.unsqueeze(ttau[..., i], -1), -1)
            t = ops.unsqueeze(ops.unsqueeze(ti, -1), -1)
            dH_Q = -(dti * (v @ vQ)) - t * (dv @ vQ + v @ dvQ)
            dQ = dH_Q if dQ is None else dH_Q + _reflect(dQ, v, ti)
        return dQ if dQ is not None else ops.zeros_like(tA)


def _reflector_vectors(A, k, unit=True):
    """The columns ``v_i`` (..., m, 1) of A's first k columns below the diagonal (with a 1 on it if ``unit``)."""
    m = A.shape[-2]
    vs = []
    for i in range(k):
        mask = np.zeros((m, 1), A.dtype)
        mask[i + 1 :] = 1
        v = A[..., :, i : i + 1] * wrap_array(mask)
        if unit:
            e = np.zeros((m, 1), A.dtype)
            e[i] = 1
            v = v + wrap_array(e)
        vs.append(v)
    return vs


def _reflect(X, v, t):
    """``H X = X - tau v (v^T X)``."""
    return X - ops.unsqueeze(ops.unsqueeze(t, -1), -1) * (v @ (mT(v) @ X))


def _reflector_chain(A, tau):
    """``(V, taus, Qs)``: the vectors, the taus and ``Qs[i] = H_i ... H_k E`` (``Qs[k] = E``), in ad ops."""
    m, n = A.shape[-2:]
    k = tau.shape[-1]
    V = _reflector_vectors(A, k)
    taus = [tau[..., i] for i in range(k)]
    Q = ops.expand(wrap_array(np.eye(m, n, dtype=A.dtype)), A.shape)
    Qs = [Q]
    for i in reversed(range(k)):
        Q = _reflect(Q, V[i], taus[i])
        Qs.append(Q)
    return V, taus, Qs[::-1]


def _scatter_v(g_vs, A):
    """The gradient of A from those of the vectors (strictly below the diagonal of the first k columns)."""
    m, n = A.shape[-2:]
    k = len(g_vs)
    cols = g_vs + ([ops.zeros_like(A[..., :, k:])] if n > k else [])
    return tril(ops.cat(cols, -1), -1) if cols else ops.zeros_like(A)


def householder_product(A, tau):
    return _HouseholderProduct.apply(A, tau)


# ---------------------------------------------------------------------------------------------------------
# LDL^T (Bunch-Kaufman): values only


class _Underivable(Function):
    """A row whose backward and jvp raise torch's "derivative ... is not implemented" (the value is ``out``)."""

    @staticmethod
    def forward(ctx, aten_name, out, *inputs):
        ctx.aten_name = aten_name
        return wrap_array(out)

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError(f"derivative for aten::{ctx.aten_name} is not implemented")

    @staticmethod
    def jvp(ctx, *tangents):
        raise RuntimeError(f"derivative for aten::{ctx.aten_name} is not implemented")


def underivable(aten_name, out, *inputs):
    """``out`` (an array) as a tensor; if an input requires grad or is dual, differentiating it raises."""
    return _Underivable.apply(aten_name, out, *inputs)


def sytrf_batched(a, lower=True):
    """LAPACK sytrf over the leading dims: (packed LD, 1-based int32 pivots, int32 info)."""
    ld = np.empty_like(a)
    piv = np.empty(a.shape[:-1], np.int32)
    info = np.zeros(a.shape[:-2], np.int32)
    sytrf = _lapack("sytrf", a)
    for idx in np.ndindex(a.shape[:-2]):
        if a.shape[-1] == 0:
            continue
        out, p, inf = sytrf(a[idx], lower=int(lower))
        ld[idx] = np.tril(out) if lower else np.triu(out)
        piv[idx] = p  # (scipy keeps LAPACK's 1-based, signed ipiv here)
        info[idx] = max(inf, 0)
    return ld, piv, info


def sytrs_batched(ld, piv, b, lower=True):
    x = np.empty(np.broadcast_shapes(ld.shape[:-2], b.shape[:-2]) + b.shape[-2:], b.dtype)
    sytrs = _lapack("sytrs", ld, b)
    ld = np.broadcast_to(ld, x.shape[:-2] + ld.shape[-2:])
    piv = np.broadcast_to(piv, x.shape[:-2] + piv.shape[-1:])
    b = np.broadcast_to(b, x.shape)
    for idx in np.ndindex(x.shape[:-2]):
        if x.shape[-2] == 0 or x.shape[-1] == 0:
            continue
        x[idx], _ = sytrs(ld[idx], piv[idx], b[idx], lower=int(lower))
    return x
