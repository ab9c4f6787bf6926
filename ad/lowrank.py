"""Randomized low-rank factorizations, ``ad.svd_lowrank`` and ``ad.pca_lowrank``: torch's algorithms
(``torch/_lowrank.py``: Halko, Martinsson and Tropp 2009, Algorithm 4.4 for the basis, then an SVD of the small
projected matrix) written with ad's ops, so they differentiate and run on every device. The random test matrix
comes from ad's generator (``ad.manual_seed`` makes the result repeatable; the draws are not torch's).
"""

from . import creation, linalg
from .tensor import Tensor

__all__ = ["pca_lowrank", "svd_lowrank"]


def _approximate_basis(A, q, niter, M):
    """Q with ``q`` orthonormal columns such that ``Q Q^T (A - M)`` approximates ``A - M`` (M never expanded to
    A's size beyond its broadcast)."""
    R = creation.randn(A.shape[-1], q, dtype=A.dtype, device=A.device)
    X = A @ R
    if M is not None:
        X = X - M @ R
    Q = linalg.qr(X).Q
    for _ in range(niter):
        X = A.mT @ Q
        if M is not None:
            X = X - M.mT @ Q
        Q = linalg.qr(X).Q
        X = A @ Q
        if M is not None:
            X = X - M @ Q
        Q = linalg.qr(X).Q
    return Q


def _svd_lowrank(A, q, niter, M):
    q = 6 if q is None else q
    m, n = A.shape[-2:]
    if M is not None:
        M = M.broadcast_to(A.shape)
    if m < n:  # work on the tall one
        A = A.mT
        if M is not None:
            M = M.mT
    Q = _approximate_basis(A, q, 2 if niter is None else niter, M)
    B = Q.mT @ A
    if M is not None:
        B = B - Q.mT @ M
    U, S, Vh = linalg.svd(B, full_matrices=False)
    V = Vh.mT
    U = Q @ U
    if m < n:
        U, V = V, U
    return U, S, V


def _floating(A, name):
    if not isinstance(A, Tensor):
        raise TypeError(f"{name}(): argument 'A' must be Tensor, not {type(A).__name__}")
    return A if A.dtype.kind == "f" else A.to(creation._default_float)


def svd_lowrank(A, q=6, niter=2, M=None):
    """``torch.svd_lowrank``: an approximate truncated SVD ``(U, S, V)`` of ``A - M`` (``M`` broadcast to
    ``A``), ``A ≈ U diag(S) V^T`` with ``q`` singular values, from ``niter`` subspace iterations.

    Args:
        A (Tensor): ``(*, m, n)``.
        q (int): the rank of the approximation (slightly over-estimate the rank you need).
        niter (int): subspace iterations (2 by default, as torch).
        M (Tensor, optional): a matrix subtracted from ``A`` without forming ``A - M``.

    Returns:
        ``(U, S, V)``: ``(*, m, q)``, ``(*, q)``, ``(*, n, q)``.

    Example:
        >>> A = ad.randn(20, 3) @ ad.randn(3, 10)
        >>> U, S, V = ad.svd_lowrank(A, q=3)
    """
    A = _floating(A, "svd_lowrank")
    return _svd_lowrank(A, q, niter, M)


def pca_lowrank(A, q=None, center=True, niter=2):
    """``torch.pca_lowrank``: the principal components ``(U, S, V)`` of the data ``A`` (rows are samples): the
    ``svd_lowrank`` of ``A`` minus its column means (``center``); ``V`` holds the principal directions.

    Args:
        A (Tensor): ``(*, m, n)``.
        q (int, optional): the number of components (default ``min(6, m, n)``).
        center (bool): subtract the column means first.
        niter (int): subspace iterations.

    Raises:
        ValueError: ``q`` outside ``[0, min(m, n)]`` or a negative ``niter`` (torch's messages).
    """
    A = _floating(A, "pca_lowrank")
    m, n = A.shape[-2:]
    if q is None:
        q = min(6, m, n)
    elif not (q >= 0 and q <= min(m, n)):
        raise ValueError(f"q(={q}) must be non-negative integer and not greater than min(m, n)={min(m, n)}")
    if not (niter >= 0):
        raise ValueError(f"niter(={niter}) must be non-negative integer")
    if not center:
        return _svd_lowrank(A, q, niter, None)
    return _svd_lowrank(A - A.mean(dim=(-2,), keepdim=True), q, niter, None)
