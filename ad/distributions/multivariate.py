"""``MultivariateNormal`` (by covariance, precision or Cholesky factor), ``LowRankMultivariateNormal`` (covariance
W W^T + diag(D), densities by the Woodbury identity in O(n m^2)) and ``Independent`` (batch dims of a
distribution reinterpreted as event dims)."""

import math

import ad

from . import constraints
from .distribution import Distribution, _sum_rightmost, cached_property

__all__ = ["Independent", "LowRankMultivariateNormal", "MultivariateNormal"]


def _batch_mahalanobis(scale_tril, diff):
    """``|| L^{-1} diff ||^2`` over the last dim, batched by broadcasting."""
    shape = ad.broadcast_shapes(scale_tril.shape[:-1], diff.shape)
    lower = scale_tril.expand(shape + scale_tril.shape[-1:])
    solved = ad.linalg.solve_triangular(lower, diff.expand(shape).unsqueeze(-1), upper=False)
    return solved.squeeze(-1).pow(2).sum(-1)


def _precision_to_scale_tril(precision):
    """The lower Cholesky factor of ``precision``'s inverse without inverting it: P = U U^T with U the upper
    triangular flip(cholesky(flip(P))), so P^{-1} = L L^T with L = (U^T)^{-1}: one Cholesky, one triangular solve."""
    lf = ad.linalg.cholesky(ad.flip(precision, (-2, -1)))
    l_inv = ad.flip(lf, (-2, -1)).mT
    eye = ad.eye(precision.shape[-1], dtype=precision.dtype, device=precision.device)
    return ad.linalg.solve_triangular(l_inv, eye.expand(l_inv.shape), upper=False)


class MultivariateNormal(Distribution):
    """The multivariate normal distribution N(loc, Sigma), Sigma given by exactly one of ``covariance_matrix``,
    ``precision_matrix`` (its inverse) or ``scale_tril`` (its lower Cholesky factor)."""

    arg_constraints = {"loc": constraints.real_vector, "covariance_matrix": constraints.positive_definite,
                       "precision_matrix": constraints.positive_definite, "scale_tril": constraints.lower_cholesky}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc, covariance_matrix=None, precision_matrix=None, scale_tril=None, validate_args=None):
        if loc.dim() < 1:
            raise ValueError("loc must be at least one-dimensional.")
        given = [m for m in (covariance_matrix, precision_matrix, scale_tril) if m is not None]
        if len(given) != 1:
            raise ValueError("Exactly one of covariance_matrix or precision_matrix or scale_tril may be specified.")
        matrix = given[0]
        if matrix.dim() < 2:
            name = ("covariance_matrix" if covariance_matrix is not None else
                    "precision_matrix" if precision_matrix is not None else "scale_tril")
            raise ValueError(f"{name} matrix must be at least two-dimensional, with optional leading batch dimensions")
        batch_shape = ad.broadcast_shapes(matrix.shape[:-2], loc.shape[:-1])
        n = loc.shape[-1]
        if covariance_matrix is not None:
            self.covariance_matrix = covariance_matrix.expand(batch_shape + (n, n))
        elif precision_matrix is not None:
            self.precision_matrix = precision_matrix.expand(batch_shape + (n, n))
        else:
            self.scale_tril = scale_tril.expand(batch_shape + (n, n))
        self.loc = loc.expand(batch_shape + (n,))
        super().__init__(batch_shape, (n,), validate_args=validate_args)

    @cached_property
    def scale_tril(self):
        if "covariance_matrix" in self.__dict__:
            return ad.linalg.cholesky(self.covariance_matrix)
        return _precision_to_scale_tril(self.precision_matrix)

    @cached_property
    def covariance_matrix(self):
        return self.scale_tril @ self.scale_tril.mT

    @cached_property
    def precision_matrix(self):
        return ad.cholesky_inverse(self.scale_tril)

    def expand(self, batch_shape, _instance=None):
        new = self._blank(_instance)
        batch_shape = tuple(batch_shape)
        n = self.event_shape[0]
        new.loc = self.loc.expand(batch_shape + (n,))
        for name in ("covariance_matrix", "precision_matrix", "scale_tril"):
            if name in self.__dict__:
                setattr(new, name, self.__dict__[name].expand(batch_shape + (n, n)))
        return self._expanded(new, batch_shape)

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        return self.scale_tril.pow(2).sum(-1).expand(self._batch_shape + self._event_shape)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        eps = ad.randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + (self.scale_tril @ eps.unsqueeze(-1)).squeeze(-1)

    def _half_log_det(self):
        return self.scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        m = _batch_mahalanobis(self.scale_tril, value - self.loc)
        return -0.5 * (self._event_shape[0] * math.log(2 * math.pi) + m) - self._half_log_det()

    def entropy(self):
        h = 0.5 * self._event_shape[0] * (1.0 + math.log(2 * math.pi)) + self._half_log_det()
        return h.expand(self._batch_shape) if len(self._batch_shape) else h

    def __repr__(self):
        shown = [k for k in ("loc", "covariance_matrix", "precision_matrix", "scale_tril") if k in self.__dict__]
        return "MultivariateNormal(" + ", ".join(f"{k}: {ad.Size(self.__dict__[k].shape)}" for k in shown) + ")"


class Independent(Distribution):
    """``base_distribution`` with its ``reinterpreted_batch_ndims`` rightmost batch dims made event dims: its
    ``log_prob`` and ``entropy`` sum over them (e.g. a diagonal Gaussian from a batch of ``Normal``)."""

    arg_constraints = {}

    def __init__(self, base_distribution, reinterpreted_batch_ndims, validate_args=None):
        n = reinterpreted_batch_ndims
        if n > len(base_distribution.batch_shape):
            raise ValueError(
                "Expected reinterpreted_batch_ndims <= len(base_distribution.batch_shape), actual "
                f"{n} vs {len(base_distribution.batch_shape)}"
            )
        shape = tuple(base_distribution.batch_shape) + tuple(base_distribution.event_shape)
        event_dim = n + len(base_distribution.event_shape)
        self.base_dist = base_distribution
        self.reinterpreted_batch_ndims = n
        super().__init__(shape[: len(shape) - event_dim], shape[len(shape) - event_dim:],
                         validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._blank(_instance)
        batch_shape = tuple(batch_shape)
        new.base_dist = self.base_dist.expand(batch_shape + tuple(self.event_shape[: self.reinterpreted_batch_ndims]))
        new.reinterpreted_batch_ndims = self.reinterpreted_batch_ndims
        return self._expanded(new, batch_shape)

    @property
    def has_rsample(self):
        return self.base_dist.has_rsample

    @property
    def has_enumerate_support(self):
        return False if self.reinterpreted_batch_ndims > 0 else self.base_dist.has_enumerate_support

    @constraints.dependent_property
    def support(self):
        support = self.base_dist.support
        if self.reinterpreted_batch_ndims:
            support = constraints.independent(support, self.reinterpreted_batch_ndims)
        return support

    @property
    def mean(self):
        return self.base_dist.mean

    @property
    def mode(self):
        return self.base_dist.mode

    @property
    def variance(self):
        return self.base_dist.variance

    def sample(self, sample_shape=()):
        return self.base_dist.sample(sample_shape)

    def rsample(self, sample_shape=()):
        return self.base_dist.rsample(sample_shape)

    def log_prob(self, value):
        return _sum_rightmost(self.base_dist.log_prob(value), self.reinterpreted_batch_ndims)

    def entropy(self):
        return _sum_rightmost(self.base_dist.entropy(), self.reinterpreted_batch_ndims)

    def enumerate_support(self, expand=True):
        if self.reinterpreted_batch_ndims > 0:
            raise NotImplementedError("Enumeration over cartesian product is not implemented")
        return self.base_dist.enumerate_support(expand=expand)

    def __repr__(self):
        return f"Independent({self.base_dist!r}, {self.reinterpreted_batch_ndims})"


class LowRankMultivariateNormal(Distribution):
    """N(loc, W W^T + diag(D)) for W = ``cov_factor`` (n x m, m usually much smaller than n) and D = ``cov_diag``.

    With the capacitance C = I_m + W^T D^-1 W (Cholesky factor L_C): log det Sigma = 2 log det L_C + sum log D, and
    x^T Sigma^-1 x = x^T D^-1 x - |L_C^-1 W^T D^-1 x|^2 (Woodbury), so no n x n matrix is factored."""

    arg_constraints = {"loc": constraints.real_vector, "cov_factor": constraints.independent(constraints.real, 2),
                       "cov_diag": constraints.independent(constraints.positive, 1)}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc, cov_factor, cov_diag, validate_args=None):
        if loc.dim() < 1:
            raise ValueError("loc must be at least one-dimensional.")
        n = loc.shape[-1]
        if cov_factor.dim() < 2:
            raise ValueError("cov_factor must be at least two-dimensional, with optional leading batch dimensions")
        if tuple(cov_factor.shape[-2:-1]) != (n,):
            raise ValueError(f"cov_factor must be a batch of matrices with shape {n} x m")
        if tuple(cov_diag.shape[-1:]) != (n,):
            raise ValueError(f"cov_diag must be a batch of vectors with shape {(n,)}")
        m = cov_factor.shape[-1]
        batch_shape = tuple(ad.broadcast_shapes(loc.shape[:-1], cov_factor.shape[:-2], cov_diag.shape[:-1]))
        self.loc = loc.expand(batch_shape + (n,))
        self.cov_factor = cov_factor.expand(batch_shape + (n, m))
        self.cov_diag = cov_diag.expand(batch_shape + (n,))
        super().__init__(batch_shape, (n,), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._blank(_instance)
        batch_shape = tuple(batch_shape)
        n, m = self.cov_factor.shape[-2:]
        new.loc = self.loc.expand(batch_shape + (n,))
        new.cov_factor = self.cov_factor.expand(batch_shape + (n, m))
        new.cov_diag = self.cov_diag.expand(batch_shape + (n,))
        return self._expanded(new, batch_shape)

    @cached_property
    def _capacitance_tril(self):
        w_scaled = self.cov_factor / self.cov_diag.unsqueeze(-1)  # D^-1 W
        m = self.cov_factor.shape[-1]
        eye = ad.eye(m, dtype=self.loc.dtype, device=self.loc.device)
        return ad.linalg.cholesky(eye + self.cov_factor.mT @ w_scaled)

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @cached_property
    def variance(self):
        return self.cov_factor.pow(2).sum(-1) + self.cov_diag

    @cached_property
    def covariance_matrix(self):
        return self.cov_factor @ self.cov_factor.mT + ad.diag_embed(self.cov_diag)

    @cached_property
    def scale_tril(self):
        return ad.linalg.cholesky(self.covariance_matrix)

    @cached_property
    def precision_matrix(self):
        """D^-1 - D^-1 W C^-1 W^T D^-1 (Woodbury)."""
        w_scaled = self.cov_factor / self.cov_diag.unsqueeze(-1)
        a = ad.linalg.solve_triangular(self._capacitance_tril, w_scaled.mT, upper=False)  # L_C^-1 W^T D^-1
        return ad.diag_embed(self.cov_diag.reciprocal()) - a.mT @ a

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        m = self.cov_factor.shape[-1]
        eps_w = ad.randn(tuple(shape[:-1]) + (m,), dtype=self.loc.dtype, device=self.loc.device)
        eps_d = ad.randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + (self.cov_factor @ eps_w.unsqueeze(-1)).squeeze(-1) + self.cov_diag.sqrt() * eps_d

    def _log_det(self):
        return 2 * self._capacitance_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1) + self.cov_diag.log().sum(-1)

    def _mahalanobis(self, diff):
        shape = tuple(ad.broadcast_shapes(diff.shape, self.loc.shape))
        diff = diff.expand(shape)
        n, m = self.cov_factor.shape[-2:]
        scaled = diff / self.cov_diag
        wt = (self.cov_factor.mT @ scaled.unsqueeze(-1))  # W^T D^-1 x
        tril = self._capacitance_tril.expand(shape[:-1] + (m, m))
        solved = ad.linalg.solve_triangular(tril, wt.expand(shape[:-1] + (m, 1)), upper=False)
        return (diff * scaled).sum(-1) - solved.squeeze(-1).pow(2).sum(-1)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        n = self._event_shape[0]
        m = self._mahalanobis(value - self.loc)
        return -0.5 * (n * math.log(2 * math.pi) + self._log_det() + m)

    def entropy(self):
        n = self._event_shape[0]
        h = 0.5 * (n * (1.0 + math.log(2 * math.pi)) + self._log_det())
        return h.expand(self._batch_shape) if len(self._batch_shape) else h
