"""Continuous distributions whose normalizers or samplers need care: ``VonMises`` (a Bessel-function normalizer,
a rejection sampler), ``ContinuousBernoulli`` (a normalizer with a removable singularity at probs = 1/2, replaced
by its Taylor series there), ``GeneralizedPareto`` (a shape parameter whose zero is a limit of the formulas).
"""

import math

import numpy as np

import ad

from . import constraints
from .discrete import _Binary, _clamp_probs
from .distribution import Distribution, _broadcast, _where_defined, cached_property
from .exp_family import ExponentialFamily

__all__ = ["ContinuousBernoulli", "GeneralizedPareto", "VonMises"]


def _log_i0(x):
    """log I0(x) from the exponentially scaled Bessel function (no overflow for large x)."""
    return ad.special.i0e(x).log() + x


class VonMises(Distribution):
    """The von Mises (circular normal) distribution: density exp(kappa cos(x - loc)) / (2 pi I0(kappa)) on a
    circle, samples in [-pi, pi)."""

    arg_constraints = {"loc": constraints.real, "concentration": constraints.positive}
    support = constraints.real
    has_rsample = False

    def __init__(self, loc, concentration, validate_args=None):
        self.loc, self.concentration = _broadcast(loc, concentration)
        super().__init__(self.loc.shape, validate_args=validate_args)

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        """The circular variance 1 - E[cos(x - loc)] = 1 - I1(kappa) / I0(kappa)."""
        k = self.concentration
        return 1 - ad.special.i1e(k) / ad.special.i0e(k)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        k = self.concentration
        return k * (value - self.loc).cos() - math.log(2 * math.pi) - _log_i0(k)

    def sample(self, sample_shape=()):
        """Best and Fisher's (1979) rejection sampler (wrapped-Cauchy envelope), in float64."""
        from ..random import _rng_of

        rng = _rng_of(None)
        shape = tuple(self._extended_shape(sample_shape))
        kappa = np.broadcast_to(self.concentration.detach().cpu().numpy().astype(np.float64), shape).ravel()
        # the envelope's parameter r = (1 + rho^2) / (2 rho), rho written without the cancellation of
        # (tau - sqrt(2 tau)) / (2 kappa) at small kappa
        s = np.sqrt(1 + 4 * kappa**2)
        tau = 1 + s
        rho = 2 * kappa * tau / ((s + 1) * (tau + np.sqrt(2 * tau)))
        r = (1 + rho**2) / (2 * rho)
        theta = np.empty_like(kappa)
        todo = np.arange(kappa.size)
        while todo.size:
            u1, u2, u3 = rng.random((3, todo.size))
            z = np.cos(np.pi * u1)
            f = (1 + r[todo] * z) / (r[todo] + z)
            c = kappa[todo] * (r[todo] - f)
            with np.errstate(divide="ignore"):
                accept = (c * (2 - c) - u2 > 0) | (np.log(c / u2) + 1 - c >= 0)
            theta[todo[accept]] = np.sign(u3[accept] - 0.5) * np.arccos(np.clip(f[accept], -1, 1))
            todo = todo[~accept]
        loc = np.broadcast_to(self.loc.detach().cpu().numpy().astype(np.float64), shape).ravel()
        wrapped = np.mod(theta + loc + np.pi, 2 * np.pi) - np.pi
        return ad.tensor(wrapped.reshape(shape).astype(self.loc._data.dtype), device=self.loc.device)


class ContinuousBernoulli(_Binary, ExponentialFamily):
    """The continuous Bernoulli distribution on [0, 1] (Loaiza-Ganem and Cunningham, 2019): density
    C(lam) lam^x (1 - lam)^(1 - x), C(lam) = 2 atanh(1 - 2 lam) / (1 - 2 lam). For probs within ``lims`` of 1/2
    the normalizer, mean and variance use their Taylor series about 1/2 (the closed forms are 0/0 there)."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, probs=None, logits=None, lims=(0.499, 0.501), validate_args=None):
        _, shape = self._init_binary(probs, logits)
        self._lims = lims
        super().__init__(shape, validate_args=validate_args)
        if "probs" in self.__dict__:  # validated as given, used clamped (below)
            self.probs = _clamp_probs(self.probs)

    @cached_property
    def probs(self):
        # kept within [eps, 1 - eps], as torch's: at 0 or 1 the normalizer is infinite (log_prob was +inf and the
        # entropy NaN at probs 0, or at logits past +-37 where the sigmoid rounds to 1)
        return _clamp_probs(ad.sigmoid(self.logits))

    def expand(self, batch_shape, _instance=None):
        new = self._blank(_instance)
        for name in ("probs", "logits"):
            if name in self.__dict__:
                setattr(new, name, self.__dict__[name].expand(tuple(batch_shape)))
        new._lims = self._lims
        return self._expanded(new, batch_shape)

    def _stable(self):
        """Where probs is far enough from 1/2 for the closed forms."""
        return (self.probs <= self._lims[0]) | (self.probs >= self._lims[1])

    def _safe_probs(self):
        """probs where the closed forms are used, a harmless constant elsewhere (no 0/0 in either branch's
        gradient)."""
        return ad.where(self._stable(), self.probs, ad.full_like(self.probs, self._lims[0]))

    def _log_constant(self):
        """log C(probs), the normalizing constant of the density (not the exponential family's log normalizer
        A(logits) = softplus(logits) - log C, below)."""
        p = self._safe_probs()
        # log C = log|log(1 - p) - log p| - log|1 - 2 p|, the last term split at 1/2 so each side stays finite
        below = ad.where(p <= 0.5, p, ad.zeros_like(p))
        above = ad.where(p >= 0.5, p, ad.ones_like(p))
        log_abs = ad.where(p <= 0.5, ad.log1p(-2 * below), (2 * above - 1).log())
        closed = (ad.log1p(-p) - p.log()).abs().log() - log_abs
        d2 = (self.probs - 0.5).pow(2)
        series = math.log(2.0) + (4.0 / 3.0 + 104.0 / 45.0 * d2) * d2
        return ad.where(self._stable(), closed, series)

    @property
    def mean(self):
        p = self._safe_probs()
        closed = p / (2 * p - 1) + 1 / (ad.log1p(-p) - p.log())
        d = self.probs - 0.5
        series = 0.5 + (1.0 / 3.0 + 16.0 / 45.0 * d.pow(2)) * d
        return ad.where(self._stable(), closed, series)

    @property
    def variance(self):
        p = self._safe_probs()
        closed = p * (p - 1) / (1 - 2 * p).pow(2) + 1 / (ad.log1p(-p) - p.log()).pow(2)
        d2 = (self.probs - 0.5).pow(2)
        series = 1.0 / 12.0 - (1.0 / 15.0 - 128.0 / 945.0 * d2) * d2
        return ad.where(self._stable(), closed, series)

    @property
    def param_shape(self):
        return self.__dict__["probs" if "probs" in self.__dict__ else "logits"].shape

    def rsample(self, sample_shape=()):
        u = ad.rand(self._extended_shape(sample_shape), dtype=self.probs.dtype, device=self.probs.device)
        return self.icdf(u)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        logits, value = ad.broadcast_tensors(self.logits, value)
        return value * logits - ad.nn.functional.softplus(logits) + self._log_constant()

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        p = self._safe_probs()
        closed = (p.pow(value) * (1 - p).pow(1 - value) + p - 1) / (2 * p - 1)
        inside = ad.where(self._stable(), closed, value * ad.ones_like(closed))
        return ad.where(value <= 0, ad.zeros_like(inside), ad.where(value >= 1, ad.ones_like(inside), inside))

    def icdf(self, value):
        p = self._safe_probs()
        closed = (ad.log1p(-p + value * (2 * p - 1)) - ad.log1p(-p)) / (p.log() - ad.log1p(-p))
        return ad.where(self._stable(), closed, value * ad.ones_like(closed))

    def entropy(self):
        log_q, log_p = ad.log1p(-self.probs), self.probs.log()
        return self.mean * (log_q - log_p) - self._log_constant() - log_q

    @property
    def _natural_params(self):  # T(x) = x
        return (self.logits,)

    def _log_normalizer(self, x):
        """A(x) = log of the integral of exp(x t) over [0, 1] = log(expm1(x) / x), written as
        relu(x) + log(-expm1(-|x|)) - log|x| (no overflow); for probs within ``lims`` of 1/2 (x near 0, where that
        is 0/0) its Taylor series x / 2 + x^2 / 24 - x^4 / 2880."""
        low, high = (math.log(p / (1 - p)) for p in self._lims)
        far = (x <= low) | (x >= high)
        safe = ad.where(far, x, ad.full_like(x, high))
        closed = ad.relu(safe) + (-ad.expm1(-safe.abs())).log() - safe.abs().log()
        x2 = x.pow(2)
        series = x / 2 + x2 / 24 - x2.pow(2) / 2880
        return ad.where(far, closed, series)

    @property
    def _mean_carrier_measure(self):
        return 0


class GeneralizedPareto(Distribution):
    """The generalized Pareto distribution: cdf 1 - (1 + xi z)^(-1/xi), z = (x - loc) / scale, xi =
    ``concentration`` (xi = 0: the exponential 1 - exp(-z)); support [loc, loc - scale / xi] for xi < 0, else
    [loc, inf)."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive, "concentration": constraints.real}
    has_rsample = True

    def __init__(self, loc, scale, concentration, validate_args=None):
        self.loc, self.scale, self.concentration = _broadcast(loc, scale, concentration)
        super().__init__(self.loc.shape, validate_args=validate_args)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        xi = self.concentration
        upper = ad.where(xi < 0, self.loc - self.scale / xi, ad.full_like(self.loc, math.inf))
        return constraints.interval(self.loc, upper)

    def _xi_and_nonzero(self):
        """xi where it is nonzero, 1 elsewhere (so the xi != 0 formulas stay finite, gradients included), and the
        mask. Where xi == 0 the formulas use their series in xi to second order, so that the first and second
        derivatives in xi there are the limits' (a plain xi = 0 formula would give a zero derivative in xi)."""
        xi = self.concentration
        nonzero = xi != 0
        return ad.where(nonzero, xi, ad.ones_like(xi)), nonzero

    def rsample(self, sample_shape=()):
        u = ad.rand(self._extended_shape(sample_shape), dtype=self.loc.dtype, device=self.loc.device)
        return self.icdf(u)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = (value - self.loc) / self.scale
        xi, nonzero = self._xi_and_nonzero()
        x0 = self.concentration
        series = -z + x0 * (z.pow(2) / 2 - z) + x0.pow(2) * (z.pow(2) / 2 - z.pow(3) / 3)
        log_tail = ad.where(nonzero, -(1 / xi + 1) * ad.log1p(xi * z), series)
        return log_tail - self.scale.log()

    def log_survival_function(self, value):
        z = (value - self.loc) / self.scale
        xi, nonzero = self._xi_and_nonzero()
        x0 = self.concentration
        series = -z + x0 * z.pow(2) / 2 - x0.pow(2) * z.pow(3) / 3
        return ad.where(nonzero, -ad.log1p(xi * z) / xi, series)

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return -ad.expm1(self.log_survival_function(value))

    def icdf(self, value):
        xi, nonzero = self._xi_and_nonzero()
        log_tail = ad.log1p(-value)  # log(1 - p)
        x0 = self.concentration
        series = -log_tail + x0 * log_tail.pow(2) / 2 - x0.pow(2) * log_tail.pow(3) / 6
        z = ad.where(nonzero, ad.expm1(-xi * log_tail) / xi, series)
        return self.loc + self.scale * z

    @property
    def mean(self):
        xi = self.concentration
        return _where_defined(xi < 1, xi, 0.0, lambda xi: self.loc + self.scale / (1 - xi), math.nan)

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        scale2 = self.scale.pow(2)
        xi = self.concentration
        return _where_defined(xi < 0.5, xi, 0.0, lambda xi: scale2 / ((1 - xi).pow(2) * (1 - 2 * xi)), math.nan)

    def entropy(self):
        return self.scale.log() + self.concentration + 1
