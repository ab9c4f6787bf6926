"""Linear-algebra primitives: LAPACK through numpy/scipy, with torch's derivatives written in ``ad`` ops.

Each primitive is a Python-swept row: an ``ad.autograd.Function`` whose ``forward`` calls numpy/scipy on the
detached arrays (batched over leading dimensions as numpy batches them), whose ``backward`` is torch's formula
(``torch/csrc/autograd/FunctionsManual.cpp``) written with ``ad`` ops, and whose ``jvp`` is torch's forward
derivative, also in ``ad`` ops. The compiled sweep stops at the row and calls ``backward``.

Second order: ``backward`` needs the op's outputs (``inv(A)``, the eigenvectors, ...). Under the kernel sweep it
runs in ``no_grad`` and reads the arrays kept on ``ctx``; under ``create_graph=True`` (grad mode on) it
recomputes them from the saved inputs with the public op (``_again``), so that they are nodes of the new
graph and the result differentiates again. LAPACK is deterministic, so both give the same values. Forward
over reverse: when a saved input carries a tangent, the backward recomputes the same way (``_recompute``), so
the tangents of the inputs and of the incoming cotangent reach the gradient's tangent (``_Primitive`` tells
the engine so).

Operands reach the primitives with a common batch (the public functions in ``ad/linalg.py`` expand them; the
adjoint of ``expand`` sums the broadcast gradient) and a float dtype. Start reading at ``_Inv``.
"""

import weakref

import numpy as np

from .. import ops
from ..autograd.function import Function
from ..cuda import host_copy, solver
from ..forward import _fw, visible_levels_of
from ..grad_mode import is_grad_enabled
from ..tensor import Tensor, wrap_array


class LinAlgError(RuntimeError):
    """Raised where LAPACK reports a singular or non-positive-definite input (torch.linalg.LinAlgError)."""


LinAlgError.__module__ = "ad.linalg"


def lapack_svd(a, *args, **kwargs):
    """``np.linalg.svd(a, ...)``, with torch's LinAlgError for a matrix holding NaN (torch's svd refuses it;
    numpy's raises its own ValueError, "SVD did not converge")."""
    if np.isnan(a).any():
        raise LinAlgError(
            "linalg.svd: The algorithm failed to converge because the input matrix contained non-finite values."
        )
    return np.linalg.svd(a, *args, **kwargs)

# torch's ScalarType names, as its error messages spell dtypes ("not implemented for 'Long'", "Got Byte")
_TORCH_DTYPE = {
    "float64": "Double", "float32": "Float", "float16": "Half", "int64": "Long", "int32": "Int", "int16": "Short",
    "int8": "Char", "uint8": "Byte", "bool": "Bool",
}  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# checks and structural helpers (all differentiable: gather/scatter rows and products with constants)


def torch_dtype_name(dt):
    name = np.dtype(dt).name
    return _TORCH_DTYPE.get(name, name)


def check_tensor(name, x, what="A"):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): argument '{what}' (position 1) must be Tensor, not {type(x).__name__}")
    return x


def check_float(name, x):
    if x.dtype.kind != "f":
        raise RuntimeError(
            f"{name}: Expected a floating point or complex tensor as input. Got {torch_dtype_name(x.dtype)}"
        )


def check_matrix(name, x, what="A"):
    check_tensor(name, x, what)
    if x.ndim < 2:
        raise RuntimeError(f"{name}: The input tensor {what} must have at least 2 dimensions.")
    check_float(name, x)


def check_square(name, x, what="A"):
    check_matrix(name, x, what)
    if x.shape[-1] != x.shape[-2]:
        raise RuntimeError(
            f"{name}: {what} must be batches of square matrices, but they are {x.shape[-2]} by {x.shape[-1]} matrices"
        )


def mT(x):
    return ops.transpose(x, -2, -1)


def _c_strides(shape):
    strides = []
    acc = 1
    for s in reversed(shape):
        strides.append(acc)
        acc *= s
    return strides[::-1]


def diagonal(x):
    """The main diagonals of the matrices ``x[..., :, :]`` (shape ``(..., min(m, n))``), differentiable."""
    m, n = x.shape[-2:]
    batch = tuple(x.shape[:-2])
    strides = _c_strides(x.shape)[:-2] + [n + 1]
    return ops.gather_strided(x, batch + (min(m, n),), strides, 0)


def diag_embed(v):
    """Square matrices with diagonals ``v[..., :]`` (the adjoint of ``diagonal``)."""
    k = v.shape[-1]
    batch = tuple(v.shape[:-1])
    shape = batch + (k, k)
    return ops.scatter_strided(v, shape, _c_strides(shape)[:-2] + [k + 1], 0)


def tril(x, k=0):
    mask = np.tril(np.ones(x.shape[-2:], dtype=x.dtype), k)
    return x * wrap_array(mask)


def triu(x, k=0):
    mask = np.triu(np.ones(x.shape[-2:], dtype=x.dtype), k)
    return x * wrap_array(mask)


def eye_like(n, x):
    return wrap_array(np.eye(n, dtype=x.dtype))


def _batches(a):
    """Indices of the matrices of a (..., m, n) array, in C order."""
    return np.ndindex(a.shape[:-2])


def _batch_prefix(a, idx):
    return f"(Batch element {int(np.ravel_multi_index(idx, a.shape[:-2]))}): " if a.ndim > 2 else ""


def _recompute(*inputs):
    """Whether a backward must recompute the op's outputs with the public op rather than read the saved arrays:
    under ``create_graph`` (they must be nodes of the new graph) and when a saved input carries a tangent
    (forward over reverse: the outputs' tangents enter the tangent of the cotangent)."""
    return is_grad_enabled() or _outer_dual(*inputs)


def _again(ctx, recompute, *inputs):
    """The saved output: a constant (kernel sweep); recomputed as a dual when a saved input carries a tangent
    (forward over reverse, ``_recompute``); otherwise under ``create_graph`` the recorded output itself, as
    torch's node saves its result (double backward goes through that node: its hooks run and its retained grad
    accumulates in every order), or recomputed as a node if it was not recorded."""
    if _outer_dual(*inputs):
        ctx.check_unsaved()
        return recompute()
    if not is_grad_enabled():
        return _constant(ctx.out, inputs[0])
    guards = ctx._result_guards  # (the recorded outputs whose versions backward checks: ad/saved.py)
    if not guards:
        ctx.check_unsaved()
        return recompute()
    public = ctx.__dict__.get("_public")
    public = public() if public is not None else None
    return guards[0][0] if public is None else ops.reshape(public, guards[0][0].shape)


def publish_result(kept, public):
    """``public`` (a reshape of the primitive's recorded result ``kept``: a norm without keepdim) is what the user
    holds, and what torch's node saves: double backward reads the result through it (``_again``), so its hooks
    run and its retained gradient accumulates in every order, as torch's."""
    rec = kept._ctx if kept._op is not None else None
    ctx = getattr(rec, "ctx", None)  # (None on CUDA: the result is the recorded copy back from the host)
    if ctx is not None and public is not kept:
        ctx._public = weakref.ref(public)
    return public


class _Primitive(Function):
    """A Python-swept linear-algebra row. Its backward is written in ``ad`` ops on the saved inputs and on
    outputs recomputed when those inputs are dual (``_recompute``), so the tangents of the inputs and of the
    incoming cotangent reach the result: forward over reverse is right (the engine lets it through)."""

    _backward_carries_tangents = True


# Forward mode with nested levels: a jvp runs with its own level (and the inner ones) hidden; the primal
# inputs may still carry tangents of outer levels, and then the tangent it returns must depend on them. So a
# jvp reads its inputs as they are (dual) and recomputes the op's outputs with the public op in that case;
# otherwise it uses plain constants (no graph, no recomputation).


def _outer_dual(*tensors):
    return bool(_fw.levels) and bool(visible_levels_of(*tensors))


def _constant(arr, like):
    """Array ``arr`` (a saved input or output) as a constant tensor on ``like``'s device: a device array when
    the forward ran there (cuSOLVER through CuPy: ``ad/cuda/solver.py``)."""
    if like._dev is None:
        return wrap_array(np.asarray(arr))
    from ..cuda.arrays import wrap

    return wrap(arr, like._dev)


def _in(A):
    """A saved input for a jvp: itself when it carries an outer level's tangent, else its value."""
    return A if _outer_dual(A) else _constant(A._data, A)


def _out(raw, recompute, *inputs):
    """A saved output for a jvp: recomputed (dual at the outer levels) when an input is dual, else ``raw``."""
    return recompute() if _outer_dual(*inputs) else _constant(raw, inputs[0])


def _first_zero_pivot(a):
    """1-based index of the first exactly-zero diagonal element of U in ``a``'s LU factorisation (0 if none)."""
    import scipy.linalg  # (lazily: importing it costs ~50 ms, and importing ad should not)

    if a.size == 0:  # (LAPACK's getrf prints an illegal-parameter complaint for a 0 x 0 matrix)
        return 0
    lu, piv, info = scipy.linalg.lapack.get_lapack_funcs("getrf", (a,))(a)
    return info if info > 0 else 0


def _singular_inv_error(name, a):
    for idx in _batches(a):
        k = _first_zero_pivot(a[idx])
        if k:
            return LinAlgError(
                f"{name}: {_batch_prefix(a, idx)}The diagonal element {k} is zero, the inversion could not be "
                "completed because the input matrix is singular."
            )
    return LinAlgError(f"{name}: The inversion could not be completed because the input matrix is singular.")


def _not_pd_order(a):
    import scipy.linalg

    potrf = scipy.linalg.lapack.get_lapack_funcs("potrf", (a,))
    _, info = potrf(a, lower=1, clean=0)
    return info


def not_pd_error(name, a):
    for idx in _batches(a):
        k = _not_pd_order(a[idx])
        if k > 0:
            return LinAlgError(
                f"{name}: {_batch_prefix(a, idx)}The factorization could not be completed because the input is "
                f"not positive-definite (the leading minor of order {k} is not positive-definite)."
            )
    return LinAlgError(f"{name}: The factorization could not be completed because the input is not positive-definite.")


def _has_zero_pivot(a):
    return any(_first_zero_pivot(a[idx]) for idx in _batches(a))


# ---------------------------------------------------------------------------------------------------------
# inverse and solve


class _Inv(_Primitive):
    _grad_fn_name = "LinalgInvExBackward0"
    _cuda_forward = staticmethod(solver.available)  # (CUDA operands: cuSOLVER when CuPy is there, else the host)

    @staticmethod
    def forward(ctx, A):
        a = A._data
        try:  # numpy's gesv refuses exactly the matrices LAPACK's getrf finds a zero pivot in, as torch
            ctx.out = solver.lapack("inv", a) if A._dev is not None else np.linalg.inv(a)
        except np.linalg.LinAlgError:
            raise _singular_inv_error("linalg.inv", host_copy(a)) from None
        ctx.save_for_backward(A)
        return _constant(ctx.out, A)

    @staticmethod
    def backward(ctx, g):
        (A,) = ctx.saved_tensors
        inv_t = mT(_again(ctx, lambda: inv(A), A))
        return -(inv_t @ g @ inv_t)

    @staticmethod
    def jvp(ctx, t):
        (A,) = ctx.saved_tensors
        out = _out(ctx.out, lambda: inv(A), A)
        return -(out @ t @ out)


def inv(A):
    """``A^{-1}`` for (batches of) square float matrices; raises LinAlgError for a singular ``A``."""
    return _Inv.apply(A)


class _Solve(_Primitive):
    """``X = A^{-1} B`` for ``A`` of shape (..., n, n) and ``B`` of shape (..., n, k) with the same batch."""

    _grad_fn_name = "LinalgSolveExBackward0"
    _cuda_forward = staticmethod(solver.available)  # (as _Inv's)

    @staticmethod
    def forward(ctx, A, B):
        a = A._data
        try:
            ctx.out = solver.lapack("solve", a, B._data) if A._dev is not None else np.linalg.solve(a, B._data)
        except np.linalg.LinAlgError:
            a = host_copy(a)
            prefix = ""
            for idx in _batches(a):
                if _first_zero_pivot(a[idx]):
                    prefix = _batch_prefix(a, idx)
                    break
            raise LinAlgError(
                f"torch.linalg.solve: {prefix}The solver failed because the input matrix is singular."
            ) from None
        ctx.save_for_backward(A, B)
        return _constant(ctx.out, A)

    @staticmethod
    def backward(ctx, g):
        A, B = ctx.saved_tensors
        gB = solve_matrix(mT(A), g)
        gA = None
        if ctx.needs_input_grad[0]:
            gA = -(gB @ mT(_again(ctx, lambda: solve_matrix(A, B), A, B)))
        return gA, gB

    @staticmethod
    def jvp(ctx, tA, tB):
        A, B = ctx.saved_tensors
        X = _out(ctx.out, lambda: solve_matrix(A, B), A, B)
        return solve_matrix(_in(A), tB - tA @ X)


def solve_matrix(A, B):
    return _Solve.apply(A, B)


# ---------------------------------------------------------------------------------------------------------
# determinants


class _Det(_Primitive):
    _grad_fn_name = "LinalgDetBackward0"

    @staticmethod
    def forward(ctx, A):
        ctx.out = np.linalg.det(A._data)
        ctx.save_for_backward(A)
        return wrap_array(np.asarray(ctx.out))

    @staticmethod
    def backward(ctx, g):
        # d det = det tr(A^{-1} dA): gA = g det A^{-T}; for singular A (an exactly zero LU pivot), torch's SVD
        # form of the adjugate: gA = g det(U) det(Vh) U diag(prod_{j != i} s_j) Vh
        (A,) = ctx.saved_tensors
        if _has_zero_pivot(A._data):
            return _det_backward_singular(g, A)
        d = _again(ctx, lambda: det(A), A)
        return ops.unsqueeze(ops.unsqueeze(g * d, -1), -1) * mT(inv(A))

    @staticmethod
    def jvp(ctx, t):
        (A,) = ctx.saved_tensors
        if _has_zero_pivot(A._data):  # d det = tr(adj(A) dA), with the adjugate of the backward's SVD form
            adj_t = _det_backward_singular(ops.ones_like(_out(ctx.out, lambda: det(A), A)), _in(A))
            return ops.sum(adj_t * t, (-2, -1))
        d = _out(ctx.out, lambda: det(A), A)
        return d * ops.sum(diagonal(solve_matrix(_in(A), t)), -1)


def det(A):
    return _Det.apply(A)


def _det_backward_singular(g, A):
    u, s, vh = np.linalg.svd(A._data)
    if _recompute(A):
        U, S, Vh = _Svd.apply(A, False)
    else:
        U, S, Vh = wrap_array(u), wrap_array(s), wrap_array(vh)
    n = S.shape[-1]
    if n == 1:
        others = ops.ones_like(S)
    else:  # prod_{j != i} s_j, without dividing by a zero s_i
        pieces = [S[..., 1:]] + [ops.cat([S[..., :i], S[..., i + 1 :]], -1) for i in range(1, n - 1)] + [S[..., :-1]]
        others = ops.stack([ops.prod(p, -1) for p in pieces], -1)
    sign = wrap_array((np.linalg.det(u) * np.linalg.det(vh)).astype(A.dtype))  # +-1, locally constant
    scale = ops.unsqueeze(ops.unsqueeze(g * sign, -1), -1)
    return scale * ((U * ops.unsqueeze(others, -2)) @ Vh)


class _Slogdet(_Primitive):
    _grad_fn_name = "LinalgSlogdetBackward0"

    @staticmethod
    def forward(ctx, A):
        sign, logabsdet = np.linalg.slogdet(A._data)
        ctx.save_for_backward(A)
        s = wrap_array(np.asarray(sign))
        ctx.mark_non_differentiable(s)
        return s, wrap_array(np.asarray(logabsdet))

    @staticmethod
    def backward(ctx, g_sign, g_logabsdet):
        (A,) = ctx.saved_tensors
        if g_logabsdet is None:
            return None
        return ops.unsqueeze(ops.unsqueeze(g_logabsdet, -1), -1) * mT(inv(A))

    @staticmethod
    def jvp(ctx, t):
        (A,) = ctx.saved_tensors
        return None, ops.sum(diagonal(solve_matrix(_in(A), t)), -1)


def slogdet(A):
    return _Slogdet.apply(A)


# ---------------------------------------------------------------------------------------------------------
# triangular solves and Cholesky


def _trsm(a, b, upper, unitriangular):
    """Solve ``a x = b`` with ``a`` triangular (only its ``upper`` / lower triangle read), batched."""
    out = np.empty(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + b.shape[-2:], dtype=b.dtype)
    import scipy.linalg

    trsm = scipy.linalg.blas.get_blas_funcs("trsm", (a, b))
    for idx in np.ndindex(out.shape[:-2]):
        ai = a[idx] if a.ndim > 2 else a
        out[idx] = trsm(1.0, ai, b[idx], side=0, lower=0 if upper else 1, diag=1 if unitriangular else 0)
    return out


class _SolveTriangular(_Primitive):
    """``X = A^{-1} B`` with ``A`` triangular (left solves; right solves go through transposes)."""

    _grad_fn_name = "LinalgSolveTriangularBackward0"

    @staticmethod
    def forward(ctx, A, B, upper, unitriangular):
        ctx.upper = upper
        ctx.unit = unitriangular
        ctx.out = _trsm(A._data, B._data, upper, unitriangular)
        ctx.save_for_backward(A, B)
        return wrap_array(ctx.out)

    @staticmethod
    def backward(ctx, g):
        A, B = ctx.saved_tensors
        upper, unit = ctx.upper, ctx.unit
        gB = solve_tri(mT(A), g, not upper, unit)
        gA = None
        if ctx.needs_input_grad[0]:
            X = _again(ctx, lambda: solve_tri(A, B, upper, unit), A, B)
            gA = -(gB @ mT(X))
            k = 1 if unit else 0
            gA = triu(gA, k) if upper else tril(gA, -k)
        return gA, gB, None, None

    @staticmethod
    def jvp(ctx, tA, tB, _upper, _unit):
        A, B = ctx.saved_tensors
        k = 1 if ctx.unit else 0
        tA = triu(tA, k) if ctx.upper else tril(tA, -k)
        X = _out(ctx.out, lambda: solve_tri(A, B, ctx.upper, ctx.unit), A, B)
        return solve_tri(_in(A), tB - tA @ X, ctx.upper, ctx.unit)


def solve_tri(A, B, upper, unitriangular=False):
    return _SolveTriangular.apply(A, B, bool(upper), bool(unitriangular))


class _Cholesky(_Primitive):
    """Lower Cholesky factor ``L`` of symmetric positive-definite ``A`` (only its lower triangle is read)."""

    _grad_fn_name = "LinalgCholeskyExBackward0"

    @staticmethod
    def forward(ctx, A):
        a = A._data
        try:
            ctx.out = np.linalg.cholesky(a)
        except np.linalg.LinAlgError:
            raise not_pd_error("linalg.cholesky", a) from None
        ctx.save_for_backward(A)
        return wrap_array(ctx.out)

    @staticmethod
    def backward(ctx, gL):
        # torch's cholesky_backward: gA = L^{-H} Phi(L^H gL) L^{-1}, symmetrised; Phi keeps the lower
        # triangle and halves the diagonal
        (A,) = ctx.saved_tensors
        L = _again(ctx, lambda: cholesky_lower(A), A)
        n = A.shape[-1]
        L_inv = solve_tri(L, ops.expand(eye_like(n, L), L.shape), False)
        phi = tril(mT(L) @ gL)
        phi = phi - 0.5 * diag_embed(diagonal(phi))
        gA = mT(L_inv) @ phi @ L_inv
        return 0.5 * (gA + mT(gA))

    @staticmethod
    def jvp(ctx, t):
        # dL = L Phi(L^{-1} dA L^{-H})
        (A,) = ctx.saved_tensors
        L = _out(ctx.out, lambda: cholesky_lower(A), A)
        d = solve_tri(L, t, False)
        d = mT(solve_tri(L, mT(d), False))
        d = tril(d) - 0.5 * diag_embed(diagonal(d))
        return L @ d


def cholesky_lower(A):
    return _Cholesky.apply(A)


# ---------------------------------------------------------------------------------------------------------
# eigendecomposition and SVD


def _off_diagonal_reciprocal(x):
    """``1 / x`` off the diagonal of the last two dims, 0 on it (x: eigenvalue differences, 0 on the
    diagonal), in ad ops: nested forward levels differentiate it."""
    n = x.shape[-1]
    eye = wrap_array(np.eye(n, dtype=x.dtype))
    return wrap_array(1.0 - np.eye(n, dtype=x.dtype)) / (x + eye)


class _Eigh(_Primitive):
    _grad_fn_name = "LinalgEighBackward0"

    @staticmethod
    def forward(ctx, A, UPLO):
        ctx.UPLO = UPLO
        ctx.set_materialize_grads(False)  # an unused output's gradient is None, as torch's undefined one
        L, V = np.linalg.eigh(A._data, UPLO=UPLO)
        ctx.L = L
        ctx.V = V
        ctx.save_for_backward(A)
        return wrap_array(L), wrap_array(V)

    @staticmethod
    def backward(ctx, gL, gV):
        # torch's linalg_eig_backward (hermitian): gA = V (diag(gL) + skew(V^H gV) / E) V^H with
        # E_ij = L_j - L_i (the skew part over E is symmetric)
        (A,) = ctx.saved_tensors
        if _recompute(A):
            ctx.check_unsaved()  # (reads A, which torch's node does not save)
            L, V = _Eigh.apply(A, ctx.UPLO)
        else:
            L, V = wrap_array(ctx.L), wrap_array(ctx.V)
        inner = None
        if gV is not None:
            VhgV = mT(V) @ gV
            VhgV = 0.5 * (VhgV - mT(VhgV))
            E = ops.unsqueeze(L, -2) - ops.unsqueeze(L, -1)
            # E is 0 on the diagonal (so is skew(VhgV)); torch fills it with 1, giving 0 there as here
            ones = wrap_array(np.eye(L.shape[-1], dtype=L.dtype))
            inner = VhgV / (E + ones)
        if gL is not None:
            inner = diag_embed(gL) if inner is None else inner + diag_embed(gL)
        return V @ inner @ mT(V), None

    @staticmethod
    def jvp(ctx, t, _uplo):
        (A,) = ctx.saved_tensors
        if _outer_dual(A):
            L, V = _Eigh.apply(A, ctx.UPLO)
        else:
            L, V = wrap_array(ctx.L), wrap_array(ctx.V)
        tmp = mT(V) @ t @ V
        dL = diagonal(tmp)
        E = ops.unsqueeze(L, -2) - ops.unsqueeze(L, -1)
        dV = V @ (tmp * _off_diagonal_reciprocal(E))
        return dL, dV


def eigh(A, UPLO="L"):
    return _Eigh.apply(A, UPLO)


class _Svd(_Primitive):
    _grad_fn_name = "LinalgSvdBackward0"

    @staticmethod
    def forward(ctx, A, full_matrices):
        U, S, Vh = lapack_svd(A._data, full_matrices=full_matrices)
        ctx.full = full_matrices
        ctx.set_materialize_grads(False)  # an unused output's gradient is None, as torch's undefined one
        ctx.U, ctx.S, ctx.Vh = U, S, Vh
        ctx.save_for_backward(A)
        return wrap_array(U), wrap_array(S), wrap_array(Vh)

    @staticmethod
    def backward(ctx, gU, gS, gVh):
        (A,) = ctx.saved_tensors
        m, n = A.shape[-2:]
        k = min(m, n)
        if _recompute(A):
            ctx.check_unsaved()  # (reads A, which torch's node does not save)
            U, S, Vh = _Svd.apply(A, False)
        else:
            U, S, Vh = (wrap_array(a) for a in (ctx.U, ctx.S, ctx.Vh))
            if ctx.full:
                U, Vh = U[..., :k], Vh[..., :k, :]
        if ctx.full:  # torch narrows the gradients of the full factors to the reduced ones
            gU = gU[..., :k] if gU is not None else None
            gVh = gVh[..., :k, :] if gVh is not None else None
        return svd_backward(gU, gS, gVh, U, S, Vh, m, n), None

    @staticmethod
    def jvp(ctx, t, _full):
        (A,) = ctx.saved_tensors
        if _outer_dual(A):
            U, S, Vh = _Svd.apply(A, ctx.full)
        else:
            U, S, Vh = (wrap_array(a) for a in (ctx.U, ctx.S, ctx.Vh))
        m, n = t.shape[-2:]
        k = min(m, n)
        Uk, Vhk = U[..., :k], Vh[..., :k, :]
        V = mT(Vhk)
        dP = mT(Uk) @ t @ V
        dS = diagonal(dP)
        S2 = S * S
        F = _off_diagonal_reciprocal(ops.unsqueeze(S2, -2) - ops.unsqueeze(S2, -1))  # 1 / (s_j^2 - s_i^2)
        Srow = ops.unsqueeze(S, -2)
        Scol = ops.unsqueeze(S, -1)
        C = (dP * Srow + Scol * mT(dP)) * F  # U^T dU
        D = (Scol * dP + mT(dP) * Srow) * F  # V^T dV
        dU = Uk @ C
        dV = V @ D
        if m > k:
            dU = dU + (t @ V - Uk @ dP) / Srow
        if n > k:
            dV = dV + (mT(t) @ Uk - V @ mT(dP)) / Srow
        dVh = mT(dV)
        if ctx.full:
            # the completing columns are not determined by A: their tangent is zero, as torch's
            if m > k:
                dU = ops.cat([dU, wrap_array(np.zeros(dU.shape[:-1] + (m - k,), dU.dtype))], -1)
            if n > k:
                dVh = ops.cat([dVh, wrap_array(np.zeros(dVh.shape[:-2] + (n - k, n), dVh.dtype))], -2)
        return dU, dS, dVh


def svd_backward(gU, gS, gVh, U, S, Vh, m, n):
    """torch's ``svd_backward`` for real inputs, reduced factors (U: m x k, S: k, Vh: k x n)."""
    if gU is None and gVh is None:
        if gS is None:
            return None
        return (U * ops.unsqueeze(gS, -2)) @ Vh
    Srow = ops.unsqueeze(S, -2)
    Scol = ops.unsqueeze(S, -1)
    S2 = S * S
    ones = wrap_array(np.eye(S.shape[-1], dtype=S.dtype))
    E = ops.unsqueeze(S2, -2) - ops.unsqueeze(S2, -1) + ones

    def skew(X):
        return X - mT(X)

    if gU is not None:
        UhgU = skew(mT(U) @ gU)
    if gVh is not None:
        VhgV = skew(Vh @ mT(gVh))
    if gU is not None and gVh is not None:
        gA = (UhgU * Srow + Scol * VhgV) / E
    elif gU is not None:
        gA = (UhgU / E) * Srow
    else:
        gA = Scol * VhgV / E
    if gS is not None:
        gA = gA + diag_embed(gS)
    if m > n and gU is not None:
        gA = U @ gA
        gUSinv = gU / Srow
        gA = gA + gUSinv - U @ (mT(U) @ gUSinv)
        return gA @ Vh
    if m < n and gVh is not None:
        gA = gA @ Vh
        SinvgVh = gVh / Scol
        gA = gA + SinvgVh - (SinvgVh @ mT(Vh)) @ Vh
        return U @ gA
    return U @ (gA @ Vh)


def svd(A, full_matrices=True):
    return _Svd.apply(A, bool(full_matrices))


# ---------------------------------------------------------------------------------------------------------
# QR


def _copyltu(M):
    return tril(M, -1) + mT(tril(M, -1)) + diag_embed(diagonal(M))


class _Qr(_Primitive):
    _grad_fn_name = "LinalgQrBackward0"

    @staticmethod
    def forward(ctx, A, mode):
        ctx.mode = mode
        ctx.set_materialize_grads(False)  # an unused output's gradient is None, as torch's undefined one
        if mode == "r":
            R = np.linalg.qr(A._data, mode="r")
            Q = np.empty((0,), A._data.dtype)
        else:
            Q, R = np.linalg.qr(A._data, mode=mode)
        ctx.Q, ctx.R = Q, R
        ctx.save_for_backward(A)
        return wrap_array(Q), wrap_array(R)

    @staticmethod
    def backward(ctx, gQ, gR):
        (A,) = ctx.saved_tensors
        m, n = A.shape[-2:]
        if ctx.mode == "r":
            raise RuntimeError(
                "The derivative of linalg.qr depends on Q, which is not computed when mode='r'. Please use "
                "linalg.qr(A, mode='reduced') if you are going to differentiate through linalg.qr."
            )
        if ctx.mode == "complete" and m > n:
            raise RuntimeError("The QR decomposition is not differentiable when mode='complete' and nrows > ncols.")
        if _recompute(A):
            ctx.check_unsaved()  # (reads A, which torch's node does not save)
            Q, R = _Qr.apply(A, ctx.mode)
        else:
            Q, R = wrap_array(ctx.Q), wrap_array(ctx.R)
        if gQ is None:
            gQ = ops.zeros_like(Q)
        if gR is None:
            gR = ops.zeros_like(R)
        if m >= n:
            return _qr_backward_tall(gQ, gR, Q, R), None
        # wide: A = Q [X | Y] with X square; Y = Q R2 moves gQ by Y gR2^T
        ctx.check_unsaved()
        Y = A[..., :, m:]
        gX = _qr_backward_tall(gQ + Y @ mT(gR[..., :, m:]), gR[..., :, :m], Q, R[..., :, :m])
        gY = Q @ gR[..., :, m:]
        return ops.cat([gX, gY], -1), None

    @staticmethod
    def jvp(ctx, t, _mode):
        m, n = t.shape[-2:]
        if ctx.mode == "r":
            raise RuntimeError(
                "The derivative of linalg.qr depends on Q, which is not computed when mode='r'. Please use "
                "linalg.qr(A, mode='reduced') if you are going to differentiate through linalg.qr."
            )
        if ctx.mode == "complete" and m > n:
            raise RuntimeError("The QR decomposition is not differentiable when mode='complete' and nrows > ncols.")
        (A,) = ctx.saved_tensors
        Q, R = _Qr.apply(A, ctx.mode) if _outer_dual(A) else (wrap_array(ctx.Q), wrap_array(ctx.R))
        if m >= n:
            return _qr_jvp_tall(t, Q, R)
        dQ, dR1 = _qr_jvp_tall(t[..., :, :m], Q, R[..., :, :m])
        dR2 = mT(Q) @ (t[..., :, m:] - dQ @ R[..., :, m:])
        return dQ, ops.cat([dR1, dR2], -1)


def _qr_backward_tall(gQ, gR, Q, R):
    # gA = (gQ + Q copyltu(M)) R^{-T}, M = R gR^T - gQ^T Q (m >= n, reduced factors)
    M = R @ mT(gR) - mT(gQ) @ Q
    b = gQ + Q @ _copyltu(M)
    return mT(solve_tri(R, mT(b), True))


def _qr_jvp_tall(t, Q, R):
    # C = Q^T dA R^{-1}; Q^T dQ = Omega (skew, from C's strictly lower part); dR = (C - Omega) R
    C = mT(solve_tri(mT(R), mT(mT(Q) @ t), False))  # (Q^T dA) R^{-1}
    low = tril(C, -1)
    omega = low - mT(low)
    dR = (C - omega) @ R
    dQ = mT(solve_tri(mT(R), mT(t), False)) - Q @ (C - omega)
    return dQ, dR


def qr(A, mode="reduced"):
    return _Qr.apply(A, mode)


# ---------------------------------------------------------------------------------------------------------
# matrix exponential and pseudo-inverse


def _block_upper(A, G):
    """``[[A, G], [0, A]]`` for (batches of) square A and G."""
    z = wrap_array(np.zeros(A.shape, A.dtype))
    top = ops.cat([A, G], -1)
    bottom = ops.cat([z, A], -1)
    return ops.cat([top, bottom], -2)


class _MatrixExp(_Primitive):
    _grad_fn_name = "LinalgMatrixExpBackward0"

    @staticmethod
    def forward(ctx, A):
        ctx.save_for_backward(A)
        import scipy.linalg

        return wrap_array(np.asarray(scipy.linalg.expm(A._data), dtype=A.dtype))

    @staticmethod
    def backward(ctx, g):
        # torch's differential_analytic_matrix_function: the top-right block of exp([[A^T, g], [0, A^T]])
        (A,) = ctx.saved_tensors
        n = A.shape[-1]
        return matrix_exp(_block_upper(mT(A), g))[..., :n, n:]

    @staticmethod
    def jvp(ctx, t):
        (A,) = ctx.saved_tensors
        n = A.shape[-1]
        return matrix_exp(_block_upper(_in(A), t))[..., :n, n:]


def matrix_exp(A):
    return _MatrixExp.apply(A)


def pinv_array(a, atol, rtol, hermitian):
    """numpy pseudo-inverse with torch's thresholds: singular values below max(atol, rtol * s_max) dropped."""
    if hermitian:
        w, v = np.linalg.eigh(a)
        s = np.abs(w)
    else:
        u, s, vh = lapack_svd(a, full_matrices=False)
    smax = np.max(s, axis=-1, keepdims=True) if s.shape[-1] else np.zeros(s.shape[:-1] + (1,), s.dtype)
    cut = np.maximum(np.asarray(atol, a.dtype)[..., None], np.asarray(rtol, a.dtype)[..., None] * smax)
    keep = s > cut
    with np.errstate(divide="ignore"):
        sinv = np.where(keep, 1.0 / np.where(keep, s, 1.0), 0.0).astype(a.dtype)
    if hermitian:
        winv = np.where(keep, 1.0 / np.where(keep, w, 1.0), 0.0).astype(a.dtype)
        return (v * winv[..., None, :]) @ np.swapaxes(v, -1, -2)
    return (np.swapaxes(vh, -1, -2) * sinv[..., None, :]) @ np.swapaxes(u, -1, -2)


class _Pinv(_Primitive):
    _grad_fn_name = "LinalgPinvBackward0"

    @staticmethod
    def forward(ctx, A, atol, rtol, hermitian):
        ctx.args = (atol, rtol, hermitian)
        ctx.out = pinv_array(A._data, atol, rtol, hermitian)
        ctx.save_for_backward(A)
        return wrap_array(ctx.out)

    @staticmethod
    def backward(ctx, g):
        (A,) = ctx.saved_tensors
        P = _again(ctx, lambda: _Pinv.apply(A, *ctx.args), A)
        return _pinv_backward(g, P, A), None, None, None

    @staticmethod
    def jvp(ctx, t, _a, _r, _h):
        (A,) = ctx.saved_tensors
        P = _out(ctx.out, lambda: _Pinv.apply(A, *ctx.args), A)
        A = _in(A)
        m, n = A.shape[-2:]
        Im = eye_like(m, A)
        In = eye_like(n, A)
        return -(P @ t @ P) + P @ mT(P) @ mT(t) @ (Im - A @ P) + (In - P @ A) @ mT(t) @ mT(P) @ P


def _pinv_backward(g, P, A):
    """torch's ``pinv_backward`` (real case)."""
    m, n = A.shape[-2:]
    Ph = mT(P)
    gh = mT(g)
    if m <= n:
        K = gh @ P
        KPh = K @ Ph
        return -mT(P @ K) + KPh - (A @ P) @ KPh + (Ph @ P) @ (gh - K @ A)
    K = P @ gh
    PhK = Ph @ K
    return -mT(K @ P) + (gh - A @ K) @ P @ Ph + PhK - PhK @ P @ A


def pinv(A, atol, rtol, hermitian):
    return _Pinv.apply(A, atol, rtol, bool(hermitian))


# ---------------------------------------------------------------------------------------------------------
# vector norms


def _sgn(x):
    """sign(x) with 0 at NaN, as torch's ``sgn`` in its norm backward: a NaN member of a 1-norm gets no gradient
    (the same as ``abs(x).sum()``'s, whose abs rule gives NaN a zero partial)."""
    s = np.sign(x._data)
    nan = np.isnan(s)
    if nan.any():  # (rare: a test and no write in the common case)
        s[nan] = 0
    return wrap_array(s)


def _norm_partial(x, norm, ord, dims):
    """d ||x||_ord / dx (torch's ``norm_backward`` with grad = 1), written with ad ops; ``norm`` keeps dims."""
    if ord == 0:
        return ops.zeros_like(x)
    if ord == 1:
        return _sgn(x) * ops.ones_like(x)
    nz = wrap_array(norm._data != 0)
    safe = ops.where(nz, norm, ops.ones_like(norm))
    if ord == 2:
        return ops.where(nz, x / safe, ops.zeros_like(x))
    if ord in (float("inf"), float("-inf")):
        # the extreme elements of x as it is now (not the saved norm: x may have changed by an ulp since,
        # as gradcheck's perturb-and-restore does)
        a = np.abs(x._data)
        ext = np.max(a, axis=dims, keepdims=True) if ord > 0 else np.min(a, axis=dims, keepdims=True)
        mask = wrap_array((a == ext).astype(x.dtype))
        # a line holding a NaN has a NaN norm that no member equals: no member gets a gradient (torch's 0, and
        # amax(abs(x))'s, whose NaN member's abs partial is 0), where the mean over no members would be 0 / 0
        count = wrap_array(np.maximum(np.sum(mask._data, axis=dims, keepdims=True), 1))
        return _sgn(x) * mask / count
    ax = ops.abs(x)
    if ord < 1:
        nzx = wrap_array(x._data != 0)
        ax_safe = ops.where(nzx, ax, ops.ones_like(ax))
        scaled = ops.where(nzx, _sgn(x) * ax_safe ** (ord - 1), ops.zeros_like(x))
        return scaled * safe ** (1 - ord)
    if ord < 2:
        scaled = _sgn(x) * ax ** (ord - 1)
    else:
        scaled = x * ax ** (ord - 2)
    return ops.where(nz, scaled / safe ** (ord - 1), ops.zeros_like(x))


class _VectorNorm(_Primitive):
    _grad_fn_name = "LinalgVectorNormBackward0"

    @staticmethod
    def forward(ctx, x, ord, dims):
        a = np.abs(x._data)
        if ord == float("inf"):
            out = np.max(a, axis=dims, keepdims=True) if a.size else np.zeros(_kept_shape(a.shape, dims), a.dtype)
        elif ord == float("-inf"):
            out = np.min(a, axis=dims, keepdims=True)
        elif ord == 0:
            out = np.sum(a != 0, axis=dims, keepdims=True).astype(a.dtype)
        elif ord == 1:
            out = np.sum(a, axis=dims, keepdims=True)
        elif ord == 2:
            out = np.sqrt(np.sum(a * a, axis=dims, keepdims=True))
        else:
            with np.errstate(divide="ignore"):
                out = np.sum(a**ord, axis=dims, keepdims=True) ** (1.0 / ord)
        ctx.ord = ord
        ctx.dims = dims
        ctx.out = out.astype(x.dtype)
        ctx.save_for_backward(x)
        return wrap_array(ctx.out)

    @staticmethod
    def backward(ctx, g, *_):
        if ctx.ord == 0:
            # a count: torch's node gives no gradient at all (undefined, not zeros), so grad() of it alone raises
            # "appears to not have been used in the graph", and an inf cotangent adds nothing (not 0 * inf)
            return None, None, None
        (x,) = ctx.saved_tensors
        norm = _again(ctx, lambda: _VectorNorm.apply(x, ctx.ord, ctx.dims), x)
        return g * _norm_partial(x, norm, ctx.ord, ctx.dims), None, None

    @staticmethod
    def jvp(ctx, t, _o, _d):
        if ctx.ord == 0:  # torch's tangent: zeros, whatever t holds (inf, NaN)
            return ops.zeros_like(wrap_array(ctx.out))
        (x,) = ctx.saved_tensors
        norm = _out(ctx.out, lambda: _VectorNorm.apply(x, ctx.ord, ctx.dims), x)
        d = _norm_partial(_in(x), norm, ctx.ord, ctx.dims)
        return ops.sum(d * t, ctx.dims, keepdim=True)


def _kept_shape(shape, dims):
    return tuple(1 if k in dims else s for k, s in enumerate(shape))


def vector_norm_keepdim(x, ord, dims):
    """``||x||_ord`` over ``dims`` (a tuple of non-negative dims), keeping them (size 1)."""
    return _VectorNorm.apply(x, float(ord), tuple(dims))
