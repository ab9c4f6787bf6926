"""Distributions over matrices: ``Wishart`` (positive definite matrices; Bartlett-decomposition samples,
reparameterized through chi-squared draws) and ``LKJCholesky`` (Cholesky factors of correlation matrices; onion
method samples)."""

import math
import warnings

import numpy as np

import ad

from . import constraints
from .constraints import _lower_mask
from .distribution import Distribution, _broadcast, cached_property
from .exp_family import ExponentialFamily
from .gamma import Beta, Chi2
from .multivariate import _precision_to_scale_tril

__all__ = ["LKJCholesky", "Wishart"]


class Wishart(ExponentialFamily):
    """Wishart(df, V): the law of sum_{k<df} x_k x_k^T for x_k ~ N(0, V) (non-integer df by continuation), V given
    by exactly one of ``covariance_matrix``, ``precision_matrix`` or ``scale_tril``."""

    support = constraints.positive_definite
    has_rsample = True

    def __init__(self, df, covariance_matrix=None, precision_matrix=None, scale_tril=None, validate_args=None):
        given = [(k, m) for k, m in (("covariance_matrix", covariance_matrix), ("precision_matrix", precision_matrix),
                                     ("scale_tril", scale_tril)) if m is not None]
        if len(given) != 1:
            raise ValueError("Exactly one of covariance_matrix or precision_matrix or scale_tril may be specified.")
        name, matrix = given[0]
        if matrix.dim() < 2:
            raise ValueError(f"{name} must be at least two-dimensional, with optional leading batch dimensions")
        p = matrix.shape[-1]
        if not isinstance(df, ad.Tensor):
            df = ad.tensor(float(df), dtype=matrix.dtype, device=matrix.device)
        batch_shape = tuple(ad.broadcast_shapes(matrix.shape[:-2], df.shape))
        setattr(self, name, matrix.expand(batch_shape + (p, p)))
        self.df = df.expand(batch_shape)
        self._p = p
        self.arg_constraints = {"covariance_matrix": constraints.positive_definite,
                                "precision_matrix": constraints.positive_definite,
                                "scale_tril": constraints.lower_cholesky, "df": constraints.greater_than(p - 1)}
        if (validate_args if validate_args is not None else self._validate_args) and not bool((df > p - 1).all()):
            raise ValueError(f"Value of df={df} expected to be greater than ndim - 1 = {p - 1}.")
        super().__init__(batch_shape, (p, p), validate_args=validate_args)
        if bool((self.df < p).any()):
            warnings.warn("Low df values detected. Singular samples are highly likely to occur for ndim - 1 < df < "
                          "ndim.", stacklevel=2)

    def expand(self, batch_shape, _instance=None):
        new = self._blank(_instance)
        batch_shape, p = tuple(batch_shape), self._p
        for name in ("covariance_matrix", "precision_matrix", "scale_tril"):
            if name in self.__dict__:
                setattr(new, name, self.__dict__[name].expand(batch_shape + (p, p)))
        new.df = self.df.expand(batch_shape)
        new._p, new.arg_constraints = p, self.arg_constraints
        return self._expanded(new, batch_shape)

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

    def _df(self):
        return self.df.unsqueeze(-1).unsqueeze(-1)

    @property
    def mean(self):
        return self._df() * self.covariance_matrix

    @property
    def mode(self):
        factor = self._df() - self._p - 1
        return ad.where(factor > 0, factor * self.covariance_matrix, ad.full_like(self.covariance_matrix, math.nan))

    @property
    def variance(self):
        """Var(X_ij) = df (V_ij^2 + V_ii V_jj)."""
        v = self.covariance_matrix
        diag = v.diagonal(dim1=-2, dim2=-1)
        return self._df() * (v.pow(2) + diag.unsqueeze(-1) * diag.unsqueeze(-2))

    def rsample(self, sample_shape=()):
        """Bartlett: X = L A A^T L^T, A lower triangular with A_ii^2 ~ chi2(df - i) and N(0, 1) below."""
        sample_shape, p = tuple(sample_shape), self._p
        shape = sample_shape + tuple(self.batch_shape)
        dof = self.df.unsqueeze(-1) - ad.arange(p, dtype=self.df.dtype, device=self.df.device)  # batch + (p,)
        diag = Chi2(dof, validate_args=False).rsample(sample_shape).sqrt()
        noise = ad.randn(shape + (p, p), dtype=self.df.dtype, device=self.df.device)
        noise = noise * _lower_mask(noise, -1)
        a = noise + ad.diag_embed(diag)
        la = self.scale_tril @ a
        return la @ la.mT

    def log_prob(self, value):
        """((df - p - 1) / 2) log|X| - tr(V^-1 X) / 2 - (df p / 2) log 2 - (df / 2) log|V| - log Gamma_p(df / 2)."""
        if self._validate_args:
            self._validate_sample(value)
        nu, p = self.df, self._p
        log_det_v = 2 * self.scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        log_det_x = 2 * ad.linalg.cholesky(value).diagonal(dim1=-2, dim2=-1).log().sum(-1)
        shape = tuple(ad.broadcast_shapes(self.scale_tril.shape, value.shape))
        trace = ad.cholesky_solve(value.expand(shape), self.scale_tril.expand(shape)).diagonal(dim1=-2, dim2=-1).sum(-1)
        return (0.5 * (nu - p - 1) * log_det_x - 0.5 * trace - 0.5 * nu * p * math.log(2) - 0.5 * nu * log_det_v
                - ad.mvlgamma(0.5 * nu, p))

    def entropy(self):
        nu, p = self.df, self._p
        log_det_v = 2 * self.scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        half = 0.5 * nu.unsqueeze(-1) - 0.5 * ad.arange(p, dtype=nu.dtype, device=nu.device)
        multi_digamma = ad.digamma(half).sum(-1)  # the derivative of log Gamma_p at df / 2
        return (0.5 * (p + 1) * log_det_v + 0.5 * p * (p + 1) * math.log(2) + ad.mvlgamma(0.5 * nu, p)
                - 0.5 * (nu - p - 1) * multi_digamma + 0.5 * nu * p)

    @property
    def _natural_params(self):  # T(X) = (X, log|X|)
        return (-0.5 * self.precision_matrix, 0.5 * (self.df - self._p - 1))

    def _log_normalizer(self, x, y):
        """(df / 2) (p log 2 + log|V|) + log Gamma_p(df / 2), with V = (-2 x)^-1 and df = 2 y + p + 1."""
        p = self._p
        half_df = y + 0.5 * (p + 1)
        log_det_v = -2 * ad.linalg.cholesky(-2 * x).diagonal(dim1=-2, dim2=-1).log().sum(-1)
        return half_df * (p * math.log(2) + log_det_v) + ad.mvlgamma(half_df, p)

    @property
    def _mean_carrier_measure(self):
        return 0


class LKJCholesky(Distribution):
    """The Cholesky factor L of an LKJ(concentration)-distributed correlation matrix of size ``dim``: density
    proportional to prod_{i>=1} L_ii^(dim - i - 1 + 2 (concentration - 1)) (rows 0-indexed) over the strictly
    lower entries.

    Sampled by the onion method (Lewandowski, Kurowicka and Joe, 2009): row i's off-diagonal part is sqrt(y_i) u_i
    with u_i uniform on the unit sphere of R^i and y_i ~ Beta(i / 2, concentration + (dim - 1 - i) / 2); its
    diagonal entry sqrt(1 - y_i) makes the row a unit vector."""

    arg_constraints = {"concentration": constraints.positive}
    support = constraints.corr_cholesky

    def __init__(self, dim, concentration=1.0, validate_args=None):
        if dim < 2:
            raise ValueError(f"Expected dim to be an integer greater than or equal to 2. Found dim={dim}.")
        self.dim = dim
        (self.concentration,) = _broadcast(concentration)
        rows = ad.arange(1, dim, dtype=self.concentration.dtype, device=self.concentration.device)
        conc = self.concentration.unsqueeze(-1)
        self._beta = Beta(0.5 * rows.expand(tuple(conc.shape[:-1]) + (dim - 1,)), conc + 0.5 * (dim - 1 - rows),
                          validate_args=False)
        super().__init__(self.concentration.shape, (dim, dim), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._blank(_instance)
        batch_shape = tuple(batch_shape)
        new.dim = self.dim
        new.concentration = self.concentration.expand(batch_shape)
        new._beta = self._beta.expand(batch_shape + (self.dim - 1,))
        return self._expanded(new, batch_shape)

    def sample(self, sample_shape=()):
        with ad.no_grad():
            d, dtype = self.dim, self.concentration.dtype
            y = self._beta.sample(sample_shape)  # sample + batch + (d - 1,): rows 1 .. d-1
            shape = tuple(y.shape[:-1])
            device = self.concentration.device
            normal = ad.randn(shape + (d - 1, d), dtype=dtype, device=device)
            # block row r is matrix row r + 1 and keeps entries 0 .. r: a uniform direction in R^(r+1)
            mask = ad.tensor(np.tril(np.ones((d - 1, d))), dtype=dtype, device=device)
            rows = normal * mask
            off = rows / rows.norm(dim=-1, keepdim=True) * y.sqrt().unsqueeze(-1)
            diag = (1 - y).clamp(min=float(np.finfo(y._data.dtype).tiny)).sqrt()
            block = off + ad.cat([ad.zeros(shape + (d - 1, 1), dtype=dtype, device=device), ad.diag_embed(diag)], -1)
            first = ad.eye(d, dtype=dtype, device=device)[:1].expand(shape + (1, d))
            return ad.cat([first, block], -2)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        d, eta = self.dim, self.concentration
        diag = value.diagonal(dim1=-2, dim2=-1)[..., 1:]
        i = ad.arange(1, d, dtype=diag.dtype, device=diag.device)
        exponents = (d - 1 - i) + 2 * (eta.unsqueeze(-1) - 1)
        unnormalized = (exponents * diag.log()).sum(-1)
        # log of the normalizer: sum_i [lgamma(beta_i) + (i / 2) log pi] - (d - 1) lgamma(eta + (d - 1) / 2),
        # beta_i = eta + (d - 1 - i) / 2 (the rows' densities in the onion construction)
        alpha = eta + 0.5 * (d - 1)
        log_normalizer = (ad.mvlgamma(alpha - 0.5, d - 1) + 0.5 * (d - 1) * math.log(math.pi)
                          - (d - 1) * ad.lgamma(alpha))
        return unnormalized - log_normalizer
