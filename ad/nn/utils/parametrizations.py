"""``ad.nn.utils.parametrizations``: ``orthogonal``, ``weight_norm`` and ``spectral_norm`` built on
``parametrize.register_parametrization``, as ``torch.nn.utils.parametrizations``.

Each registers one parametrization module on ``module.<name>``:
- ``_Orthogonal``: a matrix (or batch of matrices, the last two dims) ``X`` maps to an orthogonal (tall) or
  row-orthonormal (wide: done on ``X.mT``) matrix. ``matrix_exp``: ``expm(A)``, ``cayley``:
  ``(I - A/2)^-1 (I + A/2)``, with ``A = L - L^T`` skew from the lower triangle ``L`` of ``X`` (padded to square
  with zero columns; the first ``k`` columns kept); ``householder``: the product of the reflectors stored below
  ``X``'s diagonal (``tau = 2 / (1 + |v|^2)``), each column times ``X``'s diagonal entry (+-1, truncated
  toward zero). With ``use_trivialization`` (default) the module holds a buffer ``base`` (an orthogonal
  ``n x n`` matrix) and gives ``base @ Q(X)``: assigning a matrix stores its orthogonal factor in ``base``
  (completed with random columns when tall) and resets the original to ``-I``, where ``Q(-I)`` selects
  ``base``'s first columns.
- ``_WeightNorm``: originals ``original0 = g`` (the norms over every dim but ``dim``) and ``original1 = v``;
  the weight is ``v g / |v|``.
- ``_SpectralNorm``: buffers ``_u`` and ``_v`` (power-iteration vectors, 15 iterations at registration, then
  ``n_power_iterations`` per training forward); the weight is ``W / sigma``, ``sigma = u . (W_mat v)``.
"""

from enum import Enum, auto

from ... import creation, linalg
from ...grad_mode import no_grad
from ...linalg_factor import geqrf
from ...ops.indexing import cat
from ...ops.products import mv, vdot
from ...ops.structural import where
from ...tensor import Tensor
from ...top_level import norm_except_dim
from .. import functional as F
from ..modules.module import Module
from . import parametrize

__all__ = ["orthogonal", "spectral_norm", "weight_norm"]


class _OrthMaps(Enum):
    matrix_exp = auto()
    cayley = auto()
    householder = auto()


def _make_orthogonal(a):
    """The Q of ``a``'s QR decomposition whose R has a positive diagonal (unique for a full-rank ``a``)."""
    q, r = linalg.qr(a)
    return q * r.diagonal(dim1=-2, dim2=-1).sign().unsqueeze(-2)


def _is_orthogonal(q):
    n = q.shape[-1]
    eye = creation.eye(n, dtype=q.dtype, device=q.device)
    tol = 1e-5 if q.dtype.itemsize <= 4 else 1e-10
    return bool(((q.mT @ q - eye).abs() <= tol).all())


class _Orthogonal(Module):
    def __init__(self, weight, orthogonal_map, *, use_trivialization=True):
        super().__init__()
        self.shape = weight.shape
        self.orthogonal_map = orthogonal_map
        if use_trivialization:
            self.register_buffer("base", None)

    def forward(self, X):
        n, k = X.shape[-2:]
        transposed = n < k
        if transposed:
            X = X.mT
            n, k = k, n
        if self.orthogonal_map in (_OrthMaps.matrix_exp, _OrthMaps.cayley):
            L = X.tril()
            if n != k:
                L = cat([L, L.new_zeros(*L.shape[:-1], n - k)], dim=-1)
            A = L - L.mT
            if self.orthogonal_map is _OrthMaps.matrix_exp:
                Q = linalg.matrix_exp(A)
            else:
                eye = creation.eye(n, dtype=A.dtype, device=A.device)
                Q = linalg.solve(eye - A / 2, eye + A / 2)
            if n != k:
                Q = Q[..., :k]
        else:
            V = X.tril(-1)
            tau = 2.0 / (1.0 + (V * V).sum(dim=-2))
            Q = linalg.householder_product(V, tau)
            # the diagonal holds geqrf's sign of R_ii (+-1), which turns the reflectors' Q into the positive-R
            # factor; truncated toward zero as torch's (an entry moved inside (-1, 1) zeroes its column)
            Q = Q * X.diagonal(dim1=-2, dim2=-1).trunc().unsqueeze(-2)
        base = self._buffers.get("base")
        if base is not None:
            Q = base @ Q
        if transposed:
            Q = Q.mT
        return Q

    def right_inverse(self, Q):
        if Q.shape != self.shape:
            raise ValueError(
                f"Expected a matrix or batch of matrices of shape {tuple(self.shape)}. "
                f"Got a tensor of shape {tuple(Q.shape)}."
            )
        Q_init = Q
        n, k = Q.shape[-2:]
        transposed = n < k
        if transposed:
            Q = Q.mT
            n, k = k, n
        if "base" not in self._buffers:
            if self.orthogonal_map in (_OrthMaps.matrix_exp, _OrthMaps.cayley):
                raise NotImplementedError(
                    "It is not possible to assign to the matrix exponential or the Cayley parametrizations when "
                    "use_trivialization=False."
                )
            A, tau = geqrf(Q)
            # forward's reflectors always have tau = 2 / (1 + |v|^2); where geqrf skipped a column (tau = 0, v = 0)
            # that reflector flips the column, so its sign flips too
            d = A.diagonal(dim1=-2, dim2=-1).sign()
            d = where(tau == 0, -d, d)
            eye = creation.eye(n, k, dtype=A.dtype, device=A.device)
            A = A * (1 - eye) + eye * d.unsqueeze(-2)
            return A.mT if transposed else A
        if n == k:
            Q = Q.clone() if _is_orthogonal(Q) else _make_orthogonal(Q)
        else:  # a tall matrix: completed to a square orthogonal base by random columns
            N = creation.randn(*Q.shape[:-2], n, n - k, dtype=Q.dtype, device=Q.device)
            Q = _make_orthogonal(cat([Q, N], dim=-1))
        self.base = Q
        eye = creation.eye(Q_init.shape[-2], Q_init.shape[-1], dtype=Q_init.dtype, device=Q_init.device)
        return creation.zeros_like(Q_init) - eye


def orthogonal(module, name="weight", orthogonal_map=None, *, use_trivialization=True):
    """Constrain ``module.<name>`` (a matrix or batch of matrices) to orthogonal (or semi-orthogonal) matrices, as
    ``torch.nn.utils.parametrizations.orthogonal``.

    Args:
        module (Module): the module.
        name (str): the tensor's name (default ``"weight"``).
        orthogonal_map (str): ``"matrix_exp"``, ``"cayley"`` or ``"householder"``; default ``"matrix_exp"`` for a
            square matrix, else ``"householder"``.
        use_trivialization (bool): optimize in the tangent space of a base point ``base`` (a buffer of the
            parametrization), which is reset by each assignment ``module.<name> = Q`` (default); without it,
            ``matrix_exp`` and ``cayley`` cannot be assigned.

    Returns:
        ``module``.

    Raises:
        ValueError: no tensor ``name``, fewer than 2 dims, or an unknown ``orthogonal_map``.

    Example:
        >>> m = ad.nn.utils.parametrizations.orthogonal(ad.nn.Linear(5, 3))
        >>> bool(ad.allclose(m.weight @ m.weight.T, ad.eye(3), atol=1e-6))
        True
    """
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if weight.ndim < 2:
        raise ValueError(f"Expected a matrix or batch of matrices. Got a tensor of {weight.ndim} dimensions.")
    if orthogonal_map is None:
        orthogonal_map = "matrix_exp" if weight.shape[-2] == weight.shape[-1] else "householder"
    orth_enum = getattr(_OrthMaps, orthogonal_map, None) if isinstance(orthogonal_map, str) else None
    if orth_enum is None:
        raise ValueError(
            f'orthogonal_map has to be one of "matrix_exp", "cayley", "householder". Got: {orthogonal_map}'
        )
    orth = _Orthogonal(weight, orth_enum, use_trivialization=use_trivialization)
    parametrize.register_parametrization(module, name, orth, unsafe=True)
    return module


class _WeightNorm(Module):
    def __init__(self, dim=0):
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g, weight_v):
        return weight_v * (weight_g / norm_except_dim(weight_v, 2, self.dim))

    def right_inverse(self, weight):
        return norm_except_dim(weight, 2, self.dim), weight


def weight_norm(module, name="weight", dim=0):
    """Reparametrize ``module.<name>`` as ``g v / |v|`` (norms over every dim but ``dim``; ``dim=None``: one norm
    of the whole tensor), as ``torch.nn.utils.parametrizations.weight_norm``: ``g`` and ``v`` are
    ``parametrizations.<name>.original0`` and ``original1``.

    Returns:
        ``module``.

    Example:
        >>> m = ad.nn.utils.parametrizations.weight_norm(ad.nn.Linear(20, 40))
        >>> m.parametrizations.weight.original0.shape, m.parametrizations.weight.original1.shape
        ((40, 1), (40, 20))
    """
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)
    return module


class _SpectralNorm(Module):
    def __init__(self, weight, n_power_iterations=1, dim=0, eps=1e-12):
        super().__init__()
        ndim = weight.ndim
        if dim >= ndim or dim < -ndim:
            raise IndexError(
                f"Dimension out of range (expected to be in range of [-{ndim}, {ndim - 1}] but got {dim})"
            )
        if n_power_iterations <= 0:
            raise ValueError(
                f"Expected n_power_iterations to be positive, but got n_power_iterations={n_power_iterations}"
            )
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        if ndim > 1:
            self.n_power_iterations = n_power_iterations
            with no_grad():
                weight_mat = self._reshape_weight_to_matrix(weight)
                h, w = weight_mat.shape
                u = creation.randn(h, dtype=weight.dtype, device=weight.device)
                v = creation.randn(w, dtype=weight.dtype, device=weight.device)
                self.register_buffer("_u", F.normalize(u, dim=0, eps=self.eps))
                self.register_buffer("_v", F.normalize(v, dim=0, eps=self.eps))
                self._power_method(weight_mat, 15)

    def _reshape_weight_to_matrix(self, weight):
        if self.dim != 0:
            weight = weight.movedim(self.dim, 0)
        return weight.flatten(1)

    def _power_method(self, weight_mat, n_power_iterations):
        # the buffers are updated in place (the vectors are module state, as torch's out= updates)
        with no_grad():
            for _ in range(n_power_iterations):
                self._u.copy_(F.normalize(mv(weight_mat, self._v), dim=0, eps=self.eps))
                self._v.copy_(F.normalize(mv(weight_mat.mT, self._u), dim=0, eps=self.eps))

    def forward(self, weight):
        if weight.ndim == 1:
            return F.normalize(weight, dim=0, eps=self.eps)
        weight_mat = self._reshape_weight_to_matrix(weight)
        if self.training:
            self._power_method(weight_mat, self.n_power_iterations)
        # copies: a later in-place update of the buffers must not touch what backward saved
        u = self._u.clone()
        v = self._v.clone()
        sigma = vdot(u, mv(weight_mat, v))
        return weight / sigma

    def right_inverse(self, value):
        return value


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None):
    """Divide ``module.<name>`` by its spectral norm, estimated by power iteration, as
    ``torch.nn.utils.parametrizations.spectral_norm``: the vectors are the buffers
    ``parametrizations.<name>.0._u`` and ``._v`` (15 iterations at registration, ``n_power_iterations`` more in
    each training-mode read). A 1-D tensor is divided by its norm. ``dim`` defaults to 1 for transposed
    convolutions, else 0.

    Returns:
        ``module``.

    Raises:
        ValueError: no tensor ``name``, or ``n_power_iterations`` not positive. IndexError: ``dim`` out of range.

    Example:
        >>> m = ad.nn.utils.parametrizations.spectral_norm(ad.nn.Linear(20, 40))
        >>> m.parametrizations.weight.original.shape
        (40, 20)
    """
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if dim is None:
        from ..modules.conv import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d

        dim = 1 if isinstance(module, (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)) else 0
    parametrize.register_parametrization(module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module
