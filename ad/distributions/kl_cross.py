"""KL divergences between different families (and the same-family pairs of the later distributions), registered
with ``register_kl`` for the pairs torch registers.

Each finite one is written as a cross-entropy: KL(p || q) = -H(p) - E_p[log q(X)], where E_p[log q(X)] needs only
a few expectations under p (the mean, the second moment, E[log X], E[log(1 - X)], E[exp(-t X)]), collected per
family in ``_moments``. Where p's support is not inside q's the divergence is infinite: elementwise where the
supports depend on parameters (Uniform's bounds, Pareto's scale), everywhere otherwise.
"""

import math

import ad

from .continuous import Exponential, Gumbel, Laplace, Normal, Uniform
from .discrete import Bernoulli, Binomial, Poisson
from .gamma import Beta, Gamma
from .kl import _multivariate_normals, kl_divergence, register_kl
from .multivariate import LowRankMultivariateNormal, MultivariateNormal
from .special_continuous import ContinuousBernoulli
from .transformed import Pareto, TransformedDistribution

__all__ = []

_EULER = 0.57721566490153286060


def _inf(p):
    t = p.mean if not isinstance(p, (Uniform,)) else p.low
    return ad.full(tuple(p.batch_shape), math.inf, dtype=t.dtype, device=t.device)


def _inf_where(mask, value):
    return ad.where(mask, ad.full_like(value, math.inf), value)


# ---- expectations under p ----

def _mean(p):
    if isinstance(p, Uniform):
        return (p.low + p.high) / 2
    return p.mean


def _mean_log(p):
    """E[log X] for p on the positive reals (or [0, 1])."""
    if isinstance(p, Exponential):
        return -p.rate.log() - _EULER
    if isinstance(p, Gamma):
        return ad.digamma(p.concentration) - p.rate.log()
    if isinstance(p, Beta):
        return ad.digamma(p.concentration1) - ad.digamma(p.concentration1 + p.concentration0)
    if isinstance(p, Pareto):
        return p.scale.log() + p.alpha.reciprocal()
    if isinstance(p, Uniform):  # (h log h - l log l) / (h - l) - 1, with 0 log 0 = 0
        return (ad.xlogy(p.high, p.high) - ad.xlogy(p.low, p.low)) / (p.high - p.low) - 1
    raise NotImplementedError


def _mean_log1m(p):
    """E[log(1 - X)] for p on [0, 1]."""
    if isinstance(p, Beta):
        return ad.digamma(p.concentration0) - ad.digamma(p.concentration1 + p.concentration0)
    if isinstance(p, Uniform):
        a, b = 1 - p.high, 1 - p.low
        return (ad.xlogy(b, b) - ad.xlogy(a, a)) / (b - a) - 1
    raise NotImplementedError


def _mean_exp_neg(p, t):
    """E[exp(-t X)] (the Laplace transform at t > 0)."""
    if isinstance(p, Exponential):
        return p.rate / (p.rate + t)
    if isinstance(p, Gamma):
        return (p.rate / (p.rate + t)).pow(p.concentration)
    if isinstance(p, Gumbel):
        return ad.exp(-t * p.loc + ad.lgamma(1 + t * p.scale))
    if isinstance(p, Normal):
        return ad.exp(-t * p.loc + 0.5 * (t * p.scale).pow(2))
    if isinstance(p, Laplace):
        return ad.exp(-t * p.loc) / (1 - (t * p.scale).pow(2))  # (finite only for t scale < 1)
    if isinstance(p, Uniform):
        return (ad.exp(-t * p.low) - ad.exp(-t * p.high)) / (t * (p.high - p.low))
    if isinstance(p, Beta):
        raise NotImplementedError
    raise NotImplementedError


def _entropy(p):
    if isinstance(p, Uniform):
        return (p.high - p.low).log()
    return p.entropy()


# ---- E_p[log q(X)] per family of q ----

def _expected_log_normal(p, q):
    second = p.variance + (_mean(p) - q.loc).pow(2)
    return -q.scale.log() - 0.5 * math.log(2 * math.pi) - second / (2 * q.scale.pow(2))


def _expected_log_exponential(p, q):
    return q.rate.log() - q.rate * _mean(p)


def _expected_log_gamma(p, q):
    a, b = q.concentration, q.rate
    return a * b.log() - ad.lgamma(a) + (a - 1) * _mean_log(p) - b * _mean(p)


def _expected_log_gumbel(p, q):
    return (-q.scale.log() - (_mean(p) - q.loc) / q.scale
            - ad.exp(q.loc / q.scale) * _mean_exp_neg(p, q.scale.reciprocal()))


def _expected_log_laplace(p, q):
    # for p normal: E|X - mu| = s sqrt(2 / pi) exp(-d^2 / (2 s^2)) + d erf(d / (s sqrt 2)), d = mean - mu
    d, s = p.loc - q.loc, p.scale
    abs_dev = s * math.sqrt(2 / math.pi) * ad.exp(-d.pow(2) / (2 * s.pow(2))) + d * ad.erf(d / (s * math.sqrt(2)))
    return -(2 * q.scale).log() - abs_dev / q.scale


def _expected_log_beta(p, q):
    a, b = q.concentration1, q.concentration0
    log_beta = ad.lgamma(a) + ad.lgamma(b) - ad.lgamma(a + b)
    return -log_beta + (a - 1) * _mean_log(p) + (b - 1) * _mean_log1m(p)


def _expected_log_cb(p, q):
    # log q(x) = x logits - softplus(logits) + log C: linear in x
    return _mean(p) * q.logits - ad.nn.functional.softplus(q.logits) + q._log_constant()


def _expected_log_pareto(p, q):
    return q.alpha.log() + q.alpha * q.scale.log() - (q.alpha + 1) * _mean_log(p)


def _cross_kl(expected_log, order=1):
    """KL as -H(p) - E_p[log q(X)], which needs p's moments up to ``order``. A Pareto p has no such moment for
    alpha <= order: the divergence is infinite there, computed at a safe alpha and replaced (so those elements'
    zero cotangents meet no infinite partial derivative: 0 * inf would be NaN)."""

    def kl(p, q):
        if isinstance(p, Pareto):
            finite = p.alpha > order
            alpha = ad.where(finite, p.alpha, ad.full_like(p.alpha, order + 1.0))
            safe = Pareto(p.scale, alpha, validate_args=False)
            return _inf_where(~finite, -_entropy(safe) - expected_log(safe, q))
        return -_entropy(p) - expected_log(p, q)

    return kl


# ---- pairs ----

_INFINITE = [
    (Poisson, Bernoulli), (Poisson, Binomial),
    (Beta, Pareto), (ContinuousBernoulli, Pareto),
    (Exponential, Beta), (Exponential, ContinuousBernoulli), (Exponential, Pareto), (Exponential, Uniform),
    (Gamma, Beta), (Gamma, ContinuousBernoulli), (Gamma, Pareto), (Gamma, Uniform),
    (Gumbel, Beta), (Gumbel, ContinuousBernoulli), (Gumbel, Exponential), (Gumbel, Gamma), (Gumbel, Pareto),
    (Gumbel, Uniform),
    (Laplace, Beta), (Laplace, ContinuousBernoulli), (Laplace, Exponential), (Laplace, Gamma), (Laplace, Pareto),
    (Laplace, Uniform),
    (Normal, ContinuousBernoulli), (Normal, Pareto),
    (Pareto, Beta), (Pareto, ContinuousBernoulli), (Pareto, Uniform),
]  # fmt: skip
for _p, _q in _INFINITE:
    register_kl(_p, _q)(lambda p, q: _inf(p))

for _p in (Beta, ContinuousBernoulli, Exponential, Gamma, Gumbel, Laplace, Pareto, Uniform):
    if _p is not Uniform:
        register_kl(_p, Normal)(_cross_kl(_expected_log_normal, order=2))
for _p in (Beta, ContinuousBernoulli, Gamma, Pareto):
    register_kl(_p, Exponential)(_cross_kl(_expected_log_exponential))
for _p in (Beta, Exponential, Pareto):
    register_kl(_p, Gamma)(_cross_kl(_expected_log_gamma))
for _p in (Exponential, Gamma, Normal):
    register_kl(_p, Gumbel)(_cross_kl(_expected_log_gumbel))
register_kl(Beta, ContinuousBernoulli)(_cross_kl(_expected_log_cb))
register_kl(Normal, Laplace)(_cross_kl(_expected_log_laplace))


@register_kl(Bernoulli, Poisson)
def _kl_bernoulli_poisson(p, q):
    # log q(0) = -rate, log q(1) = log(rate) - rate
    return -p.entropy() + q.rate - p.probs * q.rate.log()


@register_kl(Pareto, Pareto)
def _kl_pareto_pareto(p, q):
    kl = _cross_kl(_expected_log_pareto)(p, q)
    return _inf_where(p.scale < q.scale, kl)


@register_kl(ContinuousBernoulli, ContinuousBernoulli)
def _kl_cb_cb(p, q):
    return _cross_kl(_expected_log_cb)(p, q)


@register_kl(Beta, Uniform)
@register_kl(ContinuousBernoulli, Uniform)
def _kl_unit_uniform(p, q):
    kl = -_entropy(p) + (q.high - q.low).log()
    return _inf_where((q.low > 0) | (q.high < 1), kl)


@register_kl(Uniform, Normal)
@register_kl(Uniform, Gumbel)
def _kl_uniform_real(p, q):
    log_q = _expected_log_normal(p, q) if isinstance(q, Normal) else _expected_log_gumbel(p, q)
    return -_entropy(p) - log_q


@register_kl(Uniform, Exponential)
@register_kl(Uniform, Gamma)
def _kl_uniform_positive(p, q):
    log_q = _expected_log_exponential(p, q) if isinstance(q, Exponential) else _expected_log_gamma(p, q)
    return _inf_where(p.low < 0, -_entropy(p) - log_q)


@register_kl(Uniform, Beta)
@register_kl(Uniform, ContinuousBernoulli)
def _kl_uniform_unit(p, q):
    log_q = _expected_log_beta(p, q) if isinstance(q, Beta) else _expected_log_cb(p, q)
    return _inf_where((p.low < 0) | (p.high > 1), -_entropy(p) - log_q)


@register_kl(Uniform, Pareto)
def _kl_uniform_pareto(p, q):
    return _inf_where(p.low < q.scale, -_entropy(p) - _expected_log_pareto(p, q))


@register_kl(LowRankMultivariateNormal, LowRankMultivariateNormal)
@register_kl(LowRankMultivariateNormal, MultivariateNormal)
@register_kl(MultivariateNormal, LowRankMultivariateNormal)
def _kl_low_rank(p, q):
    if p.event_shape != q.event_shape:
        raise ValueError("KL-divergence between two (Low Rank) Multivariate Normals with different event shapes "
                         "cannot be computed")
    as_full = [MultivariateNormal(d.loc, covariance_matrix=d.covariance_matrix, validate_args=False)
               if isinstance(d, LowRankMultivariateNormal) else d for d in (p, q)]
    return _multivariate_normals(*as_full)


@register_kl(TransformedDistribution, TransformedDistribution)
def _kl_transformed_transformed(p, q):
    """The same bijections applied to both: KL is invariant under them, so it is the bases' KL."""
    if p.transforms != q.transforms:
        raise NotImplementedError
    if p.event_shape != q.event_shape:
        raise NotImplementedError
    return kl_divergence(p.base_dist, q.base_dist)
