"""The gamma family: ``Gamma``, ``Chi2``, ``Beta``, ``Dirichlet``, ``StudentT``, ``FisherSnedecor``, sampled from
standard gamma draws.

A standard gamma sample z ~ Gamma(alpha, 1) is not a closed-form function of uniform noise, so its gradient in
alpha is the implicit one (Figurnov et al., the method torch uses): z solves P(alpha, z) = u for a fixed uniform
u, with P the regularized lower incomplete gamma function, so dz/dalpha = -(dP/dalpha) / (dP/dz), where dP/dz is
the gamma density and dP/dalpha (no closed form) a central difference of ``scipy.special.gammainc`` in alpha.
That gradient is first order only: differentiating it again in alpha raises torch's NotImplementedError
(``_standard_gamma_grad`` has no derivative there either). Beta and Dirichlet samples are normalized gamma
samples, so their reparameterized gradients follow by the chain rule.
"""

import math

import numpy as np
from scipy import special as sp

import ad

from . import constraints
from .distribution import Distribution, _broadcast, _where_defined
from .exp_family import ExponentialFamily

__all__ = ["Beta", "Chi2", "Dirichlet", "FisherSnedecor", "Gamma", "StudentT"]


def _gamma_sample_grad(alpha, z):
    """dz/dalpha of standard gamma samples ``z`` at concentrations ``alpha`` (numpy arrays, float64 math)."""
    a, x = alpha.astype(np.float64), z.astype(np.float64)
    h = 1e-5 * np.maximum(a, 1e-3)
    dp_da = (sp.gammainc(a + h, x) - sp.gammainc(a - h, np.maximum(x, 0))) / (2 * h)
    log_density = (a - 1) * np.log(x) - x - sp.gammaln(a)
    return (-dp_da * np.exp(-log_density)).astype(alpha.dtype)


class _StandardGammaGrad(ad.autograd.Function):
    """dz/dalpha as a recorded node (torch's ``_standard_gamma_grad``): a gradient taken with ``create_graph``
    differentiates in anything else, and raises torch's error in alpha (it has no derivative)."""

    @staticmethod
    def forward(ctx, alpha, z):
        dz = _gamma_sample_grad(alpha.detach().cpu().numpy(), z.detach().cpu().numpy())
        return ad.tensor(dz, device=alpha.device)

    @staticmethod
    def backward(ctx, grad):
        raise NotImplementedError("the derivative for '_standard_gamma_grad' is not implemented.")


class _StandardGamma(ad.autograd.Function):
    @staticmethod
    def forward(ctx, alpha):
        from ..random import _rng_of

        a = alpha.detach().cpu().numpy()
        z = np.maximum(_rng_of(None).standard_gamma(a), np.finfo(a.dtype).tiny).astype(a.dtype)
        out = ad.tensor(z, device=alpha.device)
        ctx.save_for_backward(alpha, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        alpha, z = ctx.saved_tensors
        return grad * _StandardGammaGrad.apply(alpha, z.detach())

    @staticmethod
    def jvp(ctx, tangent):  # (forward mode: the same implicit derivative times the concentration's tangent)
        alpha, z = ctx.saved_tensors
        return tangent * _StandardGammaGrad.apply(alpha.detach(), z.detach())


def _standard_gamma(alpha):
    """Gamma(alpha, 1) samples of ``alpha``'s shape, reparameterized (see the module's docstring)."""
    return _StandardGamma.apply(alpha)


class Gamma(ExponentialFamily):
    """The gamma distribution with shape ``concentration`` and ``rate`` (mean concentration / rate)."""

    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, concentration, rate, validate_args=None):
        self.concentration, self.rate = _broadcast(concentration, rate)
        super().__init__(self.concentration.shape, validate_args=validate_args)

    @property
    def mean(self):
        return self.concentration / self.rate

    @property
    def mode(self):
        return ((self.concentration - 1) / self.rate).clamp(min=0)

    @property
    def variance(self):
        return self.concentration / self.rate.pow(2)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        value = _standard_gamma(self.concentration.expand(shape)) / self.rate.expand(shape)
        return value.clamp(min=float(np.finfo(value._data.dtype).tiny))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        a, b = self.concentration, self.rate
        return ad.xlogy(a, b) + ad.xlogy(a - 1, value) - b * value - ad.lgamma(a)

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return ad.special.gammainc(self.concentration, self.rate * value)

    def entropy(self):
        a = self.concentration
        return a - self.rate.log() + ad.lgamma(a) + (1.0 - a) * ad.digamma(a)

    @property
    def _natural_params(self):  # T(x) = (log x, x)
        return (self.concentration - 1, -self.rate)

    def _log_normalizer(self, x, y):
        return ad.lgamma(x + 1) - (x + 1) * (-y).log()

    @property
    def _mean_carrier_measure(self):
        return 0


class Chi2(Gamma):
    """The chi-squared distribution with ``df`` degrees of freedom: Gamma(df / 2, 1 / 2)."""

    _repr_shows_parameters = False  # (torch's: see Distribution)

    arg_constraints = {"df": constraints.positive}

    def __init__(self, df, validate_args=None):
        (df,) = _broadcast(df)
        super().__init__(0.5 * df, ad.full_like(df, 0.5), validate_args=validate_args)

    @property
    def df(self):
        return self.concentration * 2

    def _expand_params(self):
        return ["concentration", "rate"]


class Dirichlet(ExponentialFamily):
    """The Dirichlet distribution over the simplex of the last dim of ``concentration``."""

    arg_constraints = {"concentration": constraints.independent(constraints.positive, 1)}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, concentration, validate_args=None):
        if concentration.dim() < 1:
            raise ValueError("`concentration` parameter must be at least one-dimensional.")
        self.concentration = concentration
        super().__init__(concentration.shape[:-1], concentration.shape[-1:], validate_args=validate_args)

    @property
    def mean(self):
        return self.concentration / self.concentration.sum(-1, True)

    @property
    def mode(self):
        c = self.concentration
        a = (c - 1).clamp(min=0.0)
        total = a.sum(-1, True)
        # every concentration below 1: the density is unbounded at each vertex; torch's choice is the first one
        # (the division is kept off 0 / 0 there, whose gradient would be NaN)
        below = (c < 1).all(-1, True)
        mode = a / ad.where(below, ad.ones_like(total), total)
        first = ad.nn.functional.one_hot(ad.zeros(tuple(c.shape[:-1]), dtype=ad.int64, device=c.device), c.shape[-1])
        return ad.where(below, first.to(mode.dtype), mode)

    @property
    def variance(self):
        a0 = self.concentration.sum(-1, True)
        return self.concentration * (a0 - self.concentration) / (a0.pow(2) * (a0 + 1))

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        z = _standard_gamma(self.concentration.expand(shape))
        return z / z.sum(-1, True)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        a = self.concentration
        return ad.xlogy(a - 1, value).sum(-1) + ad.lgamma(a.sum(-1)) - ad.lgamma(a).sum(-1)

    def entropy(self):
        a = self.concentration
        k, a0 = a.shape[-1], a.sum(-1)
        return ad.lgamma(a).sum(-1) - ad.lgamma(a0) - (k - a0) * ad.digamma(a0) - ((a - 1) * ad.digamma(a)).sum(-1)

    @property
    def _natural_params(self):  # T(x) = log x, h(x) = 1 / prod x
        return (self.concentration,)

    def _log_normalizer(self, x):
        return ad.lgamma(x).sum(-1) - ad.lgamma(x.sum(-1))

    @property
    def _mean_carrier_measure(self):
        """E[-sum log x_i] = sum (digamma(a0) - digamma(a_i)) (torch has none: its generic entropy raises)."""
        a = self.concentration
        return (ad.digamma(a.sum(-1, True)) - ad.digamma(a)).sum(-1)


class Beta(ExponentialFamily):
    """The beta distribution on [0, 1]: ``concentration1`` (alpha) and ``concentration0`` (beta)."""

    _repr_shows_parameters = False  # (torch's: see Distribution)

    arg_constraints = {"concentration1": constraints.positive, "concentration0": constraints.positive}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, concentration1, concentration0, validate_args=None):
        self.concentration1, self.concentration0 = _broadcast(concentration1, concentration0)
        super().__init__(self.concentration1.shape, validate_args=validate_args)

    @property
    def _dirichlet(self):
        return Dirichlet(ad.stack([self.concentration1, self.concentration0], -1), validate_args=False)

    @property
    def mean(self):
        return self.concentration1 / (self.concentration1 + self.concentration0)

    @property
    def mode(self):
        return self._dirichlet.mode[..., 0]

    @property
    def variance(self):
        total = self.concentration1 + self.concentration0
        return self.concentration1 * self.concentration0 / (total.pow(2) * (total + 1))

    def rsample(self, sample_shape=()):
        return self._dirichlet.rsample(sample_shape)[..., 0]

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return self._dirichlet.log_prob(ad.stack([value, 1.0 - value], -1))

    def entropy(self):
        return self._dirichlet.entropy()

    @property
    def _natural_params(self):  # T(x) = (log x, log(1 - x)), h(x) = 1 / (x (1 - x))
        return (self.concentration1, self.concentration0)

    def _log_normalizer(self, x, y):
        return ad.lgamma(x) + ad.lgamma(y) - ad.lgamma(x + y)

    @property
    def _mean_carrier_measure(self):
        """E[-log x - log(1 - x)] (torch has none: its generic entropy raises)."""
        a, b = self.concentration1, self.concentration0
        return 2 * ad.digamma(a + b) - ad.digamma(a) - ad.digamma(b)


def _nan_where(condition, value):
    return ad.where(condition, ad.full_like(value, math.nan), value)


class StudentT(Distribution):
    """Student's t with ``df`` degrees of freedom, shifted by ``loc`` and scaled by ``scale``: a normal draw divided
    by sqrt(chi2(df) / df) (so its samples are reparameterized through the implicit gamma gradient)."""

    arg_constraints = {"df": constraints.positive, "loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, df, loc=0.0, scale=1.0, validate_args=None):
        self.df, self.loc, self.scale = _broadcast(df, loc, scale)
        self._chi2 = Chi2(self.df, validate_args=False)
        super().__init__(self.df.shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = super().expand(batch_shape, _instance)
        new._chi2 = Chi2(new.df, validate_args=False)
        return new

    @property
    def mean(self):
        return _nan_where(self.df <= 1, self.loc * 1.0)

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        scale2 = self.scale.pow(2)
        heavy = _where_defined(self.df > 2, self.df, 3.0, lambda df: scale2 * df / (df - 2), math.inf)
        return _nan_where(self.df <= 1, heavy)  # infinite for 1 < df <= 2, undefined below

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        x = ad.randn(shape, dtype=self.df.dtype, device=self.df.device)
        z = self._chi2.rsample(sample_shape)
        return self.loc + self.scale * x * (z / self.df).rsqrt()

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        df = self.df
        y = (value - self.loc) / self.scale
        log_norm = (self.scale.log() + 0.5 * df.log() + 0.5 * math.log(math.pi) + ad.lgamma(0.5 * df)
                    - ad.lgamma(0.5 * (df + 1.0)))
        return -0.5 * (df + 1.0) * ad.log1p(y.pow(2) / df) - log_norm

    def entropy(self):
        df = self.df
        log_beta = ad.lgamma(0.5 * df) + math.lgamma(0.5) - ad.lgamma(0.5 * (df + 1))
        return (self.scale.log() + 0.5 * (df + 1) * (ad.digamma(0.5 * (df + 1)) - ad.digamma(0.5 * df))
                + 0.5 * df.log() + log_beta)


class FisherSnedecor(Distribution):
    """The F distribution: (chi2(df1) / df1) / (chi2(df2) / df2)."""

    arg_constraints = {"df1": constraints.positive, "df2": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, df1, df2, validate_args=None):
        self.df1, self.df2 = _broadcast(df1, df2)
        super().__init__(self.df1.shape, validate_args=validate_args)

    @property
    def mean(self):
        return _where_defined(self.df2 > 2, self.df2, 3.0, lambda df2: df2 / (df2 - 2), math.nan)

    @property
    def mode(self):
        df1, df2 = self.df1, self.df2
        return _nan_where(df1 <= 2, (df1 - 2) / df1 * df2 / (df2 + 2))

    @property
    def variance(self):
        df1 = self.df1

        def variance(df2):
            return 2 * df2.pow(2) * (df1 + df2 - 2) / (df1 * (df2 - 2).pow(2) * (df2 - 4))

        return _where_defined(self.df2 > 4, self.df2, 5.0, variance, math.nan)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        # Gamma(df/2, rate df) = chi2(df) / (2 df): the factors 2 cancel in the ratio
        x1 = _standard_gamma(0.5 * self.df1.expand(shape)) / self.df1
        x2 = _standard_gamma(0.5 * self.df2.expand(shape)) / self.df2
        tiny = float(np.finfo(x1._data.dtype).tiny)
        return (x1 / x2).clamp(min=tiny)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        h1, h2 = 0.5 * self.df1, 0.5 * self.df2
        ratio = self.df1 / self.df2
        log_norm = ad.lgamma(h1 + h2) - ad.lgamma(h1) - ad.lgamma(h2)
        return log_norm + h1 * ratio.log() + (h1 - 1) * value.log() - (h1 + h2) * ad.log1p(ratio * value)
