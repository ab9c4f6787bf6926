"""``ad.lobpcg``: torch's LOBPCG (``torch/_lobpcg.py``: Knyazev's locally optimal block preconditioned conjugate
gradient, with the "basic" and Duersch et al.'s "ortho" basis updates) for the k largest or smallest eigenpairs of
a symmetric ``A x = lambda B x``, written with ad's ops so it runs on every device.

Data structures (torch's): ``_Worker`` holds the current eigenvector block ``X`` (m x n), the Ritz values ``E``,
the residuals ``R`` and the search basis ``S`` (m x 3n: X, the previous directions P, the preconditioned residuals
W), the converged count ``ivars["converged_count"]`` and the end of the active basis ``ivars["converged_end"]``.
The iteration runs outside the graph; ``_EigenpairsBackward`` (an ``ad.autograd.Function``) connects the result to
``A``: for simple eigenvalues, ``dlambda_i = u_i^T dA u_i`` and ``du_i = -(A - lambda_i)^+ dA u_i``, so the VJP is
``sum_i (gE_i u_i - y_i) u_i^T`` with ``y_i`` solving ``(A - lambda_i I + u_i u_i^T) y_i = (I - u_i u_i^T) gU_i``
(that matrix equals ``A - lambda_i`` on the complement of ``u_i`` and is invertible): the exact derivative torch's
partial-eigenspace backward computes, written with ad's ops (so it differentiates again). As torch's, a problem
with ``B`` has no backward (it raises).
"""

import numpy as np

from . import creation, linalg
from .autograd.function import Function
from .grad_mode import is_grad_enabled, no_grad
from .tensor import Tensor

__all__ = ["lobpcg"]


def _matmul(A, B):
    return B if A is None else A @ B


def _qform(A, S):
    return S.mT @ _matmul(A, S)


def _symeig(A, largest=False):
    E, Z = linalg.eigh(A, UPLO="U")
    if largest:
        E, Z = E.flip(-1), Z.flip(-1)
    return E, Z


def _basis(A):
    return linalg.qr(A).Q


class _Worker:
    """One LOBPCG run on a single matrix (torch's ``LOBPCG`` class; ``tracker`` is called after each step)."""

    def __init__(self, A, B, X, iK, iparams, fparams, bparams, method, tracker):
        self.A, self.B, self.iK = A, B, iK
        self.iparams, self.fparams, self.bparams = iparams, fparams, bparams
        self.method, self.tracker = method, tracker
        m, n = iparams["m"], iparams["n"]
        self.X = X
        self.E = creation.zeros((n,), dtype=X.dtype, device=X.device)
        self.R = creation.zeros((m, n), dtype=X.dtype, device=X.device)
        self.S = creation.zeros((m, 3 * n), dtype=X.dtype, device=X.device)
        self.tvars = {}
        self.ivars = {"istep": 0}
        self.fvars = {"_": 0.0}
        self.bvars = {"_": False}

    def update(self):
        if self.ivars["istep"] == 0:
            X_norm = float(linalg.vector_norm(self.X))
            A_norm = float(linalg.vector_norm(_matmul(self.A, self.X))) / X_norm
            B_norm = float(linalg.vector_norm(_matmul(self.B, self.X))) / X_norm
            self.fvars.update(X_norm=X_norm, A_norm=A_norm, B_norm=B_norm)
            self.ivars.update(iterations_left=self.iparams["niter"], converged_count=0, converged_end=0)
        if self.method == "ortho":
            self._update_ortho()
        else:
            self._update_basic()
        self.ivars["iterations_left"] -= 1
        self.ivars["istep"] += 1

    def update_residual(self):
        self.R = _matmul(self.A, self.X) - _matmul(self.B, self.X) * self.E

    def update_converged_count(self):
        prev = self.ivars["converged_count"]
        E, X, R = self.E, self.X, self.R
        rerr = linalg.vector_norm(R, 2, (0,)) / (
            linalg.vector_norm(X, 2, (0,)) * (self.fvars["A_norm"] + E[: X.shape[-1]].abs() * self.fvars["B_norm"])
        )
        converged = (rerr < self.fparams["tol"]).cpu().numpy()
        count = int(np.argmin(converged)) if not converged.all() else len(converged)
        if count < prev:
            raise AssertionError(f"the number of converged eigenpairs (was {prev}, got {count}) cannot decrease")
        self.ivars["converged_count"] = count
        self.tvars["rerr"] = rerr
        return count

    def stop_iteration(self):
        return (self.bvars.get("force_stop", False) or self.ivars["iterations_left"] == 0
                or self.ivars["converged_count"] >= self.iparams["k"])

    def run(self):
        self.update()
        if self.tracker is not None:
            self.tracker(self)
        while not self.stop_iteration():
            self.update()
            if self.tracker is not None:
                self.tracker(self)

    def _update_basic(self):
        ns, nc = self.ivars["converged_end"], self.ivars["converged_count"]
        n, largest = self.iparams["n"], self.bparams["largest"]
        if self.ivars["istep"] == 0:
            Ri = self._rayleigh_ritz_transform(self.X)
            E, Z = _symeig(_qform(_qform(self.A, self.X), Ri), largest)
            self.X[:] = self.X @ (Ri @ Z)
            self.E[:] = E
            np_ = 0
            self.update_residual()
            nc = self.update_converged_count()
            self.S[..., :n] = self.X
            W = _matmul(self.iK, self.R)
            self.ivars["converged_end"] = ns = n + np_ + W.shape[-1]
            self.S[:, n + np_:ns] = W
        else:
            S_ = self.S[:, nc:ns]
            Ri = self._rayleigh_ritz_transform(S_)
            E_, Z = _symeig(_qform(_qform(self.A, S_), Ri), largest)
            self.X[:, nc:] = S_ @ (Ri @ Z[:, : n - nc])
            self.E[nc:] = E_[: n - nc]
            P = S_ @ (Ri @ Z[:, n: 2 * n - nc])
            np_ = P.shape[-1]
            self.update_residual()
            nc = self.update_converged_count()
            self.S[..., :n] = self.X
            self.S[:, n: n + np_] = P
            W = _matmul(self.iK, self.R[:, nc:])
            self.ivars["converged_end"] = ns = n + np_ + W.shape[-1]
            self.S[:, n + np_:ns] = W

    def _update_ortho(self):
        ns, nc = self.ivars["converged_end"], self.ivars["converged_count"]
        n, largest = self.iparams["n"], self.bparams["largest"]
        if self.ivars["istep"] == 0:
            Ri = self._rayleigh_ritz_transform(self.X)
            _, Z = _symeig(_qform(_qform(self.A, self.X), Ri), largest)
            self.X = self.X @ (Ri @ Z)
            self.update_residual()
            np_ = 0
            nc = self.update_converged_count()
            self.S[:, :n] = self.X
            W = self._get_ortho(self.R, self.X)
            ns = self.ivars["converged_end"] = n + np_ + W.shape[-1]
            self.S[:, n + np_:ns] = W
        else:
            S_ = self.S[:, nc:ns]
            E_, Z = _symeig(_qform(self.A, S_), largest)
            self.X[:, nc:] = S_ @ Z[:, : n - nc]
            self.E[nc:] = E_[: n - nc]
            P = S_ @ (Z[:, n - nc:] @ _basis(Z[: n - nc, n - nc:].mT))
            np_ = P.shape[-1]
            self.update_residual()
            nc = self.update_converged_count()
            self.S[:, :n] = self.X
            self.S[:, n: n + np_] = P
            W = self._get_ortho(self.R[:, nc:], self.S[:, : n + np_])
            ns = self.ivars["converged_end"] = n + np_ + W.shape[-1]
            self.S[:, n + np_:ns] = W

    def _rayleigh_ritz_transform(self, S):
        SBS = _qform(self.B, S)
        d_row = SBS.diagonal(0, -2, -1) ** -0.5
        d_col = d_row.reshape(d_row.shape[0], 1)
        R = linalg.cholesky((SBS * d_row) * d_col, upper=True)
        return linalg.solve_triangular(R, d_row.diag_embed(), upper=True, left=False)

    def _get_svqb(self, U, drop, tau):
        if U.numel() == 0:
            return U
        UBU = _qform(self.B, U)
        d = UBU.diagonal(0, -2, -1)
        nz = np.flatnonzero(d.cpu().numpy() != 0.0)
        if len(nz) < d.shape[0]:
            U = U[:, creation.tensor(nz, device=U.device)]
            if U.numel() == 0:
                return U
            UBU = _qform(self.B, U)
            d = UBU.diagonal(0, -2, -1)
        d_col = (d ** -0.5).reshape(d.shape[0], 1)
        E, Z = _symeig((UBU * d_col) * d_col.mT)
        t = tau * float(E.abs().max())
        if drop:
            keep = creation.tensor(np.flatnonzero(E.cpu().numpy() > t), device=U.device)
            E, Z, d_col = E[keep], Z[:, keep], d_col[keep]
        else:
            E = E.clamp(min=t) if (E < t).any() else E
        return (U * d_col.mT) @ (Z * E ** -0.5)

    def _get_ortho(self, U, V):
        m = self.iparams["m"]
        tau_ortho, tau_drop = self.fparams["ortho_tol"], self.fparams["ortho_tol_drop"]
        tau_replace = self.fparams["ortho_tol_replace"]
        i_max, j_max = self.iparams["ortho_i_max"], self.iparams["ortho_j_max"]
        use_drop = self.bparams["ortho_use_drop"]
        for key in [k for k in self.fvars if k.startswith("ortho_") and k.endswith("_rerr")]:
            self.fvars.pop(key)
        self.ivars.pop("ortho_i", 0)
        self.ivars.pop("ortho_j", 0)
        BV_norm = float(linalg.vector_norm(_matmul(self.B, V)))
        BU = _matmul(self.B, U)
        VBU = V.mT @ BU
        i = j = 0
        for i in range(i_max):
            U = U - V @ VBU
            drop, tau_svqb = False, tau_drop
            for j in range(j_max):
                if use_drop:
                    U = self._get_svqb(U, drop, tau_svqb)
                    drop, tau_svqb = True, tau_replace
                else:
                    U = self._get_svqb(U, False, tau_replace)
                if U.numel() == 0:
                    self.ivars["ortho_i"], self.ivars["ortho_j"] = i, j
                    return U
                BU = _matmul(self.B, U)
                UBU = U.mT @ BU
                R = UBU - creation.eye(UBU.shape[-1], dtype=UBU.dtype, device=UBU.device)
                rerr = float(linalg.vector_norm(R)) / (float(linalg.vector_norm(BU)) * float(linalg.vector_norm(U)))
                self.fvars[f"ortho_UBUmI_rerr[{i}, {j}]"] = rerr
                if rerr < tau_ortho:
                    break
            VBU = V.mT @ BU
            rerr = float(linalg.vector_norm(VBU)) / (BV_norm * float(linalg.vector_norm(U)))
            self.fvars[f"ortho_VBU_rerr[{i}]"] = rerr
            if rerr < tau_ortho:
                break
            if m < U.shape[-1] + V.shape[-1]:
                raise ValueError(
                    f"Overdetermined shape of U: #B-cols(={self.B.shape[-1] if self.B is not None else m}) >= "
                    f"#U-cols(={U.shape[-1]}) + #V-cols(={V.shape[-1]}) must hold"
                )
        self.ivars["ortho_i"], self.ivars["ortho_j"] = i, j
        return U


def lobpcg(A, k=None, B=None, X=None, n=None, iK=None, niter=None, tol=None, largest=None, method=None,
           tracker=None, ortho_iparams=None, ortho_fparams=None, ortho_bparams=None):
    """``torch.lobpcg``: the ``k`` largest (``largest=True``, the default) or smallest eigenpairs ``(E, X)`` of
    the symmetric positive definite generalized problem ``A X = B X diag(E)`` (``B`` default: the identity), by
    LOBPCG.

    Args:
        A (Tensor): ``(*, m, m)`` symmetric.
        k (int, optional): the number of eigenpairs (default: ``X``'s columns, or 1).
        B (Tensor, optional): ``(*, m, m)`` symmetric positive definite.
        X (Tensor, optional): ``(*, m, n)`` initial vectors (default: random, from ad's generator).
        n (int, optional): the block size when ``X`` is not given (default ``k``); ``m >= 3 n`` is required.
        iK (Tensor, optional): a preconditioner applied to the residuals.
        niter (int, optional): the maximum number of steps (default 1000; -1: until converged).
        tol (float, optional): the residual tolerance (default: the square root of the dtype's epsilon).
        method (str, optional): ``"ortho"`` (default) or ``"basic"``.
        tracker (callable, optional): called with the worker after each step.
        ortho_iparams, ortho_fparams, ortho_bparams (dict, optional): torch's "ortho" method parameters.

    Returns:
        ``(E, X)``: ``(*, k)`` eigenvalues and ``(*, m, k)`` eigenvectors, both differentiable in ``A`` (for
        simple eigenvalues; with ``B``, backward raises as torch's).

    Raises:
        ValueError: ``m < 3 n`` (torch's message); in backward, a problem with ``B``.
        AssertionError: ``A`` is not square, or ``A`` and ``B`` differ in shape (torch's).

    Example:
        >>> A = ad.diag(ad.arange(1.0, 11.0))
        >>> E, X = ad.lobpcg(A, k=2)  # E ~ [10, 9]
    """
    for t in (A, B, X, iK):
        if t is not None and not isinstance(t, Tensor):
            raise TypeError(f"lobpcg(): expected tensors, got {type(t).__name__}")
    differentiable = is_grad_enabled() and (A.requires_grad or (B is not None and B.requires_grad))
    # torch symmetrizes A (and B) before differentiating, so that A's gradient is symmetric
    A_sym = (A + A.mT) / 2 if differentiable else A
    B_sym = None if B is None else ((B + B.mT) / 2 if differentiable else B)
    with no_grad():
        E, V = _lobpcg(A_sym.detach(), k, None if B is None else B_sym.detach(), None if X is None else X.detach(),
                       n, iK, niter, tol, largest, method, tracker, ortho_iparams, ortho_fparams, ortho_bparams)
    if not differentiable:
        return E, V
    if B is None:
        return _EigenpairsBackward.apply(A_sym, E, V)
    return _EigenpairsBackward.apply(A_sym, E, V, B_sym)


class _EigenpairsBackward(Function):
    """``(E, U)`` of ``lobpcg`` as a function of the symmetric ``A`` (see the module docstring)."""

    @staticmethod
    def forward(ctx, A, E, U, B=None):
        ctx.with_B = B is not None
        ctx.save_for_backward(A, E, U)
        return E.clone(), U.clone()

    @staticmethod
    def backward(ctx, gE, gU):
        if ctx.with_B:
            raise ValueError("lobpcg.backward does not support backward with B != I yet.")
        A, E, U = ctx.saved_tensors
        m, k = U.shape[-2], U.shape[-1]
        grad = creation.zeros_like(A)
        if gE is not None:
            grad = grad + (U * gE.unsqueeze(-2)) @ U.mT
        if gU is not None:
            eye = creation.eye(m, dtype=A.dtype, device=A.device)
            for i in range(k):
                u = U[..., :, i:i + 1]
                M = A - E[..., i:i + 1].unsqueeze(-1) * eye + u @ u.mT
                rhs = gU[..., :, i:i + 1] - u @ (u.mT @ gU[..., :, i:i + 1])
                y = linalg.solve(M, rhs)
                grad = grad - y @ u.mT
        return grad, None, None, None


def _lobpcg(A, k, B, X, n, iK, niter, tol, largest, method, tracker, ortho_iparams, ortho_fparams,
            ortho_bparams):
    if A.shape[-2] != A.shape[-1]:
        raise AssertionError(f"A must be square, got shape {tuple(A.shape)}")
    if B is not None and tuple(A.shape) != tuple(B.shape):
        raise AssertionError(f"A and B must have same shape, got {tuple(A.shape)} vs {tuple(B.shape)}")
    dtype = A.dtype if A.dtype.kind == "f" else creation._default_float
    A = A.to(dtype)
    if tol is None:
        tol = {np.dtype(np.float32): 1.2e-07, np.dtype(np.float64): 2.23e-16}[np.dtype(dtype)] ** 0.5
    m = A.shape[-1]
    k = (1 if X is None else X.shape[-1]) if k is None else k
    n = (k if n is None else n) if X is None else X.shape[-1]
    if m < 3 * n:
        raise ValueError(
            f"LOBPCG algorithm is not applicable when the number of A rows (={m}) is smaller than 3 x the number "
            f"of requested eigenpairs (={n})"
        )
    method = "ortho" if method is None else method
    iparams = {"m": m, "n": n, "k": k, "niter": 1000 if niter is None else niter}
    fparams = {"tol": tol}
    bparams = {"largest": True if largest is None else largest}
    if method == "ortho":
        iparams.update(ortho_iparams or {})
        fparams.update(ortho_fparams or {})
        bparams.update(ortho_bparams or {})
        iparams.setdefault("ortho_i_max", 3)
        iparams.setdefault("ortho_j_max", 3)
        for key in ("ortho_tol", "ortho_tol_drop", "ortho_tol_replace"):
            fparams.setdefault(key, tol)
        bparams.setdefault("ortho_use_drop", False)
    batch = tuple(A.shape[:-2])
    count = int(np.prod(batch)) if batch else 1
    bA = A.reshape((count, m, m))
    bB = None if B is None else B.to(dtype).reshape((count, m, m))
    bX = None if X is None else X.to(dtype).reshape((count, m, X.shape[-1]))
    Es, Xs = [], []
    for i in range(count):
        X_ = creation.randn(m, n, dtype=dtype, device=A.device) if bX is None else bX[i]
        if tuple(X_.shape) != (m, n):
            raise AssertionError(f"X_ shape mismatch: got {tuple(X_.shape)}, expected {(m, n)}")
        if batch:
            iparams["batch_index"] = i
        worker = _Worker(bA[i], None if bB is None else bB[i], X_.clone(), iK, iparams, fparams, bparams, method,
                         tracker)
        worker.run()
        Es.append(worker.E[:k])
        Xs.append(worker.X[:, :k])
    if not batch:
        return Es[0], Xs[0]
    from .ops import stack

    return stack(Es).reshape(batch + (k,)), stack(Xs).reshape(batch + (m, k))
